"""Where delivery receipts enter: the providers' status callbacks.

``POST /callbacks/twilio/status``
    Twilio's status callback, form-encoded, signed with the auth token of the
    tenant the notification belongs to (``X-Twilio-Signature``).  The
    notification is found by ``provider_reference`` = ``MessageSid``, or, for a
    receipt that overtakes the record of its hand-off, by the
    ``notification_id`` our StatusCallback URL carries.
``POST /callbacks/notify/status``
    GOV.UK Notify's delivery-status callback, JSON, with ``Authorization: Bearer``
    the tenant's ``providers.notify.callback_token``.  Found by our id in
    ``reference``, else by ``provider_reference`` = ``id``.

A forged or missing signature or token is a 403 and changes nothing.  Statuses
only move forward (:data:`RANK`): created < sending < sent < final, and a final
status is never replaced, so out-of-order receipts are harmless.  Every change
goes through :func:`~services.notify.sending.set_status`, so it is an event, and
the tenant's own delivery-status callback follows from it.
"""
from __future__ import annotations

import logging
import uuid

import sqlalchemy as sa
from flask import g, request
from flask_smorest import Blueprint
from marshmallow import INCLUDE, Schema, fields
from sqlalchemy.orm import Session
from twilio.request_validator import RequestValidator

from services.notify.dispatcher import suppress
from services.notify.models import FINAL, Notification
from services.notify.providers import govuk_notify, twilio
from services.notify.providers.base import ReceiptStatus
from services.notify.sending import set_status
from shared import logs
from shared.crypto import constant_time_equals
from shared.errors import AuthError, NotFound
from shared.http import json_body
from shared.runtime import Runtime
from shared.schemas import load
from shared.tenancy import Tenant, bearer_token

log = logging.getLogger(__name__)
RANK = {"created": 0, "deferred": 0, "sending": 1, "sent": 2}


def rank(status: str) -> int:
    return 3 if status in FINAL else RANK.get(status, 0)


def apply_receipt(session: Session, n: Notification, receipt: ReceiptStatus, *, provider: str,
                  reference: str | None = None, cid: str | None = None) -> bool:
    """Move ``n`` forward to the receipt's status; False when that would be a step back.

    The events carry the notification's own correlation id (the send's), so a receipt
    joins the journey it belongs to; ``cid`` (the callback request's) only for a row
    stored without one."""
    if n.status in FINAL or rank(receipt.status) <= rank(n.status):
        return False
    cid = n.correlation_id or cid
    if reference and not n.provider_reference:
        n.provider_reference = reference    # the receipt overtook the record of the hand-off
    if receipt.status in FINAL and n.status != "sent":
        set_status(session, n, "sent", provider=provider, cid=cid)
    set_status(session, n, receipt.status, provider=provider, reason=receipt.reason, cid=cid)
    if receipt.suppress:
        suppress(session, n, source=provider)
    return True


class TwilioStatusForm(Schema):
    class Meta:
        unknown = INCLUDE

    message_sid = fields.String(required=True, data_key="MessageSid")
    message_status = fields.String(required=True, data_key="MessageStatus")
    error_code = fields.String(load_default=None, data_key="ErrorCode")


class NotifyStatusBody(Schema):
    class Meta:
        unknown = INCLUDE

    id = fields.String(required=True)
    status = fields.String(required=True)
    reference = fields.String(load_default=None, allow_none=True)


def provider_secret(runtime: Runtime, tenant: Tenant, provider: str, name: str) -> str | None:
    secrets = runtime.box.decrypt_json(tenant.config_encrypted)
    return ((secrets.get("providers") or {}).get(provider) or {}).get(name)


def _by_reference(session: Session, reference: str) -> Notification | None:
    return session.scalars(sa.select(Notification)
                           .where(Notification.provider_reference == reference)).first()


def _by_id(session: Session, value: str | None) -> Notification | None:
    try:
        return session.get(Notification, str(uuid.UUID(str(value)))) if value else None
    except ValueError:
        return None


