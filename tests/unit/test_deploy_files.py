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
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
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


# -- Prometheus and Grafana ----------------------------------------------------
def test_prometheus_scrapes_the_three_apis():
    config = load_yaml(DEPLOY / "prometheus" / "prometheus.yml")
    targets = {t for job in config["scrape_configs"] for sc in job.get("static_configs", [])
               for t in sc["targets"]}
    for service, port in API_PORTS.items():
        assert f"{service}-api:{port}" in targets
    assert config["rule_files"] == ["alerts.yml"]


def test_every_alert_uses_only_metrics_that_the_code_registers():
    rules = [rule for group in load_yaml(DEPLOY / "prometheus" / "alerts.yml")["groups"]
             for rule in group["rules"]]
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
    kustomization = load_yaml(DEPLOY / "k8s" / "kustomization.yaml")
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
    commands = {name: c["command"] for name, c in k8s_containers("Deployment")}
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
def test_the_image_runs_as_a_non_root_user_and_exposes_the_three_api_ports():
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim\b", text, re.MULTILINE)
    assert re.search(r"\bpip install \.", text)
    users = re.findall(r"^USER\s+(\S+)", text, re.MULTILINE)
    assert users and users[-1] not in ("root", "0")
    assert re.search(r"^EXPOSE 8001 8002 8003$", text, re.MULTILINE)


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
