"""api-ingest and inbound-ingest: the highest offered rate held with p99 under 100 ms.

The load generator (:mod:`bench.loadgen`) offers rising rates on 127.0.0.1 to the
platform's endpoint, then the same ramp to a bare Flask JSON endpoint served the
same way (gunicorn, 2 workers x 8 threads): the limit.  The peer figure is
GOV.UK Notify's published need, 360 requests/s across its fleet in 2018.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid

from bench import env, loadgen
from bench.common import Goal, envelope, log, ratio
from bench.platform_run import Platform
from bench.procs import free_port

RATES = [25, 50, 75, 100, 125, 150, 175, 200, 250, 300, 400, 600, 800, 1000, 1250, 1500, 2000,
         2500, 3000, 4000]
NOTIFY_2018_RPS = 360.0


def _http_post(path: str, host: str, port: int, body: bytes, headers: dict) -> bytes:
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Length: {len(body)}\r\n"
            f"{head}\r\n").encode() + body


def _bare_limit() -> dict:
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "gunicorn", "bench.bare_app:app", "-b",
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
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(5)


def api_ingest() -> dict:
    """POST /v2/notifications/sms with a valid JWT, against the bare endpoint."""
    from notifications_python_client.authentication import create_jwt_token

    with env.vhost() as amqp, env.database() as db:
        p = Platform.start(db, amqp)
        try:
            t = p.create_tenant("ingest", rate_limit_per_minute=1_000_000,
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
            p.profile_if_asked(["notify-api", "notify-worker", "notify-dispatcher"], 120)
            platform = loadgen.ramp("127.0.0.1", port, make, RATES, log=log)
            platform["api_alone"] = _api_alone(p, "POST /v2/notifications/sms", port, make,
                                               stored=lambda: p.count("notify", "notifications"),
                                               first=platform["next_index"])
        finally:
            p.stop()
    return ingest_result("api-ingest", platform, _bare_limit())


def _settle(p: Platform, *, quiet: float = 0.1, patience: float = 30.0) -> float:
    """Wait until what is left of the platform (the APIs, PostgreSQL, RabbitMQ) is quiet:
    under ``quiet`` of a core for a whole second, or ``patience`` seconds.  Stopping the
    pipeline leaves work behind it (PostgreSQL vacuuming and writing out what the first
    ramp changed); a ramp started inside it measured that, not the API (4 December: one
    stall put the alone run's 25/s step over 100 ms).  Answers the seconds waited."""
    from bench.procs import server_cpu_seconds

    started = time.monotonic()
    while time.monotonic() - started < patience:
        before = sum(p.stack.cpu_seconds().values()) + sum(server_cpu_seconds().values())
        time.sleep(1.0)
        after = sum(p.stack.cpu_seconds().values()) + sum(server_cpu_seconds().values())
        if after - before < quiet:
            break
    waited = round(time.monotonic() - started, 1)
    log(f"  (the machine settled in {waited} s)")
    return waited


def _api_alone(p: Platform, what: str, port: int, make, stored, first: int,
               ok_status=(200, 201)) -> dict:
    """The same ramp with the pipeline stopped (workers, dispatcher, ticker): the API's own
    ceiling, as on a deployment whose APIs have their own machines.  Everything it accepts
    must be stored (durably: the 201 follows the commit), which is counted."""
    for name in PIPELINE:
        p.proc(name).stop()
    settled = _settle(p)
    before = stored()
    log(f"  platform, API alone (pipeline stopped): {what}")
    # new indexes: a webhook whose MessageSid was seen in the first ramp is (rightly)
    # answered and not stored again
    result = loadgen.ramp("127.0.0.1", port, make, RATES, log=log, ok_status=ok_status,
                          first=first)
    result["stored"] = stored() - before
    result["settled_seconds"] = settled
    result["stored_equals_accepted"] = result["stored"] == result["accepted"]
    return result


PIPELINE = ("notify-worker", "notify-dispatcher", "scheduler-worker", "inbound-worker",
            "scheduler-ticker")


def inbound_ingest() -> dict:
    """Signed Twilio webhooks (POST /webhooks/twilio/sms), against the bare endpoint."""
    from urllib.parse import urlencode

    from twilio.request_validator import RequestValidator

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
            p.profile_if_asked(["inbound-api", "inbound-worker", "scheduler-api"], 120)
            platform = loadgen.ramp("127.0.0.1", port, make, RATES, log=log,
                                    ok_status=(200,))
            platform["api_alone"] = _api_alone(
                p, "POST /webhooks/twilio/sms (signed)", port, make, ok_status=(200,),
                stored=lambda: p.count("inbound", "inbound_messages"),
                first=platform["next_index"])
        finally:
            p.stop()
    return ingest_result("inbound-ingest", platform, _bare_limit())


# issue 16's goals (req/s held with p99 < 100 ms): (with the pipeline sending, API alone)
GOALS_RPS = {"api-ingest": (500, 1000), "inbound-ingest": (250, 500)}


def ingest_result(name: str, platform: dict, limit: dict) -> dict:
    """The envelope for an ingest scenario: the rate held with the pipeline sending and
    with the API alone against their goals (GOALS_RPS); the ratio to the bare endpoint is
    reported beside them (0.5× is the moonshot, not a goal)."""
    held, bare = platform["max_rate_held_rps"], limit["max_rate_held_rps"]
    with_pipeline, alone_goal = GOALS_RPS[name]
    alone = (platform.get("api_alone") or {}).get("max_rate_held_rps")
    # every step held: the figure is what the ramp offered, not where the endpoint gave way
    ceiling = {side: len(r["steps"]) == len(RATES)
               and all(loadgen.StepResult(**s).held for s in r["steps"])
               for side, r in (("platform", platform), ("limit", limit))}
    vs_limit = ratio(held, bare)
    goals = [Goal("requests_per_second_with_pipeline", held, with_pipeline, unit=" req/s"),
             Goal("requests_per_second_api_alone", alone, alone_goal, unit=" req/s")]
    return envelope(
        name, env.machine(), platform,
        {"what": "GOV.UK Notify needed 360 requests/s across its fleet in 2018",
         "requests_per_second": NOTIFY_2018_RPS},
        limit, ramp_ceiling_reached=ceiling, ratio_vs_peer=ratio(held, NOTIFY_2018_RPS),
        ratio_vs_limit=vs_limit, goals=goals,
        summary={"metric": "highest rate held with p99 < 100 ms (goals judged with the whole "
                           "platform sending what it accepts, on the same two cores)",
                 "platform": _at_least(ceiling["platform"]) + f"{held:,.0f} req/s" + _alone(platform),
                 "peer": f"{NOTIFY_2018_RPS:,.0f} req/s (2018 fleet)",
                 "limit": _at_least(ceiling["limit"]) + f"{bare:,.0f} req/s (bare Flask)",
                 "goal": f"≥ {with_pipeline:,} req/s with the pipeline sending, "
                         f"≥ {alone_goal:,} req/s API alone (× the bare endpoint reported; "
                         "0.5× is the moonshot)",
                 "ratio_note": "rate held ÷ Notify's 360/s; rate held ÷ bare endpoint's"})


def _alone(platform: dict) -> str:
    alone = platform.get("api_alone")
    if not alone:
        return ""
    stored = "all stored" if alone.get("stored_equals_accepted") else \
        f"{alone.get('stored')} stored of {alone.get('accepted')} accepted"
    return f"; API alone {alone['max_rate_held_rps']:,.0f} req/s ({stored})"


def _at_least(ceiling: bool) -> str:
    return "≥ " if ceiling else ""
