"""What one request costs in-process: statements and CPU for a v2 send and for replies.

    python -m bench.request_cost [--n 500] [--tenants 22]

Each service runs in this process on a throwaway PostgreSQL database (no gunicorn, no
broker: ``memory://``), behind Flask's test client; a warm request is repeated ``n``
times and this prints the statements each sends (counted on ``before_cursor_execute``)
and the CPU (``time.process_time``) and wall time each takes.  It isolates the request
path from the pipeline and the HTTP server, so the figures move only with the code:
bench/results/analysis.md quotes them.  Inbound's scheduler lookups are answered by a
stand-in that knows nobody (the real one is an HTTP call; see inbound-ingest).
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
import uuid
from pathlib import Path

from cryptography.fernet import Fernet
from sqlalchemy import event
from twilio.request_validator import RequestValidator

from bench import env

TWILIO_TOKEN = "bench-twilio-auth-token"
NUMBER = "+447400999999"


def _settings(tmp: Path, database_url: str):
    from shared.config import Settings

    return Settings(database_url=database_url, broker_url=f"memory://cost-{uuid.uuid4().hex}",
                    secret_key=Fernet.generate_key().decode(), admin_token="bench",
                    var_dir=tmp)


def _measure(engine, n: int, request) -> dict:
    for i in range(20):                                     # warm: caches, pool, compiles
        request(i)
    count = [0]

    def counted(*_args):
        count[0] += 1
    event.listen(engine, "before_cursor_execute", counted)
    cpu, wall = time.process_time(), time.perf_counter()
    try:
        for i in range(n):
            request(1000 + i)
    finally:
        event.remove(engine, "before_cursor_execute", counted)
    return {"statements": round(count[0] / n, 1),
            "cpu_ms": round((time.process_time() - cpu) * 1000 / n, 2),
            "wall_ms": round((time.perf_counter() - wall) * 1000 / n, 2)}


def v2_send(n: int) -> dict:
    from notifications_python_client.authentication import create_jwt_token

    from services.notify import tenants
    from services.notify.wiring import build

    with env.database() as url:
        svc = build(_settings(Path(tempfile.mkdtemp()), url))
        svc.runtime.migrate()
        try:
            with svc.runtime.db.transaction() as session:
                t = tenants.create_tenant(session, svc.runtime.box, name="Penfro", slug="penfro")
                tenants.update_tenant(session, svc.runtime.box, t.id, {"quiet_hours": None})
            client = svc.create_app().test_client()

            def auth():
                return {"Authorization": "Bearer " + create_jwt_token(t.api_key[-36:], t.id)}
            template = client.post("/api/templates", headers=auth(), json={
                "name": "t", "type": "sms",
                "body": {"cy": "Helo ((name))", "en": "Hello ((name))"}}).get_json()

            def send(i: int) -> None:
                resp = client.post("/v2/notifications/sms", headers=auth(), json={
                    "phone_number": f"07700900{i % 1000:03d}", "template_id": template["id"],
                    "personalisation": {"name": "Dai"}})
                if resp.status_code != 201:
                    raise RuntimeError(f"send answered {resp.status_code}: {resp.get_data()!r}")
            return _measure(svc.runtime.db.engine, n, send)
        finally:
            svc.runtime.db.dispose()


class _Nobody:
    """The scheduler's lookups, answered "not known" (inbound then asks nothing more)."""

    def _unknown(self, *_args):
        from services.inbound.scheduler_client import UNKNOWN, Lookup
        return Lookup(UNKNOWN)
    citizen = next_collection = subscriber = _unknown


def replies(n: int, bodies: tuple[str, ...], tenants: int = 1) -> dict:
    from services.inbound.wiring import build
    from shared import events
    from shared.crypto import SecretBox

    with env.database() as url:
        settings = _settings(Path(tempfile.mkdtemp()), url)
        svc = build(settings, lookups=_Nobody())
        svc.runtime.migrate()
        try:
            tenant = events.make(
                "tenant.changed", str(uuid.uuid4()), slug="penfro", name="Cyngor Penfro",
                revision=1, default_language="cy",
                config={"inbound_numbers": [NUMBER], "reply_template_id": str(uuid.uuid4())},
                config_encrypted=SecretBox(settings.secret_key).encrypt_json({"providers": {
                    "twilio": {"account_sid": "ACbench", "auth_token": TWILIO_TOKEN,
                               "from_number": NUMBER}}}), api_keys=[])
            svc.queue_handlers()["inbound.events"](events.Event.from_json(tenant.to_json()))
            for i in range(1, tenants):         # the rest of Wales, each with its own number
                other = events.make(
                    "tenant.changed", str(uuid.uuid4()), slug=f"cyngor-{i}", name=f"Cyngor {i}",
                    revision=1, default_language="cy",
                    config={"inbound_numbers": [f"+4474009{i:05d}"],
                            "reply_template_id": str(uuid.uuid4())},
                    config_encrypted=tenant.data["config_encrypted"], api_keys=[])
                svc.queue_handlers()["inbound.events"](events.Event.from_json(other.to_json()))
            client = svc.create_app().test_client()
            url_ = settings.public_url("inbound") + "/webhooks/twilio/sms"
            validator = RequestValidator(TWILIO_TOKEN)
            out = {}
            for body in bodies:
                run = uuid.uuid4().hex[:8]

                def reply(i: int, body: str = body, run: str = run) -> None:
                    form = {"MessageSid": f"SM{run}{i:024d}", "AccountSid": "ACbench",
                            "From": f"+447400{i % 1_000_000:06d}", "To": NUMBER, "Body": body}
                    resp = client.post("/webhooks/twilio/sms", data=form, headers={
                        "X-Twilio-Signature": validator.compute_signature(url_, form)})
                    if resp.status_code != 200:
                        raise RuntimeError(f"webhook answered {resp.status_code}")
                out[body] = _measure(svc.runtime.db.engine, n, reply)
            return out
        finally:
            svc.runtime.db.dispose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500, help="requests measured (each kind)")
    parser.add_argument("--tenants", type=int, default=22,
                        help="tenants inbound knows (Wales has 22 councils and 7 health boards)")
    args = parser.parse_args(argv)
    result = {"v2 send": v2_send(args.n),
              "replies": replies(args.n, ("Pryd mae'r biniau?", "STOP"), args.tenants)}
    print(json.dumps(result, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
