"""Where a reply enters: the providers' webhooks.

``POST /webhooks/twilio/sms``
    Twilio's incoming-message webhook, form-encoded, signed with the tenant's
    Twilio auth token (``X-Twilio-Signature``).  Answers TwiML.
``POST /webhooks/notify/inbound``
    GOV.UK Notify's received-text callback, JSON, with ``Authorization: Bearer``
    the tenant's ``providers.notify.inbound_token``.  Answers 204.

The tenant is the one whose inbound numbers include the number texted.  Both
end in :func:`services.inbound.replies.receive`.

Twilio is answered 200 with an empty ``<Response/>`` for a number that is no
tenant's: an error status would only fill the tenant's Twilio debugger, and
nothing is stored.  A missing or wrong signature is a 403 and nothing is stored.
"""
from __future__ import annotations

import logging

from flask import Response, g, request
from flask_smorest import Blueprint
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from services.inbound import replies, schemas
from shared import logs, phone
from shared.crypto import constant_time_equals
from shared.errors import AuthError
from shared.http import json_body
from shared.metrics import METRICS
from shared.runtime import Runtime
from shared.schemas import load
from shared.tenancy import Tenant, TenantNumbers, bearer_token

log = logging.getLogger(__name__)

TWIML = "text/xml"


def twiml(text: str | None = None) -> Response:
    """A TwiML answer: one ``<Message>`` back to the citizen, or an empty ``<Response/>``."""
    response = MessagingResponse()
    if text:
        response.message(text)
    return Response(str(response), status=200, mimetype=TWIML)


def provider_secrets(runtime: Runtime, tenant: Tenant, provider: str) -> dict:
    """The tenant's decrypted credentials for ``provider`` ({} when none are set)."""
    secrets = runtime.box.decrypt_json(tenant.config_encrypted)
    return (secrets.get("providers") or {}).get(provider) or {}


def find_tenant(runtime: Runtime, numbers: TenantNumbers, to_number: str | None) -> Tenant | None:
    """The tenant the text was sent to, from the process's table of numbers."""
    if to_number is None:
        return None
    with runtime.db.read() as session:
        tenant = numbers.find(session, to_number)
    if tenant is not None:
        logs.tenant_id.set(tenant.id)
    return tenant


def signed_by_twilio(runtime: Runtime, tenant: Tenant) -> bool:
    """Is the request signed with the tenant's Twilio auth token?

    Twilio signs the URL it was configured with, which behind a TLS-terminating
    proxy is the public https address, not the one this process sees; so the
    URL is rebuilt from HYSBYS_PUBLIC_BASE_URL.
    """
    signature = request.headers.get("X-Twilio-Signature")
    if not signature:
        return False
    auth_token = provider_secrets(runtime, tenant, "twilio").get("auth_token")
    if not auth_token:
        log.error("a text reached inbound number of tenant %s, which has no Twilio auth "
                  "token: set providers.twilio.auth_token or replies are refused", tenant.slug)
        return False
    # full_path always ends in "?" when there is no query string; Twilio's URL does not
    url = (runtime.settings.public_url("inbound") + request.full_path).removesuffix("?")
    return RequestValidator(auth_token).validate(url, request.form, signature)


def signed_by_notify(runtime: Runtime, tenant: Tenant, token: str) -> bool:
    """Does the bearer token equal the tenant's GOV.UK Notify inbound token?"""
    expected = provider_secrets(runtime, tenant, "notify").get("inbound_token")
    if not expected:
        log.error("a GOV.UK Notify reply reached tenant %s, which has no "
                  "providers.notify.inbound_token: replies are refused", tenant.slug)
        return False
    return constant_time_equals(token, expected)


