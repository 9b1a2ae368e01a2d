"""The deployment files agree with the code.

docker-compose.yml, deploy/rabbitmq, deploy/prometheus, deploy/grafana and
deploy/k8s all restate facts that live in shared/topology.py and
shared/metrics.py: queue names and arguments, bindings, which process consumes
which queue, metric names.  These tests fail when the two drift apart.
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path

import yaml
from prometheus_client import CollectorRegistry

from shared import topology
from shared.metrics import Metrics

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
SERVICES = ("notify", "inbound", "scheduler")
API_PORTS = {"notify": 8001, "inbound": 8002, "scheduler": 8003}


# -- helpers -------------------------------------------------------------------
def load_yaml(path: Path):
    return yaml.safe_load(path.read_text())


def compose_services() -> dict[str, dict]:
    return load_yaml(ROOT / "docker-compose.yml")["services"]


def hysbys_compose_services() -> dict[str, dict]:
    return {name: svc for name, svc in compose_services().items()
            if (svc.get("command") or [None])[0] == "hysbys"}


def worker_service(command) -> str | None:
    """The service a `hysbys worker <service>` command runs, else None."""
    if isinstance(command, list) and command[:2] == ["hysbys", "worker"] and len(command) >= 3:
        return command[2]
    return None


def k8s_documents() -> list[tuple[Path, dict]]:
    docs = []
    for path in sorted((DEPLOY / "k8s" / "base").glob("*.yaml")):
        docs += [(path, doc) for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
    return docs


def k8s_containers(kind: str) -> list[tuple[str, dict]]:
    out = []
    for _, doc in k8s_documents():
        if doc["kind"] == kind:
            for container in doc["spec"]["template"]["spec"]["containers"]:
                out.append((doc["metadata"]["name"], container))
    return out


def definitions() -> dict:
    return json.loads((DEPLOY / "rabbitmq" / "definitions.json").read_text())


def generator():
    path = DEPLOY / "rabbitmq" / "generate_definitions.py"
    spec = importlib.util.spec_from_file_location("generate_definitions", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def exposed_metric_names() -> set[str]:
    """Names as Prometheus sees them: a Counter ``x`` is exposed as ``x_total``."""
    registry = CollectorRegistry()
    Metrics(registry)
    return {f"{family.name}_total" if family.type == "counter" else family.name
            for family in registry.collect()}


METRIC_NAME = re.compile(r"\bhysbys_[a-z_]+")
SERIES_SUFFIX = re.compile(r"_(bucket|sum|count)$")


def unknown_metrics(expr: str) -> set[str]:
    known = exposed_metric_names()
    used = {SERIES_SUFFIX.sub("", name) if name not in known else name
            for name in METRIC_NAME.findall(expr)}
    return used - known


# -- docker compose ------------------------------------------------------------
def test_docker_compose_file_parses_and_runs_the_whole_platform():
    services = compose_services()
    for name in ("rabbitmq", "postgres", "migrate", "scheduler-ticker"):
        assert name in services
    commands = [svc.get("command") for svc in hysbys_compose_services().values()]
    for service in SERVICES:
        assert ["hysbys", "serve", service] in commands
        assert any(worker_service(c) == service for c in commands)
    # notify's consumers scale; its dispatchers run beside them
    assert ["hysbys", "worker", "notify", "--no-dispatcher"] in commands
    assert ["hysbys", "dispatcher"] in commands
    assert ["hysbys", "ticker"] in commands
    assert ["hysbys", "db", "upgrade"] in commands


def test_every_hysbys_process_in_compose_runs_the_same_image_built_from_the_dockerfile():
    builds = {(json.dumps(svc.get("build"), sort_keys=True), svc.get("image"))
              for svc in hysbys_compose_services().values()}
    assert len(builds) == 1
    (build, _image), = builds
    build = json.loads(build)
    context = build if isinstance(build, str) else build.get("context", ".")
    assert (ROOT / context / "Dockerfile").is_file()


def test_every_queue_has_a_consumer_in_compose():
    consumed = {worker_service(svc.get("command")) for svc in compose_services().values()}
    for spec in topology.QUEUES:
        assert spec.service in consumed, f"no `hysbys worker {spec.service}` for {spec.name}"


def test_every_compose_worker_consumes_at_least_one_queue():
    for name, svc in compose_services().items():
        service = worker_service(svc.get("command"))
        if service is not None:
            assert topology.queues_for(service), f"{name} runs a worker with no queues"


def test_compose_processes_are_configured_only_by_environment_with_quorum_queues():
    for name, svc in hysbys_compose_services().items():
        env = svc["environment"]
        assert "volumes" not in svc, name
        assert env["HYSBYS_DATABASE_URL"].startswith("postgresql+psycopg2://"), name
        assert env["HYSBYS_BROKER_URL"].startswith("amqp://"), name
        assert env["HYSBYS_QUORUM_QUEUES"] == "true", name
        assert env["HYSBYS_HTTP_HOST"] == "0.0.0.0", name
        for var in ("HYSBYS_SECRET_KEY", "HYSBYS_ADMIN_TOKEN"):
            assert var in env, f"{name} lacks {var}"


def test_compose_processes_start_after_migrations_and_the_broker():
    for name, svc in hysbys_compose_services().items():
        if name == "migrate":
            assert svc["depends_on"]["postgres"]["condition"] == "service_healthy"
            continue
        assert svc["depends_on"]["migrate"]["condition"] == "service_completed_successfully", name
        assert svc["depends_on"]["rabbitmq"]["condition"] == "service_healthy", name


def test_the_compose_dev_secret_key_default_is_a_valid_fernet_key():
    from cryptography.fernet import Fernet

    value = hysbys_compose_services()["notify-api"]["environment"]["HYSBYS_SECRET_KEY"]
    default = re.fullmatch(r"\$\{HYSBYS_SECRET_KEY:-(.+)\}", value)
    assert default, "HYSBYS_SECRET_KEY can be overridden from the environment"
    Fernet(default.group(1).encode())


def test_compose_rabbitmq_loads_the_generated_definitions():
    conf = (DEPLOY / "rabbitmq" / "rabbitmq.conf").read_text()
    assert "management.load_definitions = /etc/rabbitmq/definitions.json" in conf
    mounts = compose_services()["rabbitmq"]["volumes"]
    assert "./deploy/rabbitmq/definitions.json:/etc/rabbitmq/definitions.json:ro" in mounts
    assert "./deploy/rabbitmq/rabbitmq.conf:/etc/rabbitmq/rabbitmq.conf:ro" in mounts


# -- RabbitMQ definitions ------------------------------------------------------
def test_definitions_json_is_exactly_what_the_generator_writes_from_the_topology():
    gen = generator()
    committed = (DEPLOY / "rabbitmq" / "definitions.json").read_text()
    assert committed == gen.render(gen.build_definitions()), (
        "run: PYTHONPATH=. python3 deploy/rabbitmq/generate_definitions.py")


def test_definitions_declare_both_exchanges_durable():
    exchanges = {e["name"]: e for e in definitions()["exchanges"]}
    assert exchanges[topology.EVENTS_EXCHANGE]["type"] == "topic"
    assert exchanges[topology.DELAY_EXCHANGE]["type"] == "headers"
    assert all(e["durable"] and not e["auto_delete"] for e in exchanges.values())


def test_every_queue_is_a_durable_quorum_queue_dead_lettering_to_its_dlq():
    queues = {q["name"]: q for q in definitions()["queues"]}
    for spec in topology.QUEUES:
        assert queues[spec.name]["durable"] is True
        assert queues[spec.name]["arguments"] == {
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": f"{spec.name}.dlq",
            "x-queue-type": "quorum",
        }
        assert queues[spec.dlq]["durable"] is True
        assert queues[spec.dlq]["arguments"] == {"x-queue-type": "quorum"}


def test_every_delay_tier_holds_messages_for_its_ttl_then_returns_them():
    d = definitions()
    queues = {q["name"]: q for q in d["queues"]}
    for seconds in topology.DELAY_TIERS:
        name = f"hysbys.delay.{seconds}s"
        assert queues[name]["arguments"] == {
            "x-message-ttl": seconds * 1000,
            "x-dead-letter-exchange": "",
            "x-queue-type": "quorum",
            # a retry is dead-lettered back at least once, never dropped by the broker
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
        }
        bindings = [b for b in d["bindings"] if b["destination"] == name]
        assert bindings == [{
            "source": topology.DELAY_EXCHANGE, "vhost": "/", "destination": name,
            "destination_type": "queue", "routing_key": "",
            "arguments": {"x-match": "all", "hysbys-delay": str(seconds)},
        }]


def test_definitions_bind_exactly_the_event_types_of_every_queue():
    declared = {(b["destination"], b["routing_key"]) for b in definitions()["bindings"]
                if b["source"] == topology.EVENTS_EXCHANGE}
    expected = {(spec.name, event_type)
                for spec in topology.QUEUES for event_type in spec.event_types}
    assert declared == expected


def test_definitions_match_what_a_worker_declares_with_quorum_queues():
    # A mismatch would make the worker's queue.declare fail with PRECONDITION_FAILED.
    queues = {q["name"]: q["arguments"] for q in definitions()["queues"]}
    for spec in topology.QUEUES:
        for q in topology.kombu_queues(spec, quorum=True):
            assert queues[q.name] == q.queue_arguments
    for q in topology.kombu_delay_queues(quorum=True):
        assert queues[q.name] == q.queue_arguments


def test_definitions_declare_no_queue_the_topology_does_not_know():
    known = {name for spec in topology.QUEUES for name in (spec.name, spec.dlq)}
    known |= {f"hysbys.delay.{s}s" for s in topology.DELAY_TIERS}
    assert {q["name"] for q in definitions()["queues"]} == known


def test_the_delivery_limit_policy_matches_every_consumer_queue_and_nothing_else():
    policy = next(p for p in definitions()["policies"] if p["name"] == "hysbys-consumer-queues")
    pattern = re.compile(policy["pattern"])
    for spec in topology.QUEUES:
        assert pattern.match(spec.name)
        assert not pattern.match(spec.dlq)
    for seconds in topology.DELAY_TIERS:
        assert not pattern.match(f"hysbys.delay.{seconds}s")


def test_the_delay_queue_policy_gives_at_least_once_to_delay_queues_an_earlier_release_made():
    policy = next(p for p in definitions()["policies"] if p["name"] == "hysbys-delay-queues")
    assert policy["definition"] == {"dead-letter-strategy": "at-least-once",
                                    "overflow": "reject-publish"}
    pattern = re.compile(policy["pattern"])
    for seconds in topology.DELAY_TIERS:
        assert pattern.match(topology.delay_queue_name(seconds))
    for spec in topology.QUEUES:
        assert not pattern.match(spec.name) and not pattern.match(spec.dlq)


def test_the_classic_delay_queues_of_the_embedded_and_test_brokers_keep_plain_arguments():
    # at-least-once dead-lettering is a quorum-queue feature: a classic queue refuses it
    for q in topology.kombu_delay_queues(quorum=False):
        assert "x-dead-letter-strategy" not in q.queue_arguments
        assert "x-overflow" not in q.queue_arguments


# -- Prometheus and Grafana ----------------------------------------------------
def dns_targets(job: dict) -> set[str]:
    return {f"{name}:{sd['port']}" for sd in job.get("dns_sd_configs", [])
            for name in sd["names"]}


def long_running_compose_processes() -> dict[str, dict]:
    return {name: svc for name, svc in hysbys_compose_services().items()
            if svc["command"][:3] != ["hysbys", "db", "upgrade"]}


def test_prometheus_discovers_every_replica_of_every_process_by_dns():
    config = load_yaml(DEPLOY / "prometheus" / "prometheus.yml")
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert dns_targets(jobs["hysbys"]) == {f"{s}-api:{p}" for s, p in API_PORTS.items()}
    workers = {name for name, svc in long_running_compose_processes().items()
               if svc["command"][1] != "serve"}
    assert dns_targets(jobs["hysbys-workers"]) == {f"{name}:9100" for name in workers}
    for job in ("hysbys", "hysbys-workers"):
        assert {"source_labels": ["__meta_dns_name"], "target_label": "process"} in \
            jobs[job]["relabel_configs"]
        assert all(sd["type"] == "A" for sd in jobs[job]["dns_sd_configs"])
    assert config["rule_files"] == ["alerts.yml"]


def test_every_compose_process_serves_probes_and_metrics_and_is_health_checked():
    for name, svc in long_running_compose_processes().items():
        env = svc["environment"]
        if svc["command"][1] == "serve":
            port = API_PORTS[svc["command"][2]]
        else:
            assert env["HYSBYS_METRICS_PORT"] == "9100", name
            port = 9100
        assert f"http://127.0.0.1:{port}/healthz" in " ".join(svc["healthcheck"]["test"]), name


def test_compose_runs_redis_with_a_health_check():
    redis = compose_services()["redis"]
    assert redis["image"].startswith("redis:")
    assert "redis-cli" in redis["healthcheck"]["test"]


def alert_rules() -> list[dict]:
    return [rule for group in load_yaml(DEPLOY / "prometheus" / "alerts.yml")["groups"]
            for rule in group["rules"]]


def test_a_down_alert_covers_every_process_kind_of_compose_and_kubernetes():
    kinds = set(long_running_compose_processes())
    kinds |= {name for name, _ in k8s_containers("Deployment") if name != "redis"}
    watched = {rule["labels"].get("process") for rule in alert_rules()
               if rule["alert"] == "HysbysProcessDown"}
    assert watched == kinds
    for rule in alert_rules():
        if rule["alert"] == "HysbysProcessDown":
            assert f'process="{rule["labels"]["process"]}"' in rule["expr"]
            assert rule["expr"].startswith("absent(")
    down = next(r for r in alert_rules() if r["alert"] == "HysbysApiDown")
    assert down["expr"] == 'up{job=~"hysbys|hysbys-workers"} == 0'


def require_tool(name: str) -> str:
    path = shutil.which(name) or (str(ROOT / ".venv" / "bin" / name)
                                  if (ROOT / ".venv" / "bin" / name).exists() else None)
    assert path, f"{name} is missing: `make deps-tools` installs it (make test does)"
    return path


def test_promtool_accepts_the_alert_rules_and_the_prometheus_config():
    promtool = require_tool("promtool")
    for args in (["check", "rules", "alerts.yml"], ["check", "config", "prometheus.yml"]):
        done = subprocess.run([promtool, *args], cwd=DEPLOY / "prometheus",
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_uses_only_metrics_that_the_code_registers():
    rules = alert_rules()
    assert rules
    for rule in rules:
        assert not unknown_metrics(rule["expr"]), (rule["alert"], unknown_metrics(rule["expr"]))
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]


def test_alerts_watch_dlqs_outbox_scheduler_lag_and_providers():
    exprs = " ".join(rule["expr"] for group in load_yaml(DEPLOY / "prometheus" / "alerts.yml")
                     ["groups"] for rule in group["rules"])
    for metric in ("hysbys_queue_messages", "hysbys_outbox_backlog",
                   "hysbys_outbox_oldest_age_seconds", "hysbys_events_dead_lettered_total",
                   "hysbys_scheduler_lag_seconds", "hysbys_provider_errors_total"):
        assert metric in exprs
    assert re.search(r'hysbys_queue_messages\{queue=~"[^"]*dlq"\}', exprs)


def test_every_grafana_panel_uses_only_metrics_that_the_code_registers():
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "hysbys.json").read_text())
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            assert not unknown_metrics(target["expr"]), (panel["title"], target["expr"])


def test_the_metric_name_check_catches_a_misspelt_metric():
    assert unknown_metrics("rate(hysbys_events_publisht_total[5m])") == {
        "hysbys_events_publisht_total"}
    assert not unknown_metrics(
        "histogram_quantile(0.9, rate(hysbys_http_request_duration_seconds_bucket[5m]))")


# -- Kubernetes ----------------------------------------------------------------
def test_every_kubernetes_document_parses_and_is_listed_in_the_kustomization():
    docs = k8s_documents()
    assert all("kind" in doc and "apiVersion" in doc for _, doc in docs)
    kustomization = load_yaml(DEPLOY / "k8s" / "base" / "kustomization.yaml")
    listed = set(kustomization["resources"])
    files = {path.name for path, doc in docs if doc["kind"] != "Kustomization"}
    assert listed == files


def test_every_kubernetes_worker_names_a_service_whose_queues_exist():
    workers = [worker_service(c.get("command")) for _, c in k8s_containers("Deployment")]
    workers = [w for w in workers if w is not None]
    assert workers
    for service in workers:
        assert topology.queues_for(service), service


def test_every_queue_has_a_consumer_on_kubernetes():
    consumed = {worker_service(c.get("command")) for _, c in k8s_containers("Deployment")}
    for spec in topology.QUEUES:
        assert spec.service in consumed, spec.name


def test_kubernetes_apis_are_probed_on_healthz_and_readyz_and_request_resources():
    apis = {c["command"][2]: c for _, c in k8s_containers("Deployment")
            if c.get("command", [])[:2] == ["hysbys", "serve"]}
    assert set(apis) == set(SERVICES)
    for service, container in apis.items():
        assert container["ports"][0]["containerPort"] == API_PORTS[service]
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    for _, container in k8s_containers("Deployment") + k8s_containers("Job"):
        assert container["resources"]["requests"], container["name"]


def test_keda_scales_each_worker_on_exactly_the_queues_it_consumes():
    commands = {name: c.get("command") for name, c in k8s_containers("Deployment")}
    scaled = [doc for _, doc in k8s_documents() if doc["kind"] == "ScaledObject"]
    scaled_targets = set()
    for obj in scaled:
        target = obj["spec"]["scaleTargetRef"]["name"]
        service = worker_service(commands[target])
        assert service is not None, f"{target} is not a worker"
        queues = {t["metadata"]["queueName"] for t in obj["spec"]["triggers"]
                  if t["type"] == "rabbitmq"}
        assert queues == {spec.name for spec in topology.queues_for(service)}
        scaled_targets.add(target)
    workers = {name for name, command in commands.items() if worker_service(command)}
    assert scaled_targets == workers


# -- image and CI ----------------------------------------------------------------
def test_the_image_runs_as_a_non_root_user_and_exposes_the_api_and_metrics_ports():
    text = (ROOT / "Dockerfile").read_text()
    users = re.findall(r"^USER\s+(\S+)", text, re.MULTILINE)
    assert users and users[-1] not in ("root", "0")
    assert re.search(r"^EXPOSE 8001 8002 8003 9100$", text, re.MULTILINE)


def test_the_image_base_is_pinned_by_digest_and_installs_the_lock_file():
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim@sha256:[0-9a-f]{64}$", text, re.MULTILINE)
    installs = re.findall(r"^RUN pip install (.+?)(?: &&|$)", text, re.MULTILINE)
    assert installs == ["-r requirements.lock", "--no-deps ."]


def test_the_image_builds_the_consoles_assets_and_catalogues_as_make_does():
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM node:20-slim@sha256:[0-9a-f]{64} AS console$", text, re.MULTILINE)
    assert "npm ci" in text and "console.scss /build/console.css" in text
    makefile = (ROOT / "Makefile").read_text()
    for copied in ("govuk-frontend.min.js", "assets/images", "assets/manifest.json"):
        assert copied in text and copied in makefile
    assert "COPY --from=console /build/ services/notify/console/static/build/" in text
    assert re.search(r"^RUN python -m services.notify.console.catalogues compile$", text,
                     re.MULTILINE)
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert "frontend/node_modules" in ignored


def test_the_image_has_a_healthcheck_for_every_role():
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r'^\s+CMD \["python", "-m", "services.healthcheck"\]$', text, re.MULTILINE)
    assert "HEALTHCHECK" in text


def requirement_names(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        if m := re.match(r"^([A-Za-z0-9._-]+)==(\S+)", line):
            pins[re.sub(r"[-_.]+", "-", m.group(1)).lower()] = m.group(2)
    return pins


def test_the_lock_files_pin_every_dependency_pyproject_names_within_its_range():
    import tomllib

    from packaging.requirements import Requirement

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = requirement_names(ROOT / "requirements.lock")
    dev = requirement_names(ROOT / "requirements-dev.lock")
    for spec, lock in [(r, runtime) for r in project["dependencies"]] + \
            [(r, dev) for r in project["dependencies"] + project["optional-dependencies"]["dev"]]:
        req = Requirement(spec)
        name = re.sub(r"[-_.]+", "-", req.name).lower()
        assert name in lock, f"{name} is not pinned: run make lock"
        assert req.specifier.contains(lock[name], prereleases=True), (name, lock[name])
    for path in ("requirements.lock", "requirements-dev.lock"):
        # no index, link or local path that works only on the machine that locked it
        lines = [ln for ln in (ROOT / path).read_text().splitlines()
                 if ln.strip() and not ln.lstrip().startswith("#")]
        assert all(re.match(r"^[A-Za-z0-9._-]+==\S+$", ln) for ln in lines), path


def test_make_installs_from_the_lock_and_refreshes_it_with_make_lock():
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^\$\(STAMP\): pyproject.toml requirements.lock requirements-dev.lock$",
                     makefile, re.MULTILINE)
    assert "$(BIN)/pip install --quiet -r requirements-dev.lock" in makefile
    assert re.search(r"^lock: ", makefile, re.MULTILINE)
    assert re.search(r"^test: \$\(STAMP\) deps-browser deps-tools", makefile, re.MULTILINE)


def test_the_ci_script_is_executable_and_stops_on_the_first_error():
    script = ROOT / ".ci" / "run"
    assert os.access(script, os.X_OK)
    assert "set -euo pipefail" in script.read_text()
    assert "make test" in script.read_text()


def test_kubernetes_runs_several_dispatchers_that_may_overlap_in_a_rollout():
    # they share sender throttles and provider circuits (Redis or the database), so
    # more than one, and old beside new during a rollout, is safe
    dispatchers = [doc for _, doc in k8s_documents() if doc["kind"] == "Deployment" and any(
        c.get("command") == ["hysbys", "dispatcher"]
        for c in doc["spec"]["template"]["spec"]["containers"])]
    assert len(dispatchers) == 1
    spec = dispatchers[0]["spec"]
    assert spec["replicas"] >= 2 and spec["strategy"]["type"] == "RollingUpdate"
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] < spec["replicas"]
    scaled = {doc["spec"]["scaleTargetRef"]["name"] for _, doc in k8s_documents()
              if doc["kind"] == "ScaledObject"}
    assert dispatchers[0]["metadata"]["name"] not in scaled


# -- Kubernetes overlays, rendered by kustomize and validated ---------------------
OVERLAYS = ("production", "staging")
# Custom resources of the operators the platform relies on: no schema in
# kubernetes-validate, so their fields are checked by the tests below instead.
OPERATOR_KINDS = {"ScaledObject", "TriggerAuthentication", "PodMonitor", "Cluster", "Pooler"}


@cache
def rendered(overlay: str) -> tuple[dict, ...]:
    kubectl = require_tool("kubectl")
    done = subprocess.run([kubectl, "kustomize", str(DEPLOY / "k8s" / "overlays" / overlay)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return tuple(doc for doc in yaml.safe_load_all(done.stdout) if doc)


def of_kind(docs, kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def test_both_overlays_render_the_whole_base_into_their_own_namespace():
    base_kinds = sorted((doc["kind"], doc["metadata"]["name"]) for _, doc in k8s_documents()
                        if doc["kind"] != "Kustomization")
    for overlay, namespace in (("production", "hysbys"), ("staging", "hysbys-staging")):
        docs = rendered(overlay)
        assert sorted((d["kind"], d["metadata"]["name"].replace("hysbys-staging", "hysbys"))
                      for d in docs) == base_kinds
        assert {d["metadata"].get("namespace") for d in docs if d["kind"] != "Namespace"} == \
            {namespace}
        for deploy in of_kind(docs, "Deployment").values():
            for c in deploy["spec"]["template"]["spec"]["containers"]:
                assert c["image"] != "hysbys", "the overlay's image is set"


def test_the_rendered_overlays_pass_the_kubernetes_schemas_strictly():
    import kubernetes_validate

    for overlay in OVERLAYS:
        for doc in rendered(overlay):
            if doc["kind"] in OPERATOR_KINDS:
                continue
            kubernetes_validate.validate(doc, "1.30.0", strict=True)
        assert {d["kind"] for d in rendered(overlay)} - OPERATOR_KINDS >= {
            "Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget",
            "NetworkPolicy", "ConfigMap", "Job", "Namespace"}


def test_the_schema_check_rejects_a_misspelt_field():
    import kubernetes_validate

    deploy = dict(of_kind(rendered("production"), "Deployment")["notify-api"])
    deploy["spec"] = {**deploy["spec"], "replicaz": 2}
    try:
        kubernetes_validate.validate(deploy, "1.30.0", strict=True)
    except kubernetes_validate.ValidationError:
        return
    raise AssertionError("a misspelt field passed the schema check")


def test_every_process_is_probed_spread_and_covered_by_a_disruption_budget():
    for overlay in OVERLAYS:
        docs = rendered(overlay)
        budgets = {b["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"]: b
                   for b in of_kind(docs, "PodDisruptionBudget").values()}
        for name, deploy in of_kind(docs, "Deployment").items():
            pod = deploy["spec"]["template"]["spec"]
            for c in pod["containers"]:
                assert c["livenessProbe"] and c["readinessProbe"], (overlay, name)
            assert budgets[name]["spec"]["maxUnavailable"] == 1, (overlay, name)
            if name != "redis":
                keys = {t["topologyKey"] for t in pod["topologySpreadConstraints"]}
                assert keys == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}
                for t in pod["topologySpreadConstraints"]:
                    assert t["labelSelector"]["matchLabels"] == {"app.kubernetes.io/name": name}


def test_processes_without_an_api_are_probed_on_their_metrics_port():
    docs = rendered("production")
    config = of_kind(docs, "ConfigMap")["hysbys-config"]["data"]
    assert config["HYSBYS_METRICS_PORT"] == "9100"
    for name, deploy in of_kind(docs, "Deployment").items():
        c = deploy["spec"]["template"]["spec"]["containers"][0]
        if c.get("command", [None, None])[:2] in (["hysbys", "worker"], ["hysbys", "dispatcher"],
                                                  ["hysbys", "ticker"]):
            assert c["ports"] == [{"name": "metrics", "containerPort": 9100}], name
            assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
            assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}


def test_the_apis_scale_with_an_hpa_and_leave_the_replica_count_to_it():
    for overlay in OVERLAYS:
        docs = rendered(overlay)
        hpas = {h["spec"]["scaleTargetRef"]["name"]: h
                for h in of_kind(docs, "HorizontalPodAutoscaler").values()}
        for service in SERVICES:
            hpa = hpas[f"{service}-api"]["spec"]
            assert 1 <= hpa["minReplicas"] <= hpa["maxReplicas"]
            assert "replicas" not in of_kind(docs, "Deployment")[f"{service}-api"]["spec"]


def test_podmonitors_scrape_every_hysbys_pod_with_the_labels_the_alerts_use():
    docs = rendered("production")
    monitors = of_kind(docs, "PodMonitor")
    selected = set()
    for monitor in monitors.values():
        sel = monitor["spec"]["selector"]
        components = set(sel.get("matchExpressions", [{}])[0].get("values", [])) or \
            {sel["matchLabels"]["app.kubernetes.io/component"]}
        selected |= components
        [endpoint] = monitor["spec"]["podMetricsEndpoints"]
        jobs = [r["replacement"] for r in endpoint["relabelings"] if r["targetLabel"] == "job"]
        assert jobs in (["hysbys"], ["hysbys-workers"])
        assert any(r["targetLabel"] == "process" for r in endpoint["relabelings"])
    components = {d["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"]
                  for d in of_kind(docs, "Deployment").values()} - {"cache"}
    assert components <= selected


def selects(selector: dict, labels: dict) -> bool:
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions", []):
        if expr["operator"] == "In" and labels.get(expr["key"]) not in expr["values"]:
            return False
    return True


def pod_labels(docs) -> dict[str, dict]:
    out = {name: d["spec"]["template"]["metadata"]["labels"]
           for name, d in of_kind(docs, "Deployment").items()}
    out.update({name: d["spec"]["template"]["metadata"]["labels"]
                for name, d in of_kind(docs, "Job").items()})
    return out


def test_network_policies_deny_by_default_and_open_only_the_paths_hysbys_uses():
    docs = rendered("production")
    policies = of_kind(docs, "NetworkPolicy")
    deny = policies["hysbys-default-deny"]["spec"]
    assert set(deny["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny and "egress" not in deny
    labels = pod_labels(docs)
    for name, pod in labels.items():       # every Hysbys pod and Redis starts closed
        assert selects(deny["podSelector"], pod), name

    def egress_ports(pod: dict) -> set[int]:
        return {port["port"] for p in policies.values() if "Egress" in p["spec"]["policyTypes"]
                and selects(p["spec"]["podSelector"], pod)
                for rule in p["spec"].get("egress", []) for port in rule.get("ports", [])}

    # only the workers that call providers and tenants leave the cluster
    outside = {name for name, pod in labels.items()
               if any(selects(p["spec"]["podSelector"], pod) and any(
                   "ipBlock" in peer for rule in p["spec"].get("egress", [])
                   for peer in rule["to"]) for p in policies.values())}
    assert outside == {"notify-worker", "notify-dispatcher", "inbound-worker"}
    for name in ("notify-api", "scheduler-ticker", "hysbys-migrate"):
        assert egress_ports(labels[name]) >= {5432, 5672, 53}, name
    # the APIs are reachable on their ports only, the workers on 9100 from Prometheus only
    api_in = policies["hysbys-apis-ingress"]["spec"]
    assert {p["port"] for r in api_in["ingress"] for p in r["ports"]} == set(API_PORTS.values())
    worker_in = policies["hysbys-workers-ingress"]["spec"]
    assert [p["port"] for r in worker_in["ingress"] for p in r["ports"]] == [9100]


def process_connections(container: dict, pool_per_engine: int) -> int:
    """Database connections one pod can open: a pool per engine, per gunicorn worker."""
    command = container.get("command") or []
    if command[:2] == ["hysbys", "serve"]:
        workers = int(command[command.index("--workers") + 1]) if "--workers" in command else 2
        return workers * pool_per_engine
    if command[:3] == ["hysbys", "db", "upgrade"]:
        return len(SERVICES) * pool_per_engine     # one engine per service's migrations
    return pool_per_engine


def test_pgbouncer_and_postgres_connection_limits_hold_at_every_autoscaler_maximum():
    from shared.db import make_engine

    engine = make_engine("postgresql+psycopg2://hysbys@pooler/hysbys", "notify")
    per_engine = engine.pool.size() + engine.pool._max_overflow
    engine.dispose()
    for overlay in OVERLAYS:
        docs = rendered(overlay)
        maxima = {d["metadata"]["name"]: d["spec"].get("replicas", 1)
                  for d in of_kind(docs, "Deployment").values()}
        for hpa in of_kind(docs, "HorizontalPodAutoscaler").values():
            maxima[hpa["spec"]["scaleTargetRef"]["name"]] = hpa["spec"]["maxReplicas"]
        for obj in of_kind(docs, "ScaledObject").values():
            maxima[obj["spec"]["scaleTargetRef"]["name"]] = obj["spec"]["maxReplicaCount"]
        clients = 0
        for kind in ("Deployment", "Job"):
            for name, d in of_kind(docs, kind).items():
                for c in d["spec"]["template"]["spec"]["containers"]:
                    if c["image"].startswith("redis:"):
                        continue
                    clients += maxima.get(name, 1) * process_connections(c, per_engine)
        pooler = of_kind(docs, "Pooler")["hysbys-db-pooler"]["spec"]
        params = pooler["pgbouncer"]["parameters"]
        assert pooler["pgbouncer"]["poolMode"] == "transaction"
        assert "search_path" in params["track_extra_parameters"]
        # any one pooler instance can take every client (clients are not spread evenly)
        assert clients <= int(params["max_client_conn"]), (overlay, clients)
        servers = pooler["instances"] * (int(params["default_pool_size"])
                                         + int(params["reserve_pool_size"]))
        pg = of_kind(docs, "Cluster")["hysbys-db"]["spec"]["postgresql"]["parameters"]
        assert servers + int(pg["superuser_reserved_connections"]) < int(pg["max_connections"]), \
            (overlay, servers)
    assert clients > 0


def test_the_database_url_in_the_readme_points_at_the_pooler():
    readme = (DEPLOY / "k8s" / "README.md").read_text()
    assert "@hysbys-db-pooler:5432/hysbys" in readme
