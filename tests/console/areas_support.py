"""A ``requests`` transport into a WSGI app: the console's HTTP clients talk to the real
scheduler app in the same process, with no port and no thread (its real routes, real
schemas, real authentication of the console's token)."""
from __future__ import annotations

from urllib.parse import urlsplit

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict


class WsgiAdapter(BaseAdapter):
    def __init__(self, app):
        super().__init__()
        self.client = app.test_client()

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        parts = urlsplit(request.url)
        headers = {k: v for k, v in request.headers.items() if k.lower() != "content-length"}
        body = request.body
        if isinstance(body, str):
            body = body.encode()
        answer = self.client.open(parts.path, method=request.method, headers=headers,
                                  data=body or b"", query_string=parts.query)
        resp = requests.Response()
        resp.status_code = answer.status_code
        resp.headers = CaseInsensitiveDict(dict(answer.headers))
        resp._content = answer.get_data()
        resp.url = request.url
        resp.request = request
        resp.encoding = "utf-8"
        return resp

    def close(self):
        pass


def session_into(base_url: str, app) -> requests.Session:
    session = requests.Session()
    session.mount(base_url.rstrip("/") + "/", WsgiAdapter(app))
    return session


# -- the console's areas with the real scheduler behind them and a fake inbound --------------

import copy  # noqa: E402
import datetime as dt  # noqa: E402
import uuid as _uuid  # noqa: E402

import pytest  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from services.notify.console import clients as console_clients  # noqa: E402
from services.notify.console.clients import Clients, HttpScheduler, ServiceError, _Http  # noqa: E402
from shared import tenancy  # noqa: E402
from shared.events import Event  # noqa: E402


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class FakeInbound:
    """Inbound's conversations and service requests API (issue 13 section 3, as h2 builds
    it: GET/PATCH /api/conversations/{id}, POST .../messages), one store per tenant, and
    every answer and change recorded for the test to read."""

    def __init__(self, tenant_id: str, store: dict):
        self.tenant_id = tenant_id
        self.store = store.setdefault(tenant_id, {"conversations": {}, "requests": {},
                                                  "answers": [], "changes": []})

    # the test's side
    def add_conversation(self, phone: str, text: str, *, language: str | None = "cy",
                         at: dt.datetime | None = None) -> str:
        cid = str(_uuid.uuid4())
        at = at or dt.datetime(2026, 12, 3, 9, 30, tzinfo=dt.UTC)
        message = {"id": str(_uuid.uuid4()), "direction": "in", "kind": "reply", "body": text,
                   "language": language, "keyword": "question", "action": None,
                   "reference": "HYS-1001", "service_request": "HYS-1001",
                   "campaign_id": None, "appointment_id": None, "appointment_reference": None,
                   "notification_id": None, "status": "received", "author": None,
                   "at": _iso(at)}
        self.store["conversations"][cid] = {
            "id": cid, "phone": phone, "status": "open", "assigned_to": None,
            "language": language, "opened_at": _iso(at), "closed_at": None,
            "last_message_at": _iso(at), "created_at": _iso(at), "messages": [message]}
        return cid

    def _find(self, cid: str) -> dict:
        found = self.store["conversations"].get(cid)
        if found is None:
            raise ServiceError(404, ["No result found"])
        return found

    def _out(self, c: dict) -> dict:
        body = copy.deepcopy(c)
        body["messages"] = sorted(body["messages"], key=lambda m: m["at"], reverse=True)
        body["message_count"] = len(body["messages"])
        body["last_message"] = body["messages"][0] if body["messages"] else None
        return body

    # the port
    def conversations(self, **filters) -> dict:
        rows = [self._out(c) for c in self.store["conversations"].values()
                if (not filters.get("status") or c["status"] == filters["status"])
                and (not filters.get("assigned_to") or c["assigned_to"] == filters["assigned_to"])]
        for r in rows:
            r.pop("messages")
        return {"conversations": rows, "links": {}}

    def conversation(self, conversation_id: str) -> dict:
        return self._out(self._find(conversation_id))

    def answer(self, conversation_id: str, body: dict) -> dict:
        c = self._find(conversation_id)
        if c["language"] in ("cy", "en"):
            if not body.get("body"):
                raise ServiceError(400, [f"body_{c['language']} is required"])
            text, lang = body["body"], c["language"]
        else:
            text, lang = f"{body['body_cy']}\n\n{body['body_en']}", None
        self.store["answers"].append({"conversation": conversation_id, **body})
        message = {"id": str(_uuid.uuid4()), "direction": "out", "kind": "staff_answer",
                   "body": text, "language": lang, "status": "requested",
                   "author": body.get("author"), "at": _iso(dt.datetime.now(dt.UTC)),
                   "service_request": None}
        c["messages"].append(message)
        return message

    def change_conversation(self, conversation_id: str, body: dict) -> dict:
        c = self._find(conversation_id)
        c.update(body)
        self.store["changes"].append({"conversation": conversation_id, **body})
        return self._out(c)

    def service_requests(self, **filters) -> dict:
        return {"service_requests": [r for r in self.store["requests"].values()
                                     if not filters.get("status")
                                     or r["status"] == filters["status"]], "links": {}}

    def service_request(self, ident: str) -> dict:
        found = self.store["requests"].get(ident)
        if found is None:
            raise ServiceError(404, ["No result found"])
        return dict(found)

    def change_service_request(self, ident: str, body: dict) -> dict:
        found = self.store["requests"][ident]
        found.update(body)
        self.store["changes"].append({"request": ident, **body})
        return dict(found)