def blueprint(runtime: Runtime) -> Blueprint:
    """The delivery-receipt endpoints, bound to ``runtime``."""
    blp = Blueprint("receipts", __name__, url_prefix="/callbacks",
                    description="Delivery receipts, as the SMS and email providers send them")

    def record(notification_id: str, receipt: ReceiptStatus, provider: str, reference: str) -> None:
        with runtime.db.transaction() as session:
            n = session.get(Notification, notification_id, with_for_update=True)
            with logs.bound(correlation_id=(n.correlation_id if n is not None else None)
                            or g.get("correlation_id"), notification_id=notification_id):
                if n is None or not apply_receipt(session, n, receipt, provider=provider,
                                                  reference=reference,
                                                  cid=g.get("correlation_id")):
                    log.info("%s receipt %r for %s changes nothing", provider, receipt.status,
                             notification_id, extra={"notification_id": notification_id})
                    return
        runtime.relay.nudge.set()

    @blp.route("/twilio/status", methods=["POST"])
    @blp.doc(responses={204: {"description": "Receipt taken"},
                        403: {"description": "Missing or wrong X-Twilio-Signature"},
                        404: {"description": "No notification has this MessageSid"}})
    def twilio_status():
        """A Twilio status callback (X-Twilio-Signature checked)"""
        form = load(TwilioStatusForm(), request.form.to_dict())
        sid = form["message_sid"]
        with runtime.db.read() as session:
            n = _by_reference(session, sid) or _by_id(session, request.args.get("notification_id"))
            tenant = session.get(Tenant, n.tenant_id) if n is not None else None
        if n is None or tenant is None:
            raise NotFound()
        logs.tenant_id.set(tenant.id)
        if not signed_by_twilio(runtime, tenant):
            raise AuthError("Invalid X-Twilio-Signature", 403)
        if n.provider_reference not in (None, sid):
            log.warning("Twilio receipt for %s names message %s, not the one recorded: ignored",
                        n.id, sid, extra={"notification_id": n.id})
            return "", 204
        receipt = twilio.receipt_status(form["message_status"], form["error_code"])
        if receipt is not None:
            record(n.id, receipt, "twilio", sid)
        return "", 204

    @blp.route("/notify/status", methods=["POST"])
    @blp.doc(responses={204: {"description": "Receipt taken"},
                        401: {"description": "No bearer token"},
                        403: {"description": "Not the tenant's providers.notify.callback_token"},
                        404: {"description": "No notification has this reference or id"}})
    def notify_status():
        """A GOV.UK Notify delivery-status callback (bearer token checked)"""
        token = bearer_token(request.headers.get("Authorization"))
        body = load(NotifyStatusBody(), json_body())
        with runtime.db.read() as session:
            n = _by_id(session, body["reference"]) or _by_reference(session, body["id"])
            tenant = session.get(Tenant, n.tenant_id) if n is not None else None
        if n is None or tenant is None:
            raise NotFound()
        logs.tenant_id.set(tenant.id)
        expected = provider_secret(runtime, tenant, "notify", "callback_token")
        if not expected or not constant_time_equals(token, expected):
            raise AuthError("Invalid token: not this tenant's GOV.UK Notify callback token", 403)
        receipt = govuk_notify.receipt_status(body["status"])
        if receipt is not None:
            record(n.id, receipt, "notify", body["id"])
        return "", 204

    return blp


def signed_by_twilio(runtime: Runtime, tenant: Tenant) -> bool:
    """Is the request signed with the tenant's Twilio auth token?

    Twilio signs the URL it was given, the public one (HYSBYS_PUBLIC_BASE_URL),
    which behind a TLS-terminating proxy is not the one this process sees.
    """
    signature = request.headers.get("X-Twilio-Signature")
    auth_token = provider_secret(runtime, tenant, "twilio", "auth_token")
    if not signature or not auth_token:
        return False
    # full_path always ends in "?" when there is no query string; Twilio's URL does not
    url = (runtime.settings.public_url("notify") + request.full_path).removesuffix("?")
    return RequestValidator(auth_token).validate(url, request.form, signature)
