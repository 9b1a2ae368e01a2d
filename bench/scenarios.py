"""The scenarios of ``make bench`` / ``hysbys bench SCENARIO``.

Each measures the platform and its comparison points in the same run, so the
ratios hold on a noisy machine, and writes ``bench/results/<scenario>.json``.
"""
from __future__ import annotations

import datetime as dt
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path

from bench import env, limit_kombu, peer_celery
from bench.platform_run import Platform, percentiles

RESULTS = Path(__file__).parent / "results"


def _progress(label: str):
    last = {"t": 0.0}

    def show(done: int, total: int) -> None:
        now = time.monotonic()
        if now - last["t"] >= 5 or done >= total:
            last["t"] = now
            print(f"  {label}: {done:,}/{total:,}", file=sys.stderr, flush=True)
    return show


def platform_bin_night(n: int, tenants: int = 22, log_dir: str | None = None) -> dict:
    with env.vhost() as amqp, env.database() as db:
        p = Platform.start(db, amqp, log_dir=log_dir)
        try:
            ts = [p.create_tenant(f"council-{i:02d}",
                                  capacity={"segments_per_second": 1000, "senders": 100})
                  for i in range(tenants)]
            p.wait_replicated(ts)
            p.seed_subscribers(ts, n)
            due = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=5)
            p.schedule_broadcasts(ts, due)
            outcome = p.wait_handed_off(n, due, progress=_progress("platform"))
            calls = p.proc("notify-worker").metric(
                "hysbys_provider_calls_total", {"provider": "simulator"})
            lat = outcome["latencies"]
            seconds = max(lat) if lat else float("nan")
            return {
                "notifications": outcome["notifications"], "handed_off": outcome["handed_off"],
                "seconds_due_to_last_handoff": round(seconds, 3),
                "notifications_per_second": round(outcome["handed_off"] / seconds, 1),
                "due_to_handoff_seconds": percentiles(lat),
                "provider_calls": calls,
                "provider_calls_per_notification": round(calls / max(1, outcome["handed_off"]), 3),
                "peak_rss_mb": p.stack.peak_rss_mb(),
            }
        finally:
            p.stop()


def peer_bin_night(n: int, tenants: int = 22) -> dict:
    with env.vhost() as amqp, env.database() as db:
        peer_celery.prepare(db)
        workers = peer_celery.start_workers(db, amqp, concurrency=2)
        try:
            time.sleep(3)
            recipients = [(f"tenant-{i % tenants}", f"+447400{i:06d}",
                           "Helo Person, casgliad biniau yfory: rownd R1.") for i in range(n)]
            t0 = peer_celery.fire(db, amqp, recipients)
            out = peer_celery.wait_done(db, n)
            seconds = out["last_handoff_epoch"] - t0
            return {"notifications": n, "handed_off": out["done"],
                    "seconds_due_to_last_handoff": round(seconds, 3),
                    "notifications_per_second": round(out["done"] / seconds, 1),
                    "due_to_handoff_seconds": percentiles(
                        [x + 0.0 for x in out["latencies"]])}
        finally:
            workers.terminate()
            workers.wait(10)


def bin_night(n: int = 100_000) -> dict:
    log_dir = tempfile.mkdtemp(prefix="hysbys-bench-")
    print(f"bin-night: {n:,} subscribers, 22 tenants (process logs in {log_dir})",
          file=sys.stderr)
    platform = platform_bin_night(n, log_dir=log_dir)
    peer = peer_bin_night(n)
    with env.vhost() as amqp:
        limit = limit_kombu.run(amqp, n)
    ratio_peer = platform["notifications_per_second"] / peer["notifications_per_second"]
    ratio_limit = platform["notifications_per_second"] / limit["messages_per_second"]
    return {
        "scenario": "bin-night", "machine": env.machine(),
        "platform": platform, "peer": peer, "limit": limit,
        "ratio_vs_peer": round(ratio_peer, 2), "ratio_vs_limit": round(ratio_limit, 2),
        "goal": {"vs_peer": 3.0, "vs_limit": 0.5, "provider_calls_per_notification": 1.0},
        "goal_met": bool(ratio_peer >= 3.0 and ratio_limit >= 0.5
                         and platform["provider_calls_per_notification"] == 1.0),
        "run_id": uuid.uuid4().hex[:8], "at": dt.datetime.now(dt.timezone.utc).isoformat(),
    }


RATES = [100, 200, 400, 600, 800, 1000, 1250, 1500, 2000, 2500, 3000, 4000]


def _http_post(path: str, host: str, port: int, body: bytes, headers: dict) -> bytes:
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Length: {len(body)}\r\n"
            f"{head}\r\n").encode() + body


