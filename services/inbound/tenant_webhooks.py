"""Signed webhooks to each tenant's own system: every reply, every new or changed request,
every appointment a patient confirmed, cancelled or asked to rearrange.

Consumed from ``inbound.webhooks`` (bound to ``inbound.message.received``,
``service_request.created|updated`` and ``appointment.confirmed|cancelled|
rearrange_requested``).  The body is the row as it is now (the row is the truth;
the event only says which one), in an envelope::

    {"id": <event id>, "type": "service_request.created", "tenant_id", "occurred_at", "data": {...}}

and it is signed with the tenant's ``webhook_secret`` by the Standard Webhooks
scheme (https://www.standardwebhooks.com), so a tenant verifies it with any
Standard Webhooks library (``standardwebhooks.Webhook(secret_bytes).verify``)::

    webhook-id: <event id>
    webhook-timestamp: <unix seconds>
    webhook-signature: v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">

The signing key is the UTF-8 bytes of ``webhook_secret`` (as a Standard Webhooks
``whsec_`` secret: ``"whsec_" + base64(webhook_secret)``).  Until the release after
2026-12 the earlier header is sent as well, for receivers written against it::

    X-Hysbys-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">

A receiver recomputes the HMAC, compares in constant time and refuses a timestamp
more than five minutes away from its clock (:func:`verify` does all three for the
earlier header), so a captured request replayed later is refused.  Every attempt is
signed afresh, so a retry is never stale; ``webhook-id`` and ``X-Hysbys-Delivery``
(the event id) stay the same, so the receiver can drop a duplicate.

A 5xx, 408, 429 or a connection failure raises: the bus retries through its
delay queues with backoff and dead-letters after its budget, and ``hysbys dlq
replay --queue inbound.webhooks`` sends the dead letters again.  Any other 4xx
is the tenant's configuration: logged, not retried.  The POST happens outside
any database transaction (a slow tenant never holds a lock); the inbox row is
written after it, so a redelivered event that was delivered is skipped.
"""
from __future__ import annotations

import datetime as dt
import hmac
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import requests
import sqlalchemy as sa
from sqlalchemy.orm import Session
from standardwebhooks import Webhook

from services.inbound import service_requests
from services.inbound.models import InboundMessage, ServiceRequest
from shared import inbox, tracing
from shared.crypto import SecretBox, hmac_sha256_hex
from shared.db import Database
from shared.events import Event
from shared.http import iso
from shared.inbox import InboxRow
from shared.tenancy import Tenant

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Hysbys-Signature"   # kept for one release beside the standard headers
TOLERANCE_SECONDS = 300
RETRIED_STATUSES = {408, 429}


class WebhookFailed(Exception):
    """The tenant's endpoint could not take the webhook now; the bus retries it later."""


@dataclass(frozen=True)
class Delivery:
    """One POST to make: where, what, and the secret to sign it with."""

    url: str
    body: bytes
    secret: str = field(repr=False)
    event_id: str
    event_type: str


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The ``X-Hysbys-Signature`` value for ``body`` sent at ``timestamp``."""
    return f"t={timestamp},v1={hmac_sha256_hex(secret, str(timestamp).encode() + b'.' + body)}"


def standard_headers(secret: str, event_id: str, body: bytes, timestamp: int) -> dict[str, str]:
    """The Standard Webhooks headers for ``body`` sent at ``timestamp`` (the library signs)."""
    signed_at = dt.datetime.fromtimestamp(timestamp, dt.timezone.utc)
    signature = Webhook(secret.encode()).sign(event_id, signed_at, body.decode())
    return {"webhook-id": event_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": signature}


def verify(secret: str, header: str | None, body: bytes, now: float,
           tolerance: int = TOLERANCE_SECONDS) -> bool:
    """Is ``header`` a signature of ``body`` with ``secret``, made within ``tolerance`` of now?

    What a tenant's receiver does; here so the tests (and the docs) show it.
    """
    parts = dict(p.split("=", 1) for p in (header or "").split(",") if "=" in p)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance:
        return False
    expected = sign(secret, body, timestamp).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


def prepare(event: Event, session: Session, *, box: SecretBox | None) -> Delivery | None:
    """The POST this event calls for, or None (no webhook set, or the row is gone)."""
    tenant = session.get(Tenant, str(event.tenant_id)) if event.tenant_id else None
    url = tenant.setting("webhook_url") if tenant else None
    if not url or box is None:
        return None
    secret = box.decrypt_json(tenant.config_encrypted).get("webhook_secret")
    if not secret:
        log.error("tenant %s has a webhook_url but no webhook_secret: webhooks are not sent "
                  "unsigned; set webhook_secret", tenant.slug)
        return None
    data = _data(event, session)
    if data is None:
        return None
    body = json.dumps({"id": str(event.id), "type": event.type, "tenant_id": tenant.id,
                       "occurred_at": iso(event.occurred_at), "data": data},
                      separators=(",", ":"), ensure_ascii=False).encode()
    return Delivery(url, body, secret, str(event.id), event.type)


def _data(event: Event, session: Session) -> dict | None:
    if event.type.startswith("appointment."):
        return appointment_json(event, session)
    if event.type.startswith("service_request."):
        request = session.get(ServiceRequest, str(event.data["request_id"]))
        if request is None:
            return None
        return service_requests.as_json(request, service_requests.history(session, request.id))
    message = session.get(InboundMessage, str(event.data["message_id"]))
    return message_json(session, message) if message else None


def message_json(session: Session, m: InboundMessage) -> dict:
    """A reply as the tenant's system sees it."""
    request = session.scalar(sa.select(ServiceRequest.reference).where(
        ServiceRequest.message_id == m.id))
    return {"id": m.id, "reference": m.reference, "provider": m.provider,
            "from_number": m.from_number, "to_number": m.to_number, "body": m.body,
            "keyword": m.keyword, "action": m.action, "received_at": iso(m.received_at),
            "service_request": request}


