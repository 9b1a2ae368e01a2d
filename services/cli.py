"""``hysbys``: the one command for running and operating the platform.

    hysbys up [--demo]                       everything in one process (make run)
    hysbys serve notify|inbound|scheduler    one service's HTTP API
    hysbys worker notify|inbound|scheduler   its consumers, relay (and dispatcher)
    hysbys ticker                            the scheduler's ticker
    hysbys dispatcher                        notify's dispatcher alone (beside worker --no-dispatcher)
    hysbys relay [SERVICE ...]               outbox relays only
    hysbys db upgrade                        migrate every service's schema
    hysbys tenants create|list               onboard councils and health boards
    hysbys keys create|revoke                API keys
    hysbys dlq list|replay                   dead-lettered messages
    hysbys dlq purge --queue Q [--yes]       drop them (or --message-id ID ...); dry run without --yes
    hysbys status [--watch N]                the /ops figures in a terminal
    hysbys retention run                     purge personal data past retention
    hysbys bench [SCENARIO ...]              benchmarks (make bench)
"""
from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Callable

from shared import logs
from shared.config import SERVICES, ConfigError, Settings

# Exit codes (docs/cli.md has the table; tests/unit/test_cli_surface.py holds the code to it).
EXIT_OK = 0        # done
EXIT_FAILED = 1    # could not do it (or not all of it): the database, a setting, a dry run
EXIT_USAGE = 2     # refused what was asked: bad arguments or input, or not possible here
EXIT_CODES = {EXIT_OK: "done", EXIT_FAILED: "failed", EXIT_USAGE: "refused"}


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("hysbys")
    except PackageNotFoundError:     # run from a source tree that was never installed
        return "0+unknown"


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except ConfigError as exc:
        print(f"hysbys: {exc}", file=sys.stderr)
        sys.exit(EXIT_FAILED)


def _wait_for_signal() -> None:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(0.5):
        pass


def _serve_process_endpoints(settings: Settings, bg) -> None:
    """/metrics, /healthz (every loop alive) and /readyz on HYSBYS_METRICS_PORT, when set."""
    if settings.metrics_port:
        from shared.metrics import serve_process_endpoints

        serve_process_endpoints(settings.http_host, settings.metrics_port,
                                alive=lambda: all(t.is_alive() for t in bg.threads),
                                readiness=bg.runtime.readiness)


def _service(settings: Settings, name: str, bus=None):
    from services.inbound import wiring as inbound_wiring
    from services.notify import wiring as notify_wiring
    from services.scheduler import wiring as scheduler_wiring

    builders: dict[str, Callable] = {"notify": notify_wiring.build,
                                     "inbound": inbound_wiring.build,
                                     "scheduler": scheduler_wiring.build}
    return builders[name](settings, bus)


# -- running -----------------------------------------------------------------------

def cmd_up(args) -> int:
    from services.embedded import Platform

    settings = _settings()
    logs.configure(settings.log_level, json_lines=not sys.stderr.isatty())
    platform = Platform(settings)
    platform.migrate()
    platform.start()
    urls = platform.urls()
    print("Hysbys is running (embedded: SQLite under ./var/, in-memory broker, simulator).")
    for name, url in urls.items():
        print(f"  {name:<10} {url}   ({url}/healthz, {url}/metrics, {url}/openapi.json)")
    print(f"  admin token: {settings.admin_token}")
    if args.demo:
        from services.demo import ensure_demo

        demo = ensure_demo(platform)
        print(f"Demo tenant: {demo['name']} (slug {demo['slug']}, id {demo['id']})")
        print(f"  demo API key (live, simulator only): {demo['api_key']}")
        print(f"  demo API key (test):                 {demo['test_api_key']}")
        print(f"  template {demo['template_id']}; broadcast campaign {demo['campaign_id']} "
              f"to {demo['subscribers']} subscribers fires at {demo['send_at']}")
        console = demo["console"]
        print(f"Console: {console['url']}  (sign in as {console['email']}, "
              f"password {console['password']}; role admin)")
    print("Press Ctrl-C to stop.", flush=True)
    try:
        _wait_for_signal()
    finally:
        print("Stopping…", flush=True)
        platform.stop()
    return 0


def _multiprocess_metrics(settings: Settings, service: str):
    """Point prometheus-client at a per-pod directory shared by gunicorn's workers.

    Must run before prometheus-client is first imported (it picks its value store
    then), so before the service is built."""
    import os

    if "prometheus_client.values" in sys.modules:
        raise RuntimeError("prometheus_client was imported before `hysbys serve` chose "
                           "its multiprocess directory")
    # per service and port: two `hysbys serve` on one machine (benchmarks, tests) never share
    directory = (settings.prometheus_multiproc_dir
                 or settings.var_dir / "metrics" / f"{service}-{settings.ports[service]}")
    # Emptied (files left by a previous run would be counted again) and made *before*
    # shared.metrics is imported: its metrics open their files there as they are made.
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)   # read by prometheus-client
    from shared import metrics

    metrics.METRICS.multiprocess_dir = directory
    return metrics


