"""The GOV.UK Notify adapter against a local fake Notify that checks the JWT, and its tables."""
from __future__ import annotations

import pytest

from services.notify.providers.base import Fault, OutgoingMessage, ProviderError, ReceiptStatus
from services.notify.providers.govuk_notify import (
    GovukNotifyFactory,
    GovukNotifyProvider,
    classify_error,
    receipt_status,
)
from tests.fakes.notify_server import FakeNotify, notify_error

SMS = OutgoingMessage(notification_id="0b7d7c1e-0000-4000-8000-000000000002", channel="sms",
                      to="+447700900123", body="Helo! Bydd y biniau'n cael eu casglu yfory.")
EMAIL = OutgoingMessage(notification_id="0b7d7c1e-0000-4000-8000-000000000003", channel="email",
                        to="preswylydd@example.cymru", body="Eich apwyntiad", subject="Apwyntiad")


@pytest.fixture
def fake():
    with FakeNotify() as server:
        yield server


def refusal(provider: GovukNotifyProvider, message: OutgoingMessage = SMS) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        provider.send(message)
    return caught.value


def test_a_text_goes_through_the_pass_through_template_with_our_id_as_reference(fake, embedded_settings):
    result = GovukNotifyFactory().build(fake.credentials(), embedded_settings).send(SMS)

    assert fake.problems == [], "the JWT, template and personalisation were what Notify expects"
    [sent] = fake.sent
    assert (result.status, result.reference) == ("sent", sent.id)
    assert (sent.channel, sent.to, sent.personalisation, sent.reference) == \
        ("sms", SMS.to, {"body": SMS.body}, SMS.notification_id)


def test_an_email_carries_subject_and_body_as_personalisation(fake):
    GovukNotifyProvider(fake.credentials()).send(EMAIL)

    assert fake.problems == []
    assert fake.sent[0].personalisation == {"subject": "Apwyntiad", "body": "Eich apwyntiad"}


def test_a_key_signed_with_the_wrong_secret_is_refused_as_configuration(fake):
    wrong = fake.api_key[:-36] + "00000000-0000-4000-8000-000000000000"
    error = refusal(GovukNotifyProvider(fake.credentials(api_key=wrong)))

    assert (error.retryable, error.kind) == (True, "config")
    assert fake.problems and "JWT refused" in fake.problems[0]


def test_a_recipient_notify_rejects_is_a_permanent_failure(fake):
    fake.fail(*notify_error(400, "ValidationError", "phone_number Not a UK mobile number"))
    error = refusal(GovukNotifyProvider(fake.credentials()))

    assert (error.retryable, error.status) == (False, "permanent-failure")


def test_a_trial_mode_service_is_configuration_not_the_recipients_fault(fake):
    fake.fail(*notify_error(400, "BadRequestError",
                            "Can't send to this recipient when service is in trial mode"))
    error = refusal(GovukNotifyProvider(fake.credentials()))

    assert (error.retryable, error.kind) == (True, "config")


@pytest.mark.parametrize("status, kind", [(500, "outage"), (503, "outage"), (429, "throttled")])
def test_server_errors_and_rate_limits_are_retryable(fake, status, kind):
    fake.fail(*notify_error(status, "Exception", "Internal server error"))
    error = refusal(GovukNotifyProvider(fake.credentials()))

    assert (error.retryable, error.kind) == (True, kind)


def test_no_answer_within_the_timeout_is_a_retryable_outage(fake):
    fake.hang()
    error = refusal(GovukNotifyProvider(fake.credentials(), timeout=0.3))

    assert (error.retryable, error.kind) == (True, "outage")


def test_a_channel_without_a_template_is_not_offered(fake):
    provider = GovukNotifyProvider(fake.credentials(template_id_email=None))

    assert provider.channels == ("sms",)


@pytest.mark.parametrize("status, errors, expected", [
    (503, None, Fault.outage()),
    (500, [{"error": "Exception", "message": "Internal server error"}], Fault.outage()),
    (429, [{"error": "RateLimitError", "message": "Exceeded rate limit"}], Fault.throttled()),
    (403, [{"error": "AuthError", "message": "Invalid token"}], Fault.config()),
    (400, [{"error": "ValidationError", "message": "phone_number Not a UK mobile number"}],
     Fault.rejected("permanent-failure")),
    (400, [{"error": "ValidationError", "message": "email_address Not a valid email address"}],
     Fault.rejected("permanent-failure")),
    (400, [{"error": "BadRequestError", "message": "Can't send to this recipient using a team-only API key"}],
     Fault.config()),
    (400, [{"error": "BadRequestError", "message": "Missing personalisation: body"}],
     Fault.rejected("technical-failure")),
    (400, "not a list", Fault.rejected("technical-failure")),
])
def test_notify_errors_map_to_what_the_dispatcher_does(status, errors, expected):
    assert classify_error(status, errors) == expected


@pytest.mark.parametrize("status, expected", [
    ("delivered", ReceiptStatus("delivered")),
    ("permanent-failure", ReceiptStatus("permanent-failure", "GOV.UK Notify: permanent-failure")),
    ("temporary-failure", ReceiptStatus("temporary-failure", "GOV.UK Notify: temporary-failure")),
    ("technical-failure", ReceiptStatus("technical-failure", "GOV.UK Notify: technical-failure")),
    ("sending", ReceiptStatus("sent")),
    ("sent", ReceiptStatus("sent")),
    ("created", ReceiptStatus("sent")),
    ("something-new", None),
])
def test_notify_statuses_map_to_ours(status, expected):
    assert receipt_status(status) == expected


def test_an_api_key_of_the_wrong_shape_is_refused_naming_the_field():
    with pytest.raises(ValueError, match="api_key"):
        GovukNotifyProvider({"api_key": "not-a-key", "template_id_sms": "t"})


def test_an_email_carries_its_one_click_unsubscribe_link_to_notify(fake):
    link = "https://cyngor.example/dad-danysgrifio?t=abc123"
    GovukNotifyProvider(fake.credentials()).send(
        OutgoingMessage(**{**EMAIL.__dict__, "unsubscribe_url": link}))

    assert fake.problems == []
    assert fake.sent[0].options == {"one_click_unsubscribe_url": link}
