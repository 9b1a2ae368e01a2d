"""Twilio Programmable Messaging, through the official ``twilio`` SDK.

Credentials (per tenant, decrypted from ``providers.twilio``)::

    {"account_sid": "AC…", "auth_token": "…",
     "from_number": "+447…"  |  "messaging_service_sid": "MG…"}

Every message carries ``StatusCallback`` = our public notify URL +
``/callbacks/twilio/status?notification_id=<id>`` so the receipt finds its
notification even when it overtakes the record of the hand-off.

:func:`classify_error` (hand-off errors) and :func:`receipt_status` (status
callbacks) are pure functions, tested as tables.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from urllib.parse import urlencode

import requests
from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from services.notify.providers.base import (
    BaseProvider,
    Fault,
    OutgoingMessage,
    ProviderError,
    ReceiptStatus,
    SendResult,
)
from shared.config import Settings

CALLBACK_PATH = "/callbacks/twilio/status"
# The SDK logs every request line at INFO; keep ours quiet (no auth is logged either way).
_http_log = logging.getLogger("hysbys.twilio.http")
_http_log.setLevel(logging.WARNING)

OPTED_OUT = 21610
INVALID_RECIPIENT = {21211: "invalid 'To' number", 21612: "'To' number cannot receive SMS",
                     21614: "'To' number is not a mobile number",
                     21635: "'To' number is a landline"}
CONFIG_ERRORS = {20003: "authentication failed", 20404: "account or resource not found",
                 21408: "region not enabled for this account",
                 21606: "'From' number cannot send SMS", 21659: "'From' is not a Twilio number",
                 21660: "'From' number does not belong to the account",
                 21701: "Messaging Service not found", 21703: "Messaging Service has no senders"}


def classify_error(http_status: int | None, code: int | None) -> Fault:
    """What a Twilio hand-off error means for us (``http_status`` None: no answer at all)."""
    if http_status is None:
        return Fault.outage()
    if http_status == 429 or code == 20429:
        return Fault.throttled()
    if http_status >= 500:
        return Fault.outage()
    if code == OPTED_OUT:
        return Fault.rejected("permanent-failure", suppress=True)
    if code in INVALID_RECIPIENT:
        return Fault.rejected("permanent-failure")
    if code in CONFIG_ERRORS or http_status in (401, 403):
        return Fault.config()
    return Fault.rejected("technical-failure")


SENT = {"accepted", "scheduled", "queued", "sending", "sent"}
DELIVERED = {"delivered", "read"}
FAILED = {"undelivered", "failed"}
# ErrorCode on an undelivered/failed callback (Twilio's error dictionary, 30xxx):
# temporary = the handset may take it later; permanent = the number is wrong for SMS;
# technical = our account, sender or content.
RECEIPT_ERRORS = {
    30001: "technical-failure",   # queue overflow
    30002: "technical-failure",   # account suspended
    30003: "temporary-failure",   # unreachable destination handset (off, no signal)
    30004: "permanent-failure",   # message blocked (by the recipient or their carrier)
    30005: "permanent-failure",   # unknown destination handset (number not in service)
    30006: "permanent-failure",   # landline or unreachable carrier
    30007: "technical-failure",   # filtered by the carrier (content or sender)
    30008: "temporary-failure",   # unknown error
    30009: "temporary-failure",   # missing segment
    30010: "technical-failure",   # price exceeds max price
    30034: "technical-failure",   # sender not registered
    21211: "permanent-failure",
    21614: "permanent-failure",
    21610: "permanent-failure",   # opted out at Twilio: also suppressed
}


def receipt_status(message_status: str, error_code: str | int | None) -> ReceiptStatus | None:
    """Twilio's ``MessageStatus`` + ``ErrorCode`` in our terms; None for statuses we ignore."""
    status = (message_status or "").strip().lower()
    if status in SENT:
        return ReceiptStatus("sent")
    if status in DELIVERED:
        return ReceiptStatus("delivered")
    if status == "canceled":
        return ReceiptStatus("technical-failure", "cancelled at Twilio")
    if status not in FAILED:
        return None   # receiving/received (inbound) or something new: not ours to move
    code = _int(error_code)
    if code is None:
        ours = "technical-failure" if status == "failed" else "temporary-failure"
        return ReceiptStatus(ours, f"Twilio: {status}")
    default = "technical-failure" if status == "failed" else "temporary-failure"
    return ReceiptStatus(RECEIPT_ERRORS.get(code, default), f"Twilio error {code}",
                         suppress=code == OPTED_OUT)


def _int(value) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


class TwilioProvider(BaseProvider):
    """One tenant's Twilio account."""

    def __init__(self, credentials: dict, callback_url: str, *, base_url: str | None = None,
                 timeout: float = 10.0):
        super().__init__(name="twilio", channels=("sms",))
        missing = [k for k in ("account_sid", "auth_token") if not credentials.get(k)]
        if not (credentials.get("from_number") or credentials.get("messaging_service_sid")):
            missing.append("from_number or messaging_service_sid")
        if missing:
            raise ValueError("Twilio credentials lack " + ", ".join(missing))
        self.from_number = credentials.get("from_number")
        self.messaging_service_sid = credentials.get("messaging_service_sid")
        self.callback_url = callback_url
        self.client = Client(credentials["account_sid"], credentials["auth_token"],
                             http_client=TwilioHttpClient(timeout=timeout, logger=_http_log))
        if base_url:
            # twilio 9 builds every Messages URL from the Api domain's base_url
            self.client.api.base_url = base_url.rstrip("/")

    @property
    def sender(self) -> str:
        return self.from_number or self.messaging_service_sid

    def _send(self, message: OutgoingMessage) -> SendResult:
        if message.sender:          # a tenant's own number or ID, checked when accepted
            origin = {"from_": message.sender}
        else:
            origin = ({"from_": self.from_number} if self.from_number
                      else {"messaging_service_sid": self.messaging_service_sid})
        callback = self.callback_url + "?" + urlencode({"notification_id": message.notification_id})
        try:
            sent = self.client.messages.create(to=message.to, body=message.body,
                                               status_callback=callback, **origin)
        except (TwilioRestException, TwilioServiceException) as exc:
            code = exc.code if isinstance(exc.code, int) else _int(exc.code)
            raise ProviderError.from_fault(
                f"Twilio answered {exc.status} (error {code})", classify_error(exc.status, code)
            ) from None
        except requests.Timeout:
            raise ProviderError.from_fault("Twilio did not answer in time",
                                           classify_error(None, None)) from None
        except requests.RequestException as exc:
            raise ProviderError.from_fault(f"Twilio unreachable: {type(exc).__name__}",
                                           classify_error(None, None)) from None
        return SendResult("sent", sent.sid)


@dataclass(frozen=True)
class TwilioFactory:
    """Builds a tenant's :class:`TwilioProvider`; tests point ``base_url`` at a fake."""

    base_url: str | None = None
    timeout: float = 10.0
    name: str = "twilio"

    def build(self, credentials: dict, settings: Settings) -> TwilioProvider:
        return TwilioProvider(credentials, settings.public_url("notify") + CALLBACK_PATH,
                              base_url=self.base_url, timeout=self.timeout)