def cmd_serve(args) -> int:
    settings = _settings()
    logs.configure(settings.log_level, settings.log_json)
    metrics = None if args.dev else _multiprocess_metrics(settings, args.service)
    svc = _service(settings, args.service)
    app = svc.create_app()
    port = settings.ports[args.service]
    if args.dev:
        app.run(host=settings.http_host, port=port, threaded=True)
        return 0
    from gunicorn.app.base import BaseApplication

    def child_exit(_server, worker):
        metrics.worker_exited(worker.pid)

    class _Gunicorn(BaseApplication):
        def load_config(self):
            self.cfg.set("child_exit", child_exit)
            self.cfg.set("bind", f"{settings.http_host}:{port}")
            self.cfg.set("workers", args.workers)
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("threads", args.threads)
            self.cfg.set("accesslog", None)
            # uploads of up to 1,000,000 subscribers are streamed inside one request
            self.cfg.set("timeout", args.timeout)

        def load(self):
            return app

    _Gunicorn().run()
    return 0


def _run_until_signalled(settings: Settings, bg, what: str, declare=None) -> int:
    """Start ``bg`` (declaring the topology first when given a runtime's bus), serve
    /metrics, and run until SIGTERM/SIGINT: the shape of every long-running command."""
    if declare is not None:
        with declare.connection() as conn:
            declare.declare(conn)
    bg.start()
    _serve_process_endpoints(settings, bg)
    print(f"hysbys {what} running", flush=True)
    _wait_for_signal()
    bg.stop()
    return 0


def cmd_worker(args) -> int:
    settings = _settings()
    logs.configure(settings.log_level, settings.log_json)
    svc = _service(settings, args.service)
    if args.service == "scheduler":
        bg = svc.background(with_ticker=False)
    elif args.service == "notify":
        bg = svc.background(dispatcher=not args.no_dispatcher)
    else:
        bg = svc.background()
    return _run_until_signalled(settings, bg, f"{args.service} worker", declare=svc.runtime.bus)


def cmd_dispatcher(_args) -> int:
    settings = _settings()
    logs.configure(settings.log_level, settings.log_json)
    svc = _service(settings, "notify")
    # the dispatcher, and a relay for the events it records
    return _run_until_signalled(settings, svc.background(consumers=False), "dispatcher")


def cmd_ticker(_args) -> int:
    from shared.runtime import Background

    settings = _settings()
    logs.configure(settings.log_level, settings.log_json)
    svc = _service(settings, "scheduler")
    return _run_until_signalled(settings, Background(svc.runtime, {}, [svc.ticker.run_forever]),
                                "ticker")


def cmd_relay(args) -> int:
    from shared.runtime import Background

    settings = _settings()
    logs.configure(settings.log_level, settings.log_json)
    bgs = [Background(_service(settings, name).runtime, {}, []) for name in args.services]
    for bg in bgs:
        bg.start()
    _wait_for_signal()
    for bg in bgs:
        bg.stop()
    return 0


def cmd_db_upgrade(_args) -> int:
    settings = _settings()
    for name in SERVICES:
        _service(settings, name).runtime.migrate()
        print(f"{name}: migrated to head")
    return 0


# -- tenants and keys --------------------------------------------------------------

def _notify(settings: Settings):
    svc = _service(settings, "notify")
    svc.runtime.migrate()
    return svc


def cmd_tenants_create(args) -> int:
    from services.notify import tenants
    from shared.errors import ApiError

    settings = _settings()
    svc = _notify(settings)
    try:
        with svc.runtime.db.transaction() as session:
            created = tenants.create_tenant(session, svc.runtime.box, name=args.name,
                                            slug=args.slug, default_language=args.language)
    except ApiError as exc:
        print(f"hysbys: {exc.message}", file=sys.stderr)
        return EXIT_USAGE
    if args.json:
        print(json.dumps(created.as_dict()))
    else:
        print(f"Created {args.name} ({created.slug})\n  id:           {created.id}\n"
              f"  api key:      {created.api_key}\n  test api key: {created.test_api_key}\n"
              "Keep the keys safe: they are not shown again.")
    return 0


def cmd_tenants_list(args) -> int:
    import sqlalchemy as sa

    from shared.tenancy import Tenant

    svc = _notify(_settings())
    with svc.runtime.db.read() as session:
        rows = session.scalars(sa.select(Tenant).order_by(Tenant.slug)).all()
    if args.json:
        print(json.dumps([{"id": t.id, "slug": t.slug, "name": t.name, "active": t.active}
                          for t in rows]))
    else:
        for t in rows:
            print(f"{t.slug:<30} {t.id}  {t.name}{'' if t.active else '  (inactive)'}")
    return 0


