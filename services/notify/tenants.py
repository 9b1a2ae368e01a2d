"""Onboarding tenants and managing their keys (the owner's side of tenancy).

Used by ``POST /admin/tenants`` and by the ``hysbys tenants|keys`` commands.
Every change bumps the tenant's revision and leaves a ``tenant.changed``
snapshot in the outbox, which the other services replicate.
"""
from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.notify.templates import create_template
from shared import events, outbox, phone
from shared.crypto import SecretBox
from shared.db import utcnow
from shared.errors import Conflict, NotFound, ValidationError
from shared.tenancy import (
    DEFAULT_CONFIG,
    ApiKey,
    Tenant,
    key_string,
    numbers_table,
    snapshot_event,
    validate_slug,
)

AUTO_REPLY_TEMPLATE = {"name": "Hysbys auto-reply / Ateb awtomatig", "type": "sms",
                       "body": {"cy": "((reply_cy))", "en": "((reply_en))"}}
SECRET_FIELDS = ("provider_credentials", "webhook_secret", "delivery_status_token")
# the lists GOV.UK Notify's ``sms_sender_id`` and ``email_reply_to_id`` choose from, and the
# field of each entry that is its value
REPLY_TO_LISTS = {"sms_senders": "sms_sender", "email_reply_to": "email_address"}


@dataclass(frozen=True)
class CreatedTenant:
    id: str
    slug: str
    api_key: str
    test_api_key: str

    def as_dict(self) -> dict:
        return {"id": self.id, "slug": self.slug, "api_key": self.api_key,
                "test_api_key": self.test_api_key}


def announce(session: Session, tenant: Tenant, cid: str | None = None) -> None:
    keys = session.scalars(sa.select(ApiKey).where(ApiKey.tenant_id == tenant.id)).all()
    outbox.add(session, snapshot_event(tenant, list(keys), cid))


def create_tenant(session: Session, box: SecretBox, *, name: str, slug: str,
                  default_language: str = "cy", config: dict | None = None,
                  cid: str | None = None) -> CreatedTenant:
    validate_slug(slug)
    if session.scalars(sa.select(Tenant).where(Tenant.slug == slug)).first():
        raise Conflict(f"A tenant with slug {slug!r} already exists")
    tenant = Tenant(id=str(uuid.uuid4()), slug=slug, name=name.strip(),
                    default_language=default_language, config={**DEFAULT_CONFIG},
                    revision=1, active=True, created_at=utcnow(), updated_at=utcnow())
    session.add(tenant)
    if config:
        _apply(box, tenant, config)
        _check_numbers_free(session, tenant)
    # The template inbound's auto-replies are sent with, so they are counted,
    # suppressed and rate-limited like any other message.
    reply = create_template(session, tenant.id, AUTO_REPLY_TEMPLATE)
    tenant.config = {**tenant.config, "reply_template_id": reply.id}
    _, live = _new_key(session, box, tenant, f"{slug} live", "live", [])
    _, test = _new_key(session, box, tenant, f"{slug} test", "test", [])
    session.flush()
    announce(session, tenant, cid)
    return CreatedTenant(tenant.id, tenant.slug, live, test)


def _new_key(session: Session, box: SecretBox, tenant: Tenant, name: str, key_type: str,
             scopes: list[str]) -> tuple[ApiKey, str]:
    secret = str(uuid.uuid4())
    key = ApiKey(id=str(uuid.uuid4()), tenant_id=tenant.id, name=name, key_type=key_type,
                 secret_encrypted=box.encrypt(secret), scopes=scopes, created_at=utcnow())
    session.add(key)
    return key, key_string(name, tenant.id, secret)


def get_tenant(session: Session, tenant_id: str) -> Tenant:
    try:
        tid = str(uuid.UUID(str(tenant_id)))
    except ValueError:
        raise NotFound() from None
    tenant = session.get(Tenant, tid)
    if tenant is None:
        raise NotFound()
    return tenant


def update_tenant(session: Session, box: SecretBox, tenant_id: str, changes: dict,
                  cid: str | None = None) -> Tenant:
    tenant = get_tenant(session, tenant_id)
    _apply(box, tenant, changes)
    if "inbound_numbers" in changes or changes.get("active") is True:
        _check_numbers_free(session, tenant)
    tenant.revision += 1
    tenant.updated_at = utcnow()
    session.flush()
    announce(session, tenant, cid)
    return tenant


