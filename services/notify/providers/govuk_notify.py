"""GOV.UK Notify as a provider, through the official ``notifications-python-client``.

Credentials (per tenant, decrypted from ``providers.notify``)::

    {"api_key": "…", "template_id_sms": "<uuid>", "template_id_email": "<uuid>",
     "base_url": "https://api.notifications.service.gov.uk",      (optional)
     "sms_sender_id": "<uuid>", "email_reply_to_id": "<uuid>",     (optional)
     "callback_token": "…"}                                        (receipts)

We render the text ourselves (bilingual, Welsh first), so the tenant's Notify
service needs one pass-through template per channel: an SMS template whose body
is ``((body))`` and an email template with subject ``((subject))`` and body
``((body))``.  Our notification id travels as Notify's ``reference``, so the
receipt finds its notification.

:func:`classify_error` and :func:`receipt_status` are pure, tested as tables.
"""
from __future__ import annotations

import re
import threading
from dataclasses import dataclass

from notifications_python_client.errors import APIError
from notifications_python_client.notifications import NotificationsAPIClient

from services.notify.providers.base import (
    BaseProvider,
    Fault,
    OutgoingMessage,
    ProviderError,
    ReceiptStatus,
    SendResult,
)
from shared.config import Settings

DEFAULT_BASE_URL = "https://api.notifications.service.gov.uk"
RECIPIENT_FIELDS = ("phone_number", "email_address")
_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
API_KEY = re.compile(rf"-{_UUID}-{_UUID}$")


def classify_error(status_code: int, errors: list | str | None) -> Fault:
    """What a GOV.UK Notify error means for us.

    The client reports a connection error or a timeout as a 503 without a body.
    """
    if status_code == 429:
        return Fault.throttled()
    if status_code >= 500:
        return Fault.outage()
    if status_code in (401, 403):
        return Fault.config()
    for error in errors if isinstance(errors, list) else []:
        message = str(error.get("message", "")) if isinstance(error, dict) else ""
        kind = error.get("error") if isinstance(error, dict) else None
        if kind == "ValidationError" and message.startswith(RECIPIENT_FIELDS):
            return Fault.rejected("permanent-failure")
        if kind == "BadRequestError" and "Can't send to this recipient" in message:
            return Fault.config()   # the tenant's Notify service is in trial mode
    return Fault.rejected("technical-failure")


SENT = {"created", "sending", "pending", "sent"}
FINAL = {"delivered", "permanent-failure", "temporary-failure", "technical-failure"}


def receipt_status(status: str) -> ReceiptStatus | None:
    """A GOV.UK Notify callback's ``status`` in our terms; None for ones we ignore."""
    status = (status or "").strip().lower()
    if status in FINAL:
        return ReceiptStatus(status, None if status == "delivered" else f"GOV.UK Notify: {status}")
    if status in SENT:
        return ReceiptStatus("sent")
    return None


class GovukNotifyProvider(BaseProvider):
    """One tenant's GOV.UK Notify service, used as an upstream provider."""

    def __init__(self, credentials: dict, *, timeout: float = 10.0):
        super().__init__(name="notify", channels=("sms", "email"))
        if not API_KEY.search(credentials.get("api_key") or ""):
            raise ValueError("GOV.UK Notify credentials lack an api_key of the form "
                             "{key_name}-{service_id}-{secret}")
        self.templates = {"sms": credentials.get("template_id_sms"),
                          "email": credentials.get("template_id_email")}
        self.channels = tuple(c for c in ("sms", "email") if self.templates[c])
        if not self.channels:
            raise ValueError("GOV.UK Notify credentials lack template_id_sms and template_id_email")
        self.sms_sender_id = credentials.get("sms_sender_id")
        self.email_reply_to_id = credentials.get("email_reply_to_id")
        self.client = NotificationsAPIClient(credentials["api_key"],
                                             base_url=credentials.get("base_url") or DEFAULT_BASE_URL,
                                             timeout=timeout)
        # the client keeps one requests.Session, which is not thread-safe
        self._lock = threading.Lock()

    @property
    def sender(self) -> str:
        return self.client.service_id

    def _send(self, message: OutgoingMessage) -> SendResult:
        try:
            with self._lock:
                answer = self._post(message)
        except APIError as exc:
            errors = _errors(exc)
            raise ProviderError.from_fault(f"GOV.UK Notify answered {exc.status_code}",
                                           classify_error(exc.status_code, errors)) from None
        return SendResult("sent", str(answer["id"]))

    def _post(self, message: OutgoingMessage) -> dict:
        template = self.templates.get(message.channel)
        if not template:
            raise ProviderError(f"no GOV.UK Notify {message.channel} template configured",
                                retryable=True, kind="config")
        if message.channel == "sms":
            return self.client.send_sms_notification(
                message.to, template, personalisation={"body": message.body},
                reference=message.notification_id, sms_sender_id=self.sms_sender_id)
        return self.client.send_email_notification(
            message.to, template, personalisation={"subject": message.subject or "",
                                                   "body": message.body},
            reference=message.notification_id, email_reply_to_id=self.email_reply_to_id,
            one_click_unsubscribe_url=message.unsubscribe_url)


def _errors(exc: APIError) -> list | None:
    try:
        body = exc.response.json()  # type: ignore[union-attr]
    except (AttributeError, TypeError, ValueError):
        return None
    return body.get("errors") if isinstance(body, dict) else None


@dataclass(frozen=True)
class GovukNotifyFactory:
    """Builds a tenant's :class:`GovukNotifyProvider` (``base_url`` comes from the credentials)."""

    timeout: float = 10.0
    name: str = "notify"

    def build(self, credentials: dict, settings: Settings) -> GovukNotifyProvider:
        return GovukNotifyProvider(credentials, timeout=self.timeout)