def cmd_keys_create(args) -> int:
    from services.notify import tenants
    from shared.errors import ApiError

    svc = _notify(_settings())
    try:
        with svc.runtime.db.transaction() as session:
            key_id, api_key = tenants.create_key(session, svc.runtime.box, args.tenant,
                                                 args.name, args.type, args.scope or [])
    except ApiError as exc:
        print(f"hysbys: {exc.message}", file=sys.stderr)
        return EXIT_USAGE
    print(json.dumps({"id": key_id, "api_key": api_key}) if args.json else
          f"key id: {key_id}\napi key: {api_key}")
    return 0


def cmd_keys_revoke(args) -> int:
    from services.notify import tenants
    from shared.errors import ApiError

    svc = _notify(_settings())
    try:
        with svc.runtime.db.transaction() as session:
            tenants.revoke_key(session, args.tenant, args.key_id)
    except ApiError as exc:
        print(f"hysbys: {exc.message}", file=sys.stderr)
        return EXIT_USAGE
    print(f"revoked {args.key_id}")
    return 0


# -- dead letters ------------------------------------------------------------------

def cmd_status(args) -> int:
    from services import status

    return status.run(_settings(), args)


def cmd_retention_run(_args) -> int:
    from services.inbound import retention as inbound_retention
    from services.notify import retention
    from services.scheduler import retention as scheduler_retention

    settings = _settings()
    return retention.run_and_report(_notify(settings).runtime.db, also=[
        ("inbound", inbound_retention.run_once, _service(settings, "inbound").runtime.db),
        ("scheduler", scheduler_retention.run_once, _service(settings, "scheduler").runtime.db)])


def cmd_bench(args) -> int:
    try:
        from bench import scenarios
    except ModuleNotFoundError as exc:
        # the Docker image has neither bench/ nor the bench extra (celery, matplotlib, py-spy)
        print(f"hysbys: benchmarks need a source checkout with the bench extra (`make bench`), "
              f"which this installation does not have ({exc.name} is missing)", file=sys.stderr)
        return EXIT_USAGE
    return scenarios.main(args.scenarios)