def store(runtime: Runtime, handler: replies.Replies, tenant: Tenant,
          incoming: replies.Incoming) -> replies.Receipt | None:
    """Receive the reply (once per provider reference), then wake the outbox relay."""
    receipt = handler.handle(tenant, incoming, cid=g.get("correlation_id"))
    if receipt is None:
        log.info("%s message %s received before: ignored", incoming.provider,
                 incoming.reference)
        return None
    runtime.relay.nudge.set()
    METRICS.inbound_messages.labels(provider=incoming.provider,
                                    keyword=receipt.keyword or "none").inc()
    return receipt


def blueprint(runtime: Runtime, handler: replies.Replies) -> Blueprint:
    """The providers' webhooks; ``handler`` receives what they deliver."""
    blp = Blueprint("webhooks", __name__, url_prefix="/webhooks",
                    description="Replies from citizens, as the SMS providers deliver them")
    numbers = TenantNumbers()      # this process's inbound number -> tenant

    @blp.route("/twilio/sms", methods=["POST"])
    @blp.doc(requestBody={"required": True, "content": {
        "application/x-www-form-urlencoded": {"schema": schemas.TwilioIncomingSms}}},
        responses={200: {"description": "TwiML", "content": {TWIML: {}}},
                   403: {"description": "Missing or wrong X-Twilio-Signature"}},
        parameters=[{"in": "header", "name": "X-Twilio-Signature", "required": True,
                     "schema": {"type": "string"}}])
    def twilio_sms():
        """A citizen's text, from Twilio; answers TwiML"""
        to_number = phone.try_normalise(request.form.get("To", ""))
        tenant = find_tenant(runtime, numbers, to_number)
        if tenant is None:
            log.warning("Twilio delivered a text to %s, which is no tenant's inbound number: "
                        "ignored", request.form.get("To", "")[:32] or "(no To)")
            return twiml()
        if not signed_by_twilio(runtime, tenant):
            raise AuthError("Invalid X-Twilio-Signature", 403)
        args = load(schemas.TwilioIncomingSms(), request.form.to_dict())
        from_number = phone.try_normalise(args["from_number"])
        if from_number is None:
            log.warning("Twilio text %s comes from %r, not a phone number: ignored",
                        args["message_sid"], args["from_number"][:32])
            return twiml()
        receipt = store(runtime, handler, tenant, replies.Incoming(
            "twilio", args["message_sid"], from_number, to_number, args["body"],
            opt_out_type=args["opt_out_type"]))
        return twiml(receipt.inline_answer if receipt else None)

    @blp.route("/notify/inbound", methods=["POST"])
    @blp.doc(requestBody={"required": True, "content": {
        "application/json": {"schema": schemas.NotifyReceivedText}}},
        responses={204: {"description": "Received"},
                   401: {"description": "No bearer token"},
                   403: {"description": "Not the tenant's inbound token"}},
        security=[{"bearer": []}])
    def notify_inbound():
        """A citizen's text, from GOV.UK Notify's received-text callback"""
        token = bearer_token(request.headers.get("Authorization"))
        body = json_body()
        to_number = phone.try_normalise(str(body.get("destination_number") or ""))
        tenant = find_tenant(runtime, numbers, to_number)
        # One answer for "no such number" and "wrong token": a caller without the
        # token learns nothing about which numbers are tenants'.
        if tenant is None or not signed_by_notify(runtime, tenant, token):
            if tenant is None:
                log.warning("GOV.UK Notify delivered a text to a number that is no "
                            "tenant's inbound number: refused")
            raise AuthError("Invalid token: not the inbound token for this number", 403)
        args = load(schemas.NotifyReceivedText(), body)
        from_number = phone.try_normalise(args["source_number"])
        if from_number is None:
            log.warning("GOV.UK Notify text %s comes from %r, not a phone number: ignored",
                        args["id"], args["source_number"][:32])
            return "", 204
        store(runtime, handler, tenant, replies.Incoming(
            "notify", args["id"], from_number, to_number, args["message"],
            received_at=args["date_received"]))
        return "", 204

    return blp
