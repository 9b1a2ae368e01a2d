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
                 "user_number", "to"}
TEXT_KEYS = {"body", "subject", "content", "message", "body_en", "body_cy", "subject_en",
             "subject_cy", "text", "reply", "en", "cy"}
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