def _bare_limit(log) -> dict:
    import subprocess
    import sys as _sys

    from bench import loadgen
    from bench.procs import free_port

    port = free_port()
    server = subprocess.Popen([_sys.executable, "-m", "gunicorn", "bench.bare_app:app", "-b",
                               f"127.0.0.1:{port}", "-w", "2", "-k", "gthread", "--threads", "8"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(2)
        body = json.dumps({"phone_number": "+447400000001", "template_id": str(uuid.uuid4()),
                           "personalisation": {"name": "Siân", "round": "R1"}}).encode()
        req = _http_post("/json", "127.0.0.1", port, body, {"Content-Type": "application/json"})
        log("  limit: bare Flask JSON endpoint")
        return loadgen.ramp("127.0.0.1", port, lambda i: req, RATES, log=log)
    finally:
        server.terminate()
        server.wait(10)


def api_ingest() -> dict:
    from notifications_python_client.authentication import create_jwt_token

    from bench import loadgen

    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    with env.vhost() as amqp, env.database() as db:
        p = Platform.start(db, amqp)
        try:
            t = p.create_tenant("ingest", rate_limit_per_minute=10_000_000,
                                daily_message_limit=100_000_000)
            port = int(p.urls["notify"].rsplit(":", 1)[1])
            key = t["api_key"]
            cache: dict = {}

            def make(i: int) -> bytes:
                second = int(time.time())
                if cache.get("s") != second:
                    cache["s"], cache["tok"] = second, create_jwt_token(key[-36:], key[-73:-37])
                body = json.dumps({"phone_number": f"+447400{i % 1_000_000:06d}",
                                   "template_id": t["template_id"],
                                   "personalisation": {"name": "Siân", "round": "R1"}}).encode()
                return _http_post("/v2/notifications/sms", "127.0.0.1", port, body, {
                    "Content-Type": "application/json",
                    "Authorization": f"Bearer {cache['tok']}"})
            log("  platform: POST /v2/notifications/sms")
            platform = loadgen.ramp("127.0.0.1", port, make, RATES, log=log)
        finally:
            p.stop()
    limit = _bare_limit(log)
    return _ingest_result("api-ingest", platform, limit)


def inbound_ingest() -> dict:
    from urllib.parse import urlencode

    from twilio.request_validator import RequestValidator

    from bench import loadgen

    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    token = "bench-twilio-auth-token"
    with env.vhost() as amqp, env.database() as db:
        p = Platform.start(db, amqp)
        try:
            p.create_tenant("replies", inbound_numbers=["+447400999999"], provider_credentials={
                "twilio": {"account_sid": "ACbench", "auth_token": token,
                           "from_number": "+447400999999"}})
            port = int(p.urls["inbound"].rsplit(":", 1)[1])
            url = p.urls["inbound"] + "/webhooks/twilio/sms"
            validator = RequestValidator(token)
            run = uuid.uuid4().hex[:8]
            time.sleep(2)    # the tenant reaches inbound's replica

            def make(i: int) -> bytes:
                params = {"MessageSid": f"SM{run}{i:024d}", "AccountSid": "ACbench",
                          "From": f"+447400{i % 1_000_000:06d}", "To": "+447400999999",
                          "Body": "Pryd mae'r biniau?", "NumMedia": "0"}
                sig = validator.compute_signature(url, params)
                return _http_post("/webhooks/twilio/sms", "127.0.0.1", port,
                                  urlencode(params).encode(), {
                                      "Content-Type": "application/x-www-form-urlencoded",
                                      "X-Twilio-Signature": sig})
            log("  platform: POST /webhooks/twilio/sms (signed)")
            platform = loadgen.ramp("127.0.0.1", port, make, RATES, log=log,
                                    ok_status=(200,))
        finally:
            p.stop()
    limit = _bare_limit(log)
    return _ingest_result("inbound-ingest", platform, limit)


def _ingest_result(name: str, platform: dict, limit: dict) -> dict:
    ratio = platform["max_rate_held_rps"] / max(1.0, limit["max_rate_held_rps"])
    return {"scenario": name, "machine": env.machine(), "platform": platform, "peer": {
        "what": "GOV.UK Notify needed 360 requests/s across its fleet in 2018",
        "requests_per_second": 360.0}, "limit": limit,
        "ratio_vs_peer": round(platform["max_rate_held_rps"] / 360.0, 2),
        "ratio_vs_limit": round(ratio, 2), "goal": {"vs_limit": 0.5, "vs_peer": 1.0},
        "goal_met": bool(ratio >= 0.5 and platform["max_rate_held_rps"] > 360.0),
        "at": dt.datetime.now(dt.timezone.utc).isoformat()}


SCENARIOS = {"bin-night": bin_night, "api-ingest": api_ingest, "inbound-ingest": inbound_ingest}


def main(argv: list[str]) -> int:
    names = argv or list(SCENARIOS)
    RESULTS.mkdir(parents=True, exist_ok=True)
    for name in names:
        if name not in SCENARIOS:
            print(f"unknown scenario {name!r}; choose from {', '.join(SCENARIOS)}",
                  file=sys.stderr)
            return 2
        result = SCENARIOS[name]()
        path = RESULTS / f"{name}.json"
        path.write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps({k: result[k] for k in ("scenario", "ratio_vs_peer", "ratio_vs_limit",
                                                 "goal_met")}))
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