def cmd_dlq(args) -> int:
    from services import dlq

    settings = _settings()
    # a purge logs a WARNING line for the audit trail: give it the platform's log format
    logs.configure(settings.log_level, settings.log_json)
    return dlq.run(settings, args)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hysbys", description=__doc__,
                                epilog="Exit status: 0 done; 1 failed (or, for a dry run, did "
                                       "nothing); 2 refused (bad arguments or input). "
                                       "docs/cli.md has the details.",
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"hysbys {version()}",
                   help="print the version and exit")
    sub = p.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="run the embedded platform in the foreground")
    up.add_argument("--demo", action="store_true", help="create a demo tenant and campaign")
    up.set_defaults(func=cmd_up)

    serve = sub.add_parser("serve", help="run one service's HTTP API")
    serve.add_argument("service", choices=SERVICES, help="the service whose API to serve")
    serve.add_argument("--workers", type=int, default=2,
                       help="gunicorn worker processes (default 2; /metrics counts them all)")
    serve.add_argument("--threads", type=int, default=8,
                       help="threads per worker process (default 8)")
    serve.add_argument("--dev", action="store_true", help="Flask's development server")
    serve.add_argument("--timeout", type=int, default=900,
                       help="seconds a request may take (large CSV uploads stream for minutes)")
    serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser("worker", help="run one service's consumers and relay")
    worker.add_argument("service", choices=SERVICES, help="the service whose queues to consume")
    worker.add_argument("--no-dispatcher", action="store_true",
                        help="notify: leave sending to a separate `hysbys dispatcher`")
    worker.set_defaults(func=cmd_worker)

    sub.add_parser("dispatcher", help="run notify's dispatcher (hands notifications to "
                   "providers) as its own process; several may run, sharing each "
                   "sender's throttle and each provider's circuit").set_defaults(func=cmd_dispatcher)

    sub.add_parser("ticker", help="run the scheduler's ticker").set_defaults(func=cmd_ticker)

    relay = sub.add_parser("relay", help="run outbox relays")
    relay.add_argument("services", nargs="*", choices=SERVICES, default=list(SERVICES),
                       help="the services whose outboxes to publish (default: all three)")
    relay.set_defaults(func=cmd_relay)

    db = sub.add_parser("db", help="database schema")
    dbsub = db.add_subparsers(dest="db_command", required=True)
    dbsub.add_parser("upgrade", help="migrate every service").set_defaults(func=cmd_db_upgrade)

    tenants = sub.add_parser("tenants", help="councils and health boards")
    tsub = tenants.add_subparsers(dest="tenants_command", required=True)
    tc = tsub.add_parser("create", help="onboard a tenant; prints its API keys")
    tc.add_argument("--name", required=True, help='its name, e.g. "Cyngor Sir Penfro"')
    tc.add_argument("--slug", required=True,
                    help="short lower-case name used in URLs and metrics, e.g. pembrokeshire")
    tc.add_argument("--language", choices=("cy", "en"), default="cy",
                    help="the language citizens get when theirs is not known (default cy)")
    tc.add_argument("--json", action="store_true", help="one JSON object on one line")
    tc.set_defaults(func=cmd_tenants_create)
    tl = tsub.add_parser("list", help="every tenant: slug, id, name")
    tl.add_argument("--json", action="store_true", help="one JSON array on one line")
    tl.set_defaults(func=cmd_tenants_list)

    keys = sub.add_parser("keys", help="API keys")
    ksub = keys.add_subparsers(dest="keys_command", required=True)
    kc = ksub.add_parser("create", help="a new API key for a tenant; printed once")
    kc.add_argument("--tenant", required=True, help="tenant id")
    kc.add_argument("--name", required=True, help="what the key is for, e.g. 'bin reminders'")
    kc.add_argument("--type", choices=("live", "team", "test"), default="live",
                    help="live sends, team sends only to the team's numbers, test never sends "
                         "(default live)")
    kc.add_argument("--scope", action="append",
                    help="limit the key to one scope (repeat for several; default: all)")
    kc.add_argument("--json", action="store_true", help="one JSON object on one line")
    kc.set_defaults(func=cmd_keys_create)
    kr = ksub.add_parser("revoke", help="revoke an API key at once, on every service")
    kr.add_argument("--tenant", required=True, help="tenant id")
    kr.add_argument("key_id", help="the key's id (as `keys create` printed it)")
    kr.set_defaults(func=cmd_keys_revoke)

    from services import status as _status

    st = sub.add_parser("status", help="queues, DLQs, providers, lag, today's volume (as /ops)")
    _status.add_arguments(st)
    st.set_defaults(func=cmd_status)

    ret = sub.add_parser("retention", help="purge personal data past each tenant's retention")
    ret.add_subparsers(dest="retention_command", required=True).add_parser(
        "run", help="purge now and print what went").set_defaults(func=cmd_retention_run)

    bench = sub.add_parser("bench", help="benchmarks on RabbitMQ + PostgreSQL (make bench)")
    bench.add_argument("scenarios", nargs="*", help="bin-night, scaling, fairness, api-ingest, "
                       "inbound-ingest, scheduler-memory (default: all)")
    bench.set_defaults(func=cmd_bench)

    dlq_p = sub.add_parser("dlq", help="dead-lettered messages")
    dsub = dlq_p.add_subparsers(dest="dlq_command", required=True)
    dl = dsub.add_parser("list", help="dead letters with their type and error")
    dl.add_argument("--queue", action="append",
                    help="queue name, repeatable (default: every queue)")
    dl.add_argument("--json", action="store_true", help="one JSON array on one line")
    dl.set_defaults(func=cmd_dlq)
    dr = dsub.add_parser("replay", help="put dead letters back on their queue")
    dr.add_argument("--queue", action="append",
                    help="queue name, repeatable (default: every queue)")
    # --message-id as purge spells it; --id kept for the runbooks that already use it
    dr.add_argument("--message-id", "--id", dest="message_id", metavar="ID",
                    help="replay only this message id")
    dr.set_defaults(func=cmd_dlq)
    dp = dsub.add_parser("purge", help="remove dead letters for good (a dry run without --yes)")
    # one queue, and required: a purge must never reach every DLQ by accident
    dp.add_argument("--queue", required=True, help="queue name, e.g. notify.requests")
    dp.add_argument("--message-id", dest="message_id", action="extend", nargs="+",
                    metavar="ID", help="remove only these message ids (default: every one)")
    dp.add_argument("--yes", action="store_true",
                    help="really remove them; without it, only say what would go")
    dp.set_defaults(func=cmd_dlq)
    return p


def _database_for_humans() -> str:
    """The configured database URL with its password hidden."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(Settings.from_env().database_url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - only for a message
        return "(HYSBYS_DATABASE_URL)"


def main(argv: list[str] | None = None) -> int:
    from sqlalchemy.exc import OperationalError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except OperationalError as exc:
        # a full disk, a read-only file or file system, an unreachable server: one line
        # saying so, not a traceback (and never the statement or its parameters)
        cause = (str(exc.orig).strip().splitlines() or [type(exc.orig).__name__])[0]
        print(f"hysbys: cannot write the database {_database_for_humans()}: {cause}",
              file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