def _apply(box: SecretBox, tenant: Tenant, changes: dict) -> None:
    config = dict(tenant.config or DEFAULT_CONFIG)
    secrets = box.decrypt_json(tenant.config_encrypted)
    for key, value in changes.items():
        if key in ("name", "default_language", "active"):
            setattr(tenant, key, value)
        elif key in SECRET_FIELDS:
            if key == "provider_credentials":
                secrets.setdefault("providers", {}).update(value)
            else:
                secrets[key] = value
        elif key in REPLY_TO_LISTS:
            if key == "sms_senders":
                value = [{**e, "sms_sender": sms_sender_value(e["sms_sender"])} for e in value]
            config[key] = _with_ids(value, config.get(key) or [], REPLY_TO_LISTS[key])
        elif key in ("inbound_numbers", "team_numbers"):
            numbers = []
            for raw in value:
                try:
                    numbers.append(phone.normalise(raw))
                except phone.InvalidPhoneNumber as exc:
                    raise ValidationError(f"{key}: {raw!r}: {exc}") from exc
            config[key] = list(dict.fromkeys(numbers))     # each once, in the order given
        else:
            config[key] = value
    tenant.config = config
    tenant.config_encrypted = box.encrypt_json(secrets) if secrets else None


def _check_numbers_free(session: Session, tenant: Tenant) -> None:
    """409 if another active tenant already has one of ``tenant``'s inbound numbers: a
    citizen's reply to it would go to one council or the other (inbound takes the tenant
    it has had longest), and its words would be the other's to read."""
    mine = (tenant.config or {}).get("inbound_numbers") or []
    if not tenant.active or not mine:
        return
    others = numbers_table(session, besides=tenant.id)
    for number in mine:
        if number in others:
            raise Conflict(f"inbound_numbers: {number} is already the inbound number of "
                           f"tenant {others[number].slug!r}; remove it there first")


def sms_sender_value(raw: str) -> str:
    """A text sender as providers take it: a UK number in E.164, or an alphanumeric sender
    ID of at most 11 letters and digits (the GSM rule); 400 naming the field otherwise."""
    text = raw.strip()
    if text and text[0] in "+0123456789":
        try:
            return phone.normalise(text)
        except phone.InvalidPhoneNumber as exc:
            raise ValidationError(f"sms_senders: {raw!r}: {exc}") from exc
    if not re.fullmatch(r"[A-Za-z0-9 ]{1,11}", text):
        raise ValidationError(f"sms_senders: {raw!r} is neither a phone number nor a sender ID "
                              "of 1-11 letters and digits")
    return text


def _with_ids(entries: list[dict], existing: list[dict], field: str) -> list[dict]:
    """The new list as stored: every entry with an id (the one it had before, matched by
    value, when the operator sends it without), the first the default if none is."""
    known = {e[field]: e["id"] for e in existing}
    out = []
    for e in entries:
        entry_id = e.get("id") or known.get(e[field]) or uuid.uuid4()
        out.append({"id": str(entry_id), field: e[field], "is_default": bool(e.get("is_default"))})
    if out and not any(e["is_default"] for e in out):
        out[0]["is_default"] = True
    return out


def create_key(session: Session, box: SecretBox, tenant_id: str, name: str, key_type: str,
               scopes: list[str], cid: str | None = None) -> tuple[str, str]:
    tenant = get_tenant(session, tenant_id)
    key, api_key = _new_key(session, box, tenant, name, key_type, scopes)
    tenant.revision += 1
    session.flush()
    announce(session, tenant, cid)
    return key.id, api_key


def revoke_key(session: Session, tenant_id: str, key_id: str, cid: str | None = None) -> None:
    tenant = get_tenant(session, tenant_id)
    key = session.get(ApiKey, key_id)
    if key is None or key.tenant_id != tenant.id:
        raise NotFound()
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        tenant.revision += 1
        outbox.add(session, events.make("api_key.revoked", tenant.id, cid, key_id=key.id,
                                        revoked_at=key.revoked_at))
        announce(session, tenant, cid)


def providers_configured(box: SecretBox, tenant: Tenant) -> list[str]:
    return sorted(box.decrypt_json(tenant.config_encrypted).get("providers", {}))
