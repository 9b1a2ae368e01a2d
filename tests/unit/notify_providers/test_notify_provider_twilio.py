"""The Twilio adapter against a local fake Twilio REST server, and its mapping tables."""
from __future__ import annotations

import pytest

from services.notify.providers.base import Fault, OutgoingMessage, ProviderError, ReceiptStatus
from services.notify.providers.twilio import TwilioFactory, TwilioProvider, classify_error, receipt_status
from tests.fakes.twilio_server import FakeTwilio

SID, TOKEN = "AC" + "0" * 32, "twilio-token-under-test"
CALLBACK = "https://hysbys.example/callbacks/twilio/status"
MESSAGE = OutgoingMessage(notification_id="6d1c5a3e-0000-4000-8000-000000000001", channel="sms",
                          to="+447700900123", body="Rhowch y biniau allan heno ŵ")


@pytest.fixture
def fake():
    with FakeTwilio(SID, TOKEN, from_number="+447700900400", status_callback=CALLBACK) as server:
        yield server


def adapter(fake: FakeTwilio, timeout: float = 5.0, **credentials) -> TwilioProvider:
    return TwilioProvider({**fake.credentials(), **credentials}, CALLBACK, base_url=fake.url,
                          timeout=timeout)


def refusal(provider: TwilioProvider) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        provider.send(MESSAGE)
    return caught.value


def test_a_message_reaches_twilio_with_auth_to_from_body_and_status_callback(fake):
    result = adapter(fake).send(MESSAGE)

    assert fake.problems == []
    [sent] = fake.messages
    assert (result.status, result.reference) == ("sent", sent.sid)
    assert (sent.to, sent.from_, sent.body) == (MESSAGE.to, "+447700900400", MESSAGE.body)
    assert sent.status_callback == f"{CALLBACK}?notification_id={MESSAGE.notification_id}"


def test_a_messaging_service_sends_without_a_from_number():
    with FakeTwilio(SID, TOKEN, messaging_service_sid="MG" + "1" * 32, status_callback=CALLBACK) as fake:
        adapter(fake).send(MESSAGE)

    assert fake.problems == []
    assert (fake.messages[0].from_, fake.messages[0].messaging_service_sid) == (None, "MG" + "1" * 32)


def test_the_factory_points_the_sdk_at_the_base_url_and_our_public_callback(fake, embedded_settings):
    settings = embedded_settings.with_(public_base_url="https://hysbys.example")
    TwilioFactory(base_url=fake.url).build(fake.credentials(), settings).send(MESSAGE)

    assert fake.problems == [] and len(fake.messages) == 1


def test_a_wrong_auth_token_is_refused_and_treated_as_configuration(fake):
    error = refusal(adapter(fake, auth_token="not-the-token"))

    assert (error.retryable, error.kind) == (True, "config")
    assert "not-the-token" not in str(error)


def test_an_opted_out_recipient_is_a_permanent_failure_that_asks_for_suppression(fake):
    fake.fail_with(21610)
    error = refusal(adapter(fake))

    assert (error.retryable, error.status, error.suppress) == (False, "permanent-failure", True)


@pytest.mark.parametrize("code", [21211, 21614])
def test_an_invalid_number_is_a_permanent_failure(fake, code):
    fake.fail_with(code)
    error = refusal(adapter(fake))

    assert (error.retryable, error.status, error.suppress) == (False, "permanent-failure", False)


def test_a_server_error_is_a_retryable_outage(fake):
    fake.fail_with(20500, status=503)
    error = refusal(adapter(fake))

    assert (error.retryable, error.kind) == (True, "outage")


def test_too_many_requests_is_retryable_without_counting_as_an_outage(fake):
    fake.fail_with(20429)
    error = refusal(adapter(fake))

    assert (error.retryable, error.kind) == (True, "throttled")


def test_a_slow_answer_within_the_timeout_is_a_success(fake):
    fake.slow(0.2)
    assert adapter(fake, timeout=5).send(MESSAGE).status == "sent"


def test_no_answer_within_the_timeout_is_a_retryable_outage(fake):
    fake.hang()
    error = refusal(adapter(fake, timeout=0.3))

    assert (error.retryable, error.kind) == (True, "outage")
    assert "did not answer" in str(error)


def test_nobody_listening_is_a_retryable_outage(fake):
    provider = adapter(fake)
    fake.stop()
    error = refusal(provider)

    assert (error.retryable, error.kind) == (True, "outage")


def test_credentials_without_a_sender_are_refused_naming_what_is_missing():
    with pytest.raises(ValueError, match="from_number or messaging_service_sid"):
        TwilioProvider({"account_sid": SID, "auth_token": TOKEN}, CALLBACK)


@pytest.mark.parametrize("http_status, code, expected", [
    (None, None, Fault.outage()),
    (500, 20500, Fault.outage()),
    (503, None, Fault.outage()),
    (429, 20429, Fault.throttled()),
    (400, 21610, Fault.rejected("permanent-failure", suppress=True)),
    (400, 21211, Fault.rejected("permanent-failure")),
    (400, 21614, Fault.rejected("permanent-failure")),
    (400, 21612, Fault.rejected("permanent-failure")),
    (401, 20003, Fault.config()),
    (400, 21606, Fault.config()),
    (400, 21408, Fault.config()),
    (403, None, Fault.config()),
    (400, 21617, Fault.rejected("technical-failure")),
    (400, 99999, Fault.rejected("technical-failure")),
])
def test_twilio_errors_map_to_what_the_dispatcher_does(http_status, code, expected):
    assert classify_error(http_status, code) == expected


@pytest.mark.parametrize("status, error_code, expected", [
    ("accepted", None, ReceiptStatus("sent")),
    ("queued", None, ReceiptStatus("sent")),
    ("sending", None, ReceiptStatus("sent")),
    ("sent", None, ReceiptStatus("sent")),
    ("delivered", None, ReceiptStatus("delivered")),
    ("undelivered", "30003", ReceiptStatus("temporary-failure", "Twilio error 30003")),
    ("undelivered", "30005", ReceiptStatus("permanent-failure", "Twilio error 30005")),
    ("undelivered", "30006", ReceiptStatus("permanent-failure", "Twilio error 30006")),
    ("undelivered", "30004", ReceiptStatus("permanent-failure", "Twilio error 30004")),
    ("undelivered", "30007", ReceiptStatus("technical-failure", "Twilio error 30007")),
    ("undelivered", "30008", ReceiptStatus("temporary-failure", "Twilio error 30008")),
    ("failed", "30002", ReceiptStatus("technical-failure", "Twilio error 30002")),
    ("failed", "21610", ReceiptStatus("permanent-failure", "Twilio error 21610", suppress=True)),
    ("undelivered", None, ReceiptStatus("temporary-failure", "Twilio: undelivered")),
    ("failed", "", ReceiptStatus("technical-failure", "Twilio: failed")),
    ("undelivered", "31999", ReceiptStatus("temporary-failure", "Twilio error 31999")),
    ("canceled", None, ReceiptStatus("technical-failure", "cancelled at Twilio")),
    ("received", None, None),
    ("something-new", None, None),
])
def test_twilio_statuses_map_to_ours(status, error_code, expected):
    assert receipt_status(status, error_code) == expected
