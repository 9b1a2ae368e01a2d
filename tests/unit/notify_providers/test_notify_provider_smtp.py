"""The SMTP adapter against a local aiosmtpd relay, and its error table."""
from __future__ import annotations

import socket

import pytest

from services.notify.providers.base import Fault, OutgoingMessage, ProviderError
from services.notify.providers.smtp import SmtpFactory, SmtpProvider, classify_error
from tests.fakes.smtp_server import FakeRelay

# the fake relay takes AUTH without TLS in most tests; aiosmtpd rightly warns about it
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")

EMAIL = OutgoingMessage(notification_id="8f0c1b2a-0000-4000-8000-000000000004", channel="email",
                        to="preswylydd@example.cymru", subject="Casgliad biniau",
                        body="Bydd eich biniau'n cael eu casglu dydd Iau.")


def refusal(provider: SmtpProvider) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        provider.send(EMAIL)
    return caught.value


def test_an_email_is_relayed_after_auth_with_our_id_in_a_header(embedded_settings):
    with FakeRelay() as relay:
        result = SmtpFactory().build(relay.credentials(), embedded_settings).send(EMAIL)

    [mail] = relay.received
    assert relay.logins == ["relay-user"]
    assert (mail["From"], mail["To"], mail["Subject"]) == \
        ("biniau@cyngor.example", EMAIL.to, "Casgliad biniau")
    assert mail["X-Hysbys-Notification-Id"] == EMAIL.notification_id
    assert mail.get_payload(decode=True).decode().strip() == EMAIL.body
    assert (result.status, result.reference) == ("sent", mail["Message-ID"])


def test_starttls_is_used_when_the_credentials_ask_for_it():
    with FakeRelay(tls=True) as relay:
        SmtpProvider(relay.credentials(), tls_context=relay.client_tls).send(EMAIL)

    assert len(relay.received) == 1, "the relay requires STARTTLS before AUTH and MAIL"


def test_a_wrong_password_is_configuration_and_retryable():
    with FakeRelay() as relay:
        error = refusal(SmtpProvider(relay.credentials(password="wrong")))

    assert (error.retryable, error.kind) == (True, "config")
    assert "wrong" not in str(error)


def test_a_recipient_the_relay_refuses_for_good_is_a_permanent_failure():
    with FakeRelay() as relay:
        relay.refuse_recipient("550 5.1.1 No such user")
        error = refusal(SmtpProvider(relay.credentials()))

    assert (error.retryable, error.status) == (False, "permanent-failure")


def test_a_temporary_refusal_is_retried_later():
    with FakeRelay() as relay:
        relay.refuse_data("451 4.7.1 Greylisted, try again later")
        error = refusal(SmtpProvider(relay.credentials()))

    assert (error.retryable, error.kind) == (True, "throttled")


def test_a_relay_that_is_not_there_is_a_retryable_outage():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    error = refusal(SmtpProvider({"host": "127.0.0.1", "port": closed_port, "starttls": False,
                                  "from_address": "a@b.example"}, timeout=1))

    assert (error.retryable, error.kind) == (True, "outage")


@pytest.mark.parametrize("stage, code, expected", [
    ("connect", None, Fault.outage()),
    ("data", None, Fault.outage()),
    ("connect", 421, Fault.outage()),
    ("auth", 535, Fault.config()),
    ("sender", 553, Fault.config()),
    ("recipient", 550, Fault.rejected("permanent-failure")),
    ("recipient", 450, Fault.throttled()),
    ("data", 451, Fault.throttled()),
    ("data", 554, Fault.rejected("technical-failure")),
])
def test_smtp_failures_map_to_what_the_dispatcher_does(stage, code, expected):
    assert classify_error(stage, code) == expected


def test_the_chosen_reply_to_and_a_one_click_unsubscribe_link_go_in_the_headers():
    link = "https://cyngor.example/dad-danysgrifio?t=abc123"
    message = OutgoingMessage(**{**EMAIL.__dict__, "reply_to": "biniau@sir-benfro.example",
                                 "unsubscribe_url": link})
    with FakeRelay() as relay:
        SmtpProvider(relay.credentials()).send(message)

    [mail] = relay.received
    assert mail["Reply-To"] == "biniau@sir-benfro.example"
    assert mail["List-Unsubscribe"] == f"<{link}>"
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_without_them_there_is_no_reply_to_or_unsubscribe_header():
    with FakeRelay() as relay:
        SmtpProvider(relay.credentials()).send(EMAIL)

    [mail] = relay.received
    assert mail["Reply-To"] is None and mail["List-Unsubscribe"] is None