def appointment_json(event: Event, session: Session) -> dict:
    """A patient's appointment reply as the board's system sees it: which appointment (its
    own reference), what the patient asked for, and the reply that asked."""
    d = event.data
    message = session.get(InboundMessage, str(d["message_id"])) if d.get("message_id") else None
    return {"appointment_id": str(d["appointment_id"]),
            "external_reference": d.get("external_reference"),
            "reply_code": d.get("reply_code"),
            "action": event.type.split(".", 1)[1], "source": d.get("source"),
            "recipient": d.get("recipient"),
            "reply": message_json(session, message) if message else None}


def post(delivery: Delivery, http: requests.Session, now: float, timeout: float = 5.0) -> None:
    """POST one signed delivery; raise :class:`WebhookFailed` when it is worth retrying."""
    headers = {"Content-Type": "application/json; charset=utf-8",
               **standard_headers(delivery.secret, delivery.event_id, delivery.body, int(now)),
               SIGNATURE_HEADER: sign(delivery.secret, delivery.body, int(now)),
               "X-Hysbys-Event": delivery.event_type, "X-Hysbys-Delivery": delivery.event_id,
               "User-Agent": "Hysbys-Webhooks/1"}
    try:
        with tracing.span(f"POST tenant webhook {delivery.event_type}", kind=tracing.SpanKind.CLIENT,
                          attributes={"http.request.method": "POST",
                                      "messaging.message.id": delivery.event_id}) as s:
            resp = http.post(delivery.url, data=delivery.body, headers=headers, timeout=timeout,
                             allow_redirects=False)
            s.set_attribute("http.response.status_code", resp.status_code)
    except requests.RequestException as exc:
        raise WebhookFailed(f"tenant webhook: {type(exc).__name__}") from exc
    if resp.status_code >= 500 or resp.status_code in RETRIED_STATUSES:
        raise WebhookFailed(f"tenant webhook answered {resp.status_code}")
    if resp.status_code >= 300:
        log.warning("tenant webhook refused %s %s with %s; not retried", delivery.event_type,
                    delivery.event_id, resp.status_code)


@dataclass
class WebhookDispatcher:
    """The ``inbound.webhooks`` queue's handler: prepare in a read, POST, then mark done."""

    db: Database
    consumer: str
    routes: dict[str, list]
    http: requests.Session
    clock: Callable[[], float] = time.time
    timeout: float = 5.0

    def __call__(self, event: Event) -> None:
        with tracing.consumer_span(event, self.consumer):
            self._deliver(event)

    def _deliver(self, event: Event) -> None:
        with self.db.read() as session:
            if session.get(InboxRow, (str(event.id), self.consumer)) is not None:
                return   # delivered before: a redelivery or a replay of a delivered one
            deliveries = [h(event, session) for h in self.routes.get(event.type, [])]
        for delivery in deliveries:
            if delivery is not None:
                post(delivery, self.http, self.clock(), self.timeout)
        with self.db.transaction() as session:
            inbox.claim(session, event, self.consumer)
