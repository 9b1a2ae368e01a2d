"""Audit entries from any service: what is safe to keep, and how the scheduler and
inbound report their changes to notify's audit log.

A service that changes something a tenant's team should be able to trace calls
:func:`publish` in the transaction of the change: an ``audit.recorded`` event goes
through its outbox, and notify stores it once in ``audit_log`` (services/notify/
console/audit.py, ``apply_audit_event``), where the console and ``GET /api/audit``
read it.  :func:`redact` is applied before anything leaves the service: secrets and
recipients become ``"[redacted]"``, message text its length and a short fingerprint.
"""
from __future__ import annotations

import hashlib
import re

from sqlalchemy.orm import Session

from shared import events, outbox

SECRET_KEYS = {"password", "password_hash", "secret", "api_key", "test_api_key", "token",
               "auth_token", "secret_encrypted", "config_encrypted", "provider_credentials",
               "webhook_secret", "delivery_status_token", "client_secret", "oidc_client_secret",
               "csrf_token", "token_hash"}
PERSONAL_KEYS = {"phone_number", "email_address", "recipient", "personalisation", "phone",
                 "user_number", "to", "email", "attributes", "first_name", "last_name",
                 "address", "address_string", "address_id", "uprn", "zipcode", "postcode",
                 "lat", "long", "media_url", "from_number", "citizen"}
TEXT_KEYS = {"body", "subject", "content", "message", "body_en", "body_cy", "subject_en",
             "subject_cy", "text", "reply", "en", "cy", "description", "status_notes",
             "public_status_notes"}
_ALREADY = re.compile(r"\[\d+ characters, sha256 [0-9a-f]{10}\]|\[redacted\]")   # redact twice = once


def fingerprint(text: str) -> str:
    return f"[{len(text)} characters, sha256 {hashlib.sha256(text.encode()).hexdigest()[:10]}]"


def redact(value, key: str | None = None, inside_text: bool = False):
    """``value`` safe to keep: secrets and recipients redacted, texts fingerprinted."""
    lowered = (key or "").lower()
    if lowered in SECRET_KEYS or lowered in PERSONAL_KEYS:
        return None if value is None else "[redacted]"
    text = inside_text or lowered in TEXT_KEYS
    if isinstance(value, dict):
        return {k: redact(v, k, text and k in ("en", "cy")) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v, None, inside_text) for v in value]
    if isinstance(value, str) and text:
        return value if _ALREADY.fullmatch(value) else fingerprint(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)



def publish(session: Session, *, tenant_id: str | None, service: str, action: str,
            actor: dict, target: dict | None = None, before: dict | None = None,
            after: dict | None = None, via: str = "api",
            correlation_id: str | None = None) -> None:
    """Report one change to notify's audit log, in the caller's transaction.

    ``actor``: ``{"type": "api_key"|"staff"|"operator"|"system", "id", "label"}``;
    ``target``: ``{"type", "id"}``."""
    outbox.add(session, events.make(
        "audit.recorded", tenant_id, correlation_id, service=service, via=via, action=action,
        actor=actor, target=target or {}, before=redact(before) if before is not None else None,
        after=redact(after) if after is not None else None))


# -- the scheduler's and inbound's APIs: one hook each -------------------------------

CHANGING = {"POST", "PUT", "PATCH", "DELETE"}
NOT_AUDITED_PATHS = ("/webhooks/", "/internal/")


def install_api_hook(app, runtime) -> None:
    """Report every successful change made through this service's API with a tenant's
    key (POST, PUT, PATCH or DELETE answered 2xx) to notify's audit log.

    The entry names the endpoint, the key, the target in the URL and the redacted
    request; it is written in a transaction of its own just after the change (as
    notify's own API hook does), so a crash between the two loses the entry, never the
    change, and the failure is logged.  A citizen's webhook is not a change by the
    team, and a call the console makes for a signed-in person (``Caller.staff_id``) is
    already in the log under that person's name, so neither is reported here."""
    import logging

    from flask import g, request

    log = logging.getLogger("hysbys.audit")

    @app.after_request
    def _audit_after(response):
        caller = g.get("caller")
        if (request.method not in CHANGING or caller is None or caller.staff_id
                or not 200 <= response.status_code < 300
                or request.path.startswith(NOT_AUDITED_PATHS)):
            return response
        try:
            view_args = {k: v for k, v in (request.view_args or {}).items() if k != "tenant_id"}
            rule = request.url_rule.rule if request.url_rule else request.path
            parts = [p for p in rule.split("/") if p and not p.startswith("<")]
            sent = request.get_json(silent=True) if request.is_json else None
            after = (sent if isinstance(sent, dict)
                     else {"items": len(sent)} if isinstance(sent, list) else None)
            target_id = next((str(v) for v in view_args.values()), None)
            with runtime.db.transaction() as session:
                publish(session, tenant_id=caller.tenant_id, service=runtime.service,
                        action=request.endpoint or rule,
                        actor={"type": "api_key", "id": caller.key_id,
                               "label": caller.key_id},
                        target={"type": parts[-1] if parts else None, "id": target_id},
                        after=after, correlation_id=g.get("correlation_id"))
            runtime.relay.nudge.set()
        except Exception:  # noqa: BLE001 - the change is made; its entry is logged as missing
            log.error("audit: could not record %s %s", request.method, request.path,
                      exc_info=True)
        return response
