"""A fake Twilio REST API (Messages.json) on 127.0.0.1.

Point the real SDK at it with ``client.api.base_url = fake.url`` (what
:class:`~services.notify.providers.twilio.TwilioFactory` does with ``base_url``).
It checks what Twilio checks — basic auth with the account SID and auth token,
the account in the path, ``To``, ``From`` or ``MessagingServiceSid`` (exactly
one, the expected one), a non-empty ``Body`` and the ``StatusCallback`` —
answers like Twilio (201 with a Message, or Twilio's error body), and sends
status callbacks signed with the real :class:`RequestValidator`.
"""
from __future__ import annotations

import base64
import email.utils
import re
import uuid
from dataclasses import dataclass
from urllib.parse import parse_qs

import requests
from twilio.request_validator import RequestValidator

from tests.fakes.server import FakeServer, Request

ERRORS = {
    20003: (401, "Authenticate"),
    20429: (429, "Too Many Requests"),
    21211: (400, "The 'To' number is not a valid phone number."),
    21604: (400, "A 'To' phone number is required."),
    21602: (400, "Message body is required."),
    21606: (400, "The 'From' phone number provided is not a valid message-capable Twilio phone number."),
    21610: (400, "Attempt to send to unsubscribed recipient"),
    21614: (400, "'To' number is not a valid mobile number"),
    20500: (500, "Internal Server Error"),
}


def twilio_error(code: int, status: int | None = None) -> tuple[int, dict]:
    """Twilio's error body for ``code``."""
    http_status, message = ERRORS.get(code, (status or 400, "Error"))
    status = status or http_status
    return status, {"code": code, "message": message, "status": status,
                    "more_info": f"https://www.twilio.com/docs/errors/{code}"}


@dataclass(frozen=True)
class SentMessage:
    sid: str
    to: str
    body: str
    from_: str | None
    messaging_service_sid: str | None
    status_callback: str | None


class FakeTwilio(FakeServer):
    def __init__(self, account_sid: str, auth_token: str, *, from_number: str | None = None,
                 messaging_service_sid: str | None = None, status_callback: str | None = None,
                 other_senders: tuple[str, ...] = ()):
        super().__init__()
        # the account's other numbers and registered alphanumeric sender IDs: a From
        # Twilio also takes (a tenant's sms_senders)
        self.other_senders = other_senders
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.from_number = from_number
        self.messaging_service_sid = messaging_service_sid
        self.status_callback = status_callback     # the prefix every StatusCallback must have
        self.messages: list[SentMessage] = []

    def credentials(self) -> dict:
        """What a tenant PATCHes as ``provider_credentials.twilio`` to use this account."""
        creds = {"account_sid": self.account_sid, "auth_token": self.auth_token}
        if self.from_number:
            creds["from_number"] = self.from_number
        if self.messaging_service_sid:
            creds["messaging_service_sid"] = self.messaging_service_sid
        return creds

    def fail_with(self, code: int, status: int | None = None, times: int | None = None) -> None:
        self.fail(*twilio_error(code, status), times=times)

    def check(self, req: Request) -> tuple[int, dict] | None:
        expected = "Basic " + base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        if req.headers.get("Authorization") != expected:
            self.problem("basic auth is not the account SID and auth token")
            return twilio_error(20003)
        if req.method != "POST" or req.path != f"/2010-04-01/Accounts/{self.account_sid}/Messages.json":
            self.problem(f"unexpected {req.method} {req.path}")
            return 404, {"code": 20404, "message": "not found", "status": 404}
        form = self.form(req)
        if not re.fullmatch(r"\+[1-9]\d{6,14}", form.get("To", "")):
            self.problem(f"To is not E.164: {form.get('To')!r}")
            return twilio_error(21604)
        if not form.get("Body"):
            self.problem("Body is empty")
            return twilio_error(21602)
        origin = (form.get("From"), form.get("MessagingServiceSid"))
        if origin != (self.from_number, self.messaging_service_sid) and not (
                origin[0] in self.other_senders and origin[1] is None):
            self.problem(f"From/MessagingServiceSid {origin!r} is not this account's sender")
            return twilio_error(21606)
        callback = form.get("StatusCallback", "")
        if self.status_callback and not callback.startswith(self.status_callback):
            self.problem(f"StatusCallback {callback!r} does not start with {self.status_callback!r}")
        return None

    @staticmethod
    def form(req: Request) -> dict:
        return {k: v[0] for k, v in parse_qs(req.body.decode(), keep_blank_values=True).items()}

    def answer(self, req: Request) -> tuple[int, dict]:
        form = self.form(req)
        sid = "SM" + uuid.uuid4().hex
        self.messages.append(SentMessage(sid, form["To"], form["Body"], form.get("From"),
                                         form.get("MessagingServiceSid"), form.get("StatusCallback")))
        now = email.utils.format_datetime(email.utils.localtime())
        return 201, {"sid": sid, "account_sid": self.account_sid, "to": form["To"],
                     "from": form.get("From"), "messaging_service_sid": form.get("MessagingServiceSid"),
                     "body": form["Body"], "status": "queued", "num_segments": "1",
                     "direction": "outbound-api", "date_created": now, "date_updated": now,
                     "error_code": None, "error_message": None, "price": None,
                     "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json"}

    def send_status_callback(self, message: SentMessage, status: str, error_code: int | None = None,
                             *, auth_token: str | None = None) -> requests.Response:
        """POST Twilio's status callback for ``message``, signed as Twilio signs it."""
        params = {"MessageSid": message.sid, "SmsSid": message.sid, "AccountSid": self.account_sid,
                  "MessageStatus": status, "SmsStatus": status, "To": message.to,
                  "From": message.from_ or "", "ApiVersion": "2010-04-01"}
        if error_code is not None:
            params["ErrorCode"] = str(error_code)
        url = message.status_callback or ""
        signature = RequestValidator(auth_token or self.auth_token).compute_signature(url, params)
        return requests.post(url, data=params, headers={"X-Twilio-Signature": signature}, timeout=5)
