"""Email through a council's own SMTP relay, with the standard library.

Credentials (per tenant, decrypted from ``providers.smtp``)::

    {"host": "smtp.council.gov.uk", "port": 587, "username": "…", "password": "…",
     "starttls": true, "from_address": "biniau@council.gov.uk"}

SMTP has no delivery receipts: a message the relay accepted is ``sent`` and
stays so.  :func:`classify_error` is pure and tested as a table.
"""
from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid

from services.notify.providers.base import BaseProvider, Fault, OutgoingMessage, ProviderError, SendResult
from shared.config import Settings

STAGES = ("connect", "auth", "sender", "recipient", "data")


def classify_error(stage: str, code: int | None) -> Fault:
    """What an SMTP failure at ``stage`` with reply ``code`` (None: no answer) means for us."""
    if code is None or code == 421:
        return Fault.outage()           # refused, dropped, timed out, or "service not available"
    if stage in ("auth", "sender"):
        return Fault.config()           # the tenant's relay account or from address
    if 400 <= code < 500:
        return Fault.throttled()        # greylisting, mailbox busy: try again later
    if stage == "recipient":
        return Fault.rejected("permanent-failure")
    return Fault.rejected("technical-failure")


class SmtpProvider(BaseProvider):
    """One tenant's SMTP relay; a connection per message (relays limit long sessions)."""

    def __init__(self, credentials: dict, *, timeout: float = 10.0,
                 tls_context: ssl.SSLContext | None = None):
        super().__init__(name="smtp", channels=("email",))
        missing = [k for k in ("host", "from_address") if not credentials.get(k)]
        if missing:
            raise ValueError("SMTP credentials lack " + ", ".join(missing))
        self.host = credentials["host"]
        self.port = int(credentials.get("port") or 587)
        self.username = credentials.get("username")
        self.password = credentials.get("password")
        self.starttls = bool(credentials.get("starttls", True))
        self.from_address = credentials["from_address"]
        self.timeout = timeout
        self.tls_context = tls_context

    @property
    def sender(self) -> str:
        return self.from_address

    def _send(self, message: OutgoingMessage) -> SendResult:
        email = self._compose(message)
        stage = "connect"
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                if self.starttls:
                    smtp.starttls(context=self.tls_context or ssl.create_default_context())
                if self.username:
                    stage = "auth"
                    smtp.login(self.username, self.password or "")
                stage = "data"
                smtp.send_message(email)
        except smtplib.SMTPRecipientsRefused as exc:
            code = next(iter(exc.recipients.values()))[0]
            raise self._error("recipient", code) from None
        except smtplib.SMTPSenderRefused as exc:
            raise self._error("sender", exc.smtp_code) from None
        except smtplib.SMTPResponseException as exc:
            raise self._error(stage, exc.smtp_code) from None
        except smtplib.SMTPNotSupportedError:
            # the relay lacks STARTTLS or AUTH: the tenant's settings, not an outage
            raise ProviderError.from_fault(f"SMTP relay does not support what {stage} needs",
                                           Fault.config()) from None
        except (smtplib.SMTPException, OSError):
            raise self._error(stage, None) from None
        return SendResult("sent", email["Message-ID"])

    def _error(self, stage: str, code: int | None) -> ProviderError:
        answer = f"answered {code}" if code else "did not answer"
        return ProviderError.from_fault(f"SMTP relay {answer} at {stage}", classify_error(stage, code))

    def _compose(self, message: OutgoingMessage) -> EmailMessage:
        email = EmailMessage()
        email["From"] = self.from_address
        email["To"] = message.to
        email["Subject"] = message.subject or ""
        email["Message-ID"] = make_msgid(domain=self.from_address.rpartition("@")[2] or None)
        email["X-Hysbys-Notification-Id"] = message.notification_id
        if message.reply_to:
            email["Reply-To"] = message.reply_to
        if message.unsubscribe_url:     # RFC 8058, as GOV.UK Notify adds it
            email["List-Unsubscribe"] = f"<{message.unsubscribe_url}>"
            email["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        email.set_content(message.body)
        return email


@dataclass(frozen=True)
class SmtpFactory:
    """Builds a tenant's :class:`SmtpProvider`; tests may pass a TLS context that trusts a test CA."""

    timeout: float = 10.0
    tls_context: ssl.SSLContext | None = None
    name: str = "smtp"

    def build(self, credentials: dict, settings: Settings) -> SmtpProvider:
        return SmtpProvider(credentials, timeout=self.timeout, tls_context=self.tls_context)
