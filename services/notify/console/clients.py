"""How the console reaches the scheduler's and inbound's APIs, as the signed-in person's tenant.

The console lives in notify; subscribers, rounds, campaigns and appointments are the
scheduler's, conversations and service requests inbound's, and services never read
each other's tables.  So every console page about them calls that service's public
HTTP API, exactly as a council's own system would, with a Notify-style JWT for the
staff member's tenant signed with the tenant's *console secret*
(:func:`shared.tenancy.console_token`: derived from the platform key, never stored,
never listed; see docs/decisions.md, "How the console calls the other services").
The token's ``sub`` names the staff member.

Two ports (:class:`SchedulerApi`, :class:`InboundApi`) and one HTTP implementation of
each; tests put a WSGI transport (the real scheduler app, no network) or a hand-written
fake behind them.  A service that is down or answers nonsense is a
:class:`Unavailable`; its 4xx is a :class:`ServiceError` carrying its status and
messages, which the pages show against the form.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import requests
from flask import current_app, g

from shared.tenancy import console_token

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 10.0
UPLOAD_TIMEOUT = 120.0
EXTENSION = "hysbys.console.clients"


class ServiceError(Exception):
    """A 4xx from a service: its status and its messages (GOV.UK Notify's error body)."""

    def __init__(self, status: int, messages: list[str]):
        super().__init__("; ".join(messages) or f"HTTP {status}")
        self.status = status
        self.messages = messages

    @property
    def not_found(self) -> bool:
        return self.status == 404


class Unavailable(ServiceError):
    """The service did not answer (down, timed out, 5xx, not JSON)."""

    def __init__(self, service: str, why: str):
        super().__init__(503, [f"{service}: {why}"])
        self.service = service


class SchedulerApi(Protocol):
    """What the console asks the scheduler (``/api/...`` on :8003)."""

    def subscribers(self, **filters) -> dict: ...
    def upsert_subscriber(self, row: dict) -> dict: ...
    def subscriber(self, subscriber_id: str) -> dict: ...
    def change_subscriber(self, subscriber_id: str, body: dict) -> dict: ...
    def upload_subscribers(self, csv_bytes: bytes) -> dict: ...
    def erase_subscriber(self, subscriber_id: str) -> None: ...
    def rounds(self, until: str | None = None) -> dict: ...
    def round(self, code: str, until: str | None = None) -> dict: ...
    def put_round(self, body: dict) -> dict: ...
    def patch_round(self, code: str, body: dict) -> dict: ...
    def round_changes(self, changes: list[dict]) -> dict: ...
    def campaigns(self, **filters) -> dict: ...
    def campaign(self, campaign_id: str) -> dict: ...
    def create_campaign(self, body: dict) -> dict: ...
    def update_campaign(self, campaign_id: str, body: dict) -> dict: ...
    def preview(self, campaign_id: str, limit: int = 20,
                price_per_fragment: float | None = None) -> dict: ...
    def campaign_action(self, campaign_id: str, action: str) -> dict: ...
    def appointments(self, **filters) -> dict: ...
    def appointment(self, reference: str) -> dict: ...


class InboundApi(Protocol):
    """What the console asks inbound (``/api/...`` on :8002)."""

    def conversations(self, **filters) -> dict: ...
    def conversation(self, conversation_id: str) -> dict: ...
    def answer(self, conversation_id: str, body: dict) -> dict: ...
    def change_conversation(self, conversation_id: str, body: dict) -> dict: ...
    def service_requests(self, **filters) -> dict: ...
    def service_request(self, ident: str) -> dict: ...
    def change_service_request(self, ident: str, body: dict) -> dict: ...


class _Http:
    """One service's API, called with a fresh console token on every request."""

    def __init__(self, service: str, base_url: str, token: Callable[[], str],
                 session: requests.Session, timeout: float = DEFAULT_TIMEOUT):
        self.service = service
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.session = session
        self.timeout = timeout

    def call(self, method: str, path: str, *, params: dict | None = None,
             json: Any = None, data: bytes | None = None, content_type: str | None = None,
             timeout: float | None = None) -> Any:
        headers = {"Authorization": f"Bearer {self.token()}", "Accept": "application/json"}
        cid = g.get("correlation_id") if g else None
        if cid:
            headers["X-Correlation-Id"] = cid
        if content_type:
            headers["Content-Type"] = content_type
        clean = {k: v for k, v in (params or {}).items() if v not in (None, "")}
        try:
            resp = self.session.request(method, self.base_url + path, params=clean, json=json,
                                        data=data, headers=headers,
                                        timeout=timeout or self.timeout)
        except requests.RequestException as exc:
            log.warning("console: %s unreachable on %s %s: %s", self.service, method, path,
                        type(exc).__name__)
            raise Unavailable(self.service, "not reachable now") from exc
        if resp.status_code == 204:
            return None
        if resp.status_code >= 500:
            log.warning("console: %s answered %s on %s %s", self.service, resp.status_code,
                        method, path)
            raise Unavailable(self.service, f"answered {resp.status_code}")
        try:
            body = resp.json()
        except ValueError as exc:
            raise Unavailable(self.service, "answered something that is not JSON") from exc
        if resp.status_code >= 400:
            raise ServiceError(resp.status_code, _messages(body))
        return body


def _messages(body: Any) -> list[str]:
    if isinstance(body, dict) and isinstance(body.get("errors"), list):
        return [str(e.get("message", "")) for e in body["errors"] if isinstance(e, dict)]
    return []


class HttpScheduler:
    """:class:`SchedulerApi` over HTTP."""

    def __init__(self, http: _Http):
        self.http = http

    def subscribers(self, **filters) -> dict:
        return self.http.call("GET", "/api/subscribers", params=filters)

    def upsert_subscriber(self, row: dict) -> dict:
        return self.http.call("POST", "/api/subscribers", json=row)

    def subscriber(self, subscriber_id: str) -> dict:
        return self.http.call("GET", f"/api/subscribers/{_seg(subscriber_id)}")

    def change_subscriber(self, subscriber_id: str, body: dict) -> dict:
        return self.http.call("PATCH", f"/api/subscribers/{_seg(subscriber_id)}", json=body)

    def upload_subscribers(self, csv_bytes: bytes) -> dict:
        return self.http.call("POST", "/api/subscribers/upload", data=csv_bytes,
                              content_type="text/csv", timeout=UPLOAD_TIMEOUT)

    def erase_subscriber(self, subscriber_id: str) -> None:
        self.http.call("DELETE", f"/api/subscribers/{_seg(subscriber_id)}")

    def rounds(self, until: str | None = None) -> dict:
        return self.http.call("GET", "/api/rounds", params={"until": until})

    def round(self, code: str, until: str | None = None) -> dict:
        return self.http.call("GET", f"/api/rounds/{_seg(code)}", params={"until": until})

    def put_round(self, body: dict) -> dict:
        return self.http.call("POST", "/api/rounds", json=body)

    def patch_round(self, code: str, body: dict) -> dict:
        return self.http.call("PATCH", f"/api/rounds/{_seg(code)}", json=body)

    def round_changes(self, changes: list[dict]) -> dict:
        return self.http.call("POST", "/api/rounds/changes", json={"changes": changes})

    def campaigns(self, **filters) -> dict:
        return self.http.call("GET", "/api/campaigns", params=filters)

    def campaign(self, campaign_id: str) -> dict:
        return self.http.call("GET", f"/api/campaigns/{_seg(campaign_id)}")

    def create_campaign(self, body: dict) -> dict:
        return self.http.call("POST", "/api/campaigns", json=body)

    def update_campaign(self, campaign_id: str, body: dict) -> dict:
        return self.http.call("PATCH", f"/api/campaigns/{_seg(campaign_id)}", json=body)

    def preview(self, campaign_id: str, limit: int = 20,
                price_per_fragment: float | None = None) -> dict:
        return self.http.call("GET", f"/api/campaigns/{_seg(campaign_id)}/preview",
                              params={"limit": limit, "price_per_fragment": price_per_fragment})

    def campaign_action(self, campaign_id: str, action: str) -> dict:
        if action not in ("pause", "resume", "archive"):
            raise ValueError(action)
        return self.http.call("POST", f"/api/campaigns/{_seg(campaign_id)}/{action}")

    def appointments(self, **filters) -> dict:
        return self.http.call("GET", "/api/appointments", params=filters)

    def appointment(self, reference: str) -> dict:
        return self.http.call("GET", f"/api/appointments/{_seg(reference, safe='/')}")


class HttpInbound:
    """:class:`InboundApi` over HTTP (conversations as issue 13 section 3 has them)."""

    def __init__(self, http: _Http):
        self.http = http

    def conversations(self, **filters) -> dict:
        return self.http.call("GET", "/api/conversations", params=filters)

    def conversation(self, conversation_id: str) -> dict:
        return self.http.call("GET", f"/api/conversations/{_seg(conversation_id)}")

    def answer(self, conversation_id: str, body: dict) -> dict:
        return self.http.call("POST", f"/api/conversations/{_seg(conversation_id)}/messages",
                              json=body)

    def change_conversation(self, conversation_id: str, body: dict) -> dict:
        return self.http.call("PATCH", f"/api/conversations/{_seg(conversation_id)}", json=body)

    def service_requests(self, **filters) -> dict:
        return self.http.call("GET", "/api/service-requests", params=filters)

    def service_request(self, ident: str) -> dict:
        return self.http.call("GET", f"/api/service-requests/{_seg(ident)}")

    def change_service_request(self, ident: str, body: dict) -> dict:
        return self.http.call("PATCH", f"/api/service-requests/{_seg(ident)}", json=body)


def _seg(value: str, safe: str = "") -> str:
    from urllib.parse import quote

    return quote(str(value), safe=safe)


@dataclass
class Clients:
    scheduler: SchedulerApi
    inbound: InboundApi


ClientFactory = Callable[[str, "str | None"], Clients]


def http_factory(runtime, session: requests.Session | None = None) -> ClientFactory:
    """Clients for (tenant id, staff id) over HTTP at the settings' internal URLs."""
    shared_session = session or requests.Session()
    settings = runtime.settings

    def make(tenant_id: str, staff_id: str | None) -> Clients:
        def token() -> str:
            return console_token(runtime.box, tenant_id, staff_id)
        return Clients(
            scheduler=HttpScheduler(_Http("scheduler", settings.internal_url("scheduler"),
                                          token, shared_session)),
            inbound=HttpInbound(_Http("inbound", settings.internal_url("inbound"), token,
                                      shared_session)))
    return make


def install(app, factory: ClientFactory) -> None:
    """Put ``factory`` behind :func:`clients` (tests put fakes or a WSGI transport here)."""
    app.extensions[EXTENSION] = factory


def clients() -> Clients:
    """The clients for the signed-in person's tenant, made once per request."""
    made = g.get("console_clients")
    if made is None:
        factory = current_app.extensions.get(EXTENSION)
        if factory is None:
            factory = http_factory(current_app.extensions["hysbys.runtime"])
            current_app.extensions[EXTENSION] = factory
        made = factory(g.staff.tenant_id, g.staff.id)
        g.console_clients = made
    return made


def guard(bp) -> None:
    """An area's pages when a service says no: its 404 is the console's 404 (another
    tenant's id and an unknown one look the same); a service that does not answer, or
    refuses the console's token, is a page saying so (``console/areas/unavailable.html``)
    — answered 200 with a warning, never a 5xx: a reader is told what happened and that
    nothing was changed, and the route × role matrix (run without the other services)
    holds every permitted route below 500."""
    from flask import render_template
    from werkzeug.exceptions import NotFound

    from services.notify.console import error_page

    def handle(exc: ServiceError):
        if exc.not_found:
            return error_page(NotFound())
        if isinstance(exc, Unavailable) or exc.status in (401, 403):
            log.warning("console: %s", exc)
            return render_template("console/areas/unavailable.html",
                                   service=getattr(exc, "service", None)), 200
        return render_template("console/areas/refused.html", messages=exc.messages), 400

    bp.register_error_handler(ServiceError, handle)