class WithAppointmentList(HttpScheduler):
    """The scheduler as on this branch, plus ``GET /api/appointments`` as h1 builds it (the
    list, filtered by starts_from/starts_to/status), answered from the real appointments'
    own ``GET /api/appointments/{reference}``."""

    def __init__(self, references: list[str], http):
        super().__init__(http)
        self.references = references

    def appointments(self, **filters) -> dict:
        from zoneinfo import ZoneInfo

        out = []
        for ref in self.references:
            a = self.appointment(ref)
            day = dt.datetime.fromisoformat(a["starts_at"].replace("Z", "+00:00")).astimezone(
                ZoneInfo("Europe/London")).date().isoformat()
            if filters.get("starts_from") and day < filters["starts_from"]:
                continue
            if filters.get("starts_to") and day > filters["starts_to"]:
                continue
            if filters.get("status") and a["status"] != filters["status"]:
                continue
            a.pop("reminders", None)
            out.append(a)
        return {"appointments": out, "links": {}}


class Backends:
    """The real scheduler app (no network: a WSGI transport) and a fake inbound behind a
    console, and ``replicate`` to give the scheduler a council notify made."""

    def __init__(self, console, settings):
        from services.scheduler.wiring import build as build_scheduler

        self.console = console
        self.scheduler = build_scheduler(settings)
        self.scheduler.clock = console.clock      # "in the future" and "today" as the console's
        self.scheduler.runtime.migrate()
        url = settings.internal_url("scheduler")
        session = session_into(url, self.scheduler.create_app())
        self.inbound_store: dict = {}
        box = console.service.runtime.box

        self.booked: dict[str, list[str]] = {}

        def make(tenant_id: str, staff_id: str | None) -> Clients:
            return Clients(scheduler=WithAppointmentList(self.booked.setdefault(tenant_id, []), _Http(
                "scheduler", url, lambda: tenancy.console_token(box, tenant_id, staff_id),
                session)), inbound=FakeInbound(tenant_id, self.inbound_store))

        console_clients.install(console.app, make)

    def inbound(self, council) -> FakeInbound:
        return FakeInbound(council.id, self.inbound_store)

    def replicate(self, council) -> None:
        """notify's ``tenant.changed`` for this council, delivered to the scheduler."""
        with self.console.db.read() as s:
            tenant = s.get(tenancy.Tenant, council.id)
            keys = list(s.scalars(sa.select(tenancy.ApiKey).where(
                tenancy.ApiKey.tenant_id == council.id)))
            event = tenancy.snapshot_event(tenant, keys)
        data = {**event.data, "config": {**event.data["config"], "quiet_hours": None}}
        wire = Event.from_json(event.to_json())
        handle = self.scheduler.queue_handlers()["scheduler.events"]
        handle(_with_data(wire, data))

    def close(self) -> None:
        self.scheduler.runtime.db.dispose()


def _with_data(event: Event, data: dict) -> Event:
    import json

    body = json.loads(event.to_json())
    body["data"] = json.loads(json.dumps(data, default=str))
    return Event.from_json(json.dumps(body))


@pytest.fixture
def backends(console, embedded_settings):
    b = Backends(console, embedded_settings)
    yield b
    b.close()


class FakeInboundServer:
    """inbound's conversations and service-requests API on 127.0.0.1 (an ephemeral port),
    answered by :class:`FakeInbound`, for the browser journeys: the console's real HTTP
    client calls it, and the console's token is verified as inbound verifies it."""

    def __init__(self, box):
        import threading

        import jwt
        from flask import Flask, jsonify, request
        from werkzeug.serving import make_server

        from shared.tenancy import console_purpose

        self.store: dict = {}
        app = Flask("fake-inbound")

        def port() -> FakeInbound:
            token = request.headers.get("Authorization", "").removeprefix("Bearer ")
            iss = jwt.decode(token, options={"verify_signature": False})["iss"]
            jwt.decode(token, box.derived(console_purpose(iss))[0], algorithms=["HS256"])
            return FakeInbound(iss, self.store)

        def answer(call):
            try:
                return jsonify(call())
            except ServiceError as exc:
                return jsonify({"status_code": exc.status, "errors": [
                    {"error": "Error", "message": m} for m in exc.messages]}), exc.status

        app.add_url_rule("/api/conversations", "list", lambda: answer(
            lambda: port().conversations(**request.args.to_dict())))
        app.add_url_rule("/api/conversations/<cid>", "get", lambda cid: answer(
            lambda: port().conversation(cid)))
        app.add_url_rule("/api/conversations/<cid>", "patch", lambda cid: answer(
            lambda: port().change_conversation(cid, request.get_json())), methods=["PATCH"])
        app.add_url_rule("/api/conversations/<cid>/messages", "answer", lambda cid: answer(
            lambda: port().answer(cid, request.get_json())), methods=["POST"])
        app.add_url_rule("/api/service-requests", "requests", lambda: answer(
            lambda: port().service_requests(**request.args.to_dict())))
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def inbound(self, tenant_id: str) -> FakeInbound:
        return FakeInbound(tenant_id, self.store)

    def stop(self) -> None:
        self.server.shutdown()
