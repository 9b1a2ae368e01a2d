"""A fake GOV.UK Notify API (POST /v2/notifications/sms|email) on 127.0.0.1.

It checks the bearer JWT as Notify does, with the client library's own
``decode_jwt_token`` (HS256, the key's secret, ``iss`` = the service id, ``iat``
within 30 s), the template id of the channel, and that our rendered text
arrives as the ``body`` personalisation; it answers Notify's 201 body or its
error body.
"""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field

from notifications_python_client.authentication import decode_jwt_token, get_token_issuer
from notifications_python_client.errors import TokenError

from tests.fakes.server import FakeServer, Request


def notify_error(status: int, error: str, message: str) -> tuple[int, dict]:
    return status, {"status_code": status, "errors": [{"error": error, "message": message}]}


@dataclass(frozen=True)
class NotifySend:
    id: str
    channel: str
    to: str
    template_id: str
    personalisation: dict
    reference: str | None
    # the client's other options as they arrived (sms_sender_id, email_reply_to_id,
    # one_click_unsubscribe_url)
    options: dict = field(default_factory=dict)


class FakeNotify(FakeServer):
    def __init__(self, *, template_id_sms: str | None = None, template_id_email: str | None = None):
        super().__init__()
        self.service_id = str(uuid.uuid4())
        self.secret = str(uuid.uuid4())
        self.templates = {"sms": template_id_sms or str(uuid.uuid4()),
                          "email": template_id_email or str(uuid.uuid4())}
        self.sent: list[NotifySend] = []

    @property
    def api_key(self) -> str:
        return f"hysbys_upstream-{self.service_id}-{self.secret}"

    def credentials(self, **extra) -> dict:
        """What a tenant PATCHes as ``provider_credentials.notify`` to use this service."""
        return {"api_key": self.api_key, "template_id_sms": self.templates["sms"],
                "template_id_email": self.templates["email"], "base_url": self.url, **extra}

    def check(self, req: Request) -> tuple[int, dict] | None:
        scheme, _, token = req.headers.get("Authorization", "").partition(" ")
        if scheme != "Bearer" or not token:
            self.problem("no bearer token")
            return notify_error(401, "AuthError", "Unauthorized: authentication token must be provided")
        try:
            if get_token_issuer(token) != self.service_id:
                raise TokenError("Invalid token: iss is not the service id")
            decode_jwt_token(token, self.secret)
        except TokenError as exc:
            self.problem(f"JWT refused: {exc.message}")
            return notify_error(403, "AuthError", exc.message)
        channel = req.path.rpartition("/")[2]
        if req.method != "POST" or channel not in ("sms", "email"):
            self.problem(f"unexpected {req.method} {req.path}")
            return notify_error(404, "NoResultFound", "No result found")
        body = json.loads(req.body or b"{}")
        if body.get("template_id") != self.templates[channel]:
            self.problem(f"template_id {body.get('template_id')!r} is not the {channel} template")
            return notify_error(400, "BadRequestError", "Template not found")
        if not (body.get("personalisation") or {}).get("body"):
            self.problem("personalisation has no body")
            return notify_error(400, "BadRequestError", "Missing personalisation: body")
        return None

    def answer(self, req: Request) -> tuple[int, dict]:
        body = json.loads(req.body)
        channel = req.path.rpartition("/")[2]
        to = body.get("phone_number") or body.get("email_address")
        options = {k: v for k, v in body.items() if k in (
            "sms_sender_id", "email_reply_to_id", "one_click_unsubscribe_url")}
        sent = NotifySend(str(uuid.uuid4()), channel, to, body["template_id"],
                          body["personalisation"], body.get("reference"), options)
        self.sent.append(sent)
        content = {"body": body["personalisation"]["body"]}
        if channel == "email":
            content.update(subject=body["personalisation"].get("subject", ""), from_email="x@notify")
        else:
            content["from_number"] = "GOVUK"
        return 201, {"id": sent.id, "reference": sent.reference, "content": content,
                     "uri": f"{self.url}/v2/notifications/{sent.id}", "scheduled_for": None,
                     "template": {"id": sent.template_id, "version": 1,
                                  "uri": f"{self.url}/v2/template/{sent.template_id}"}}
