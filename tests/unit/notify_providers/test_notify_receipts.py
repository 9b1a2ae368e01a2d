"""Delivery receipts: Twilio's signed status callbacks and GOV.UK Notify's bearer-token
callbacks, through the notify app's test client."""
from __future__ import annotations

import pytest
from twilio.request_validator import RequestValidator

from services.notify.providers.base import ProviderError
from services.notify.sending import find_suppression
from tests.unit.notify_providers.providers_support import Harness, ScriptedProvider

AUTH_TOKEN = "tenant-twilio-auth-token"
CALLBACK_TOKEN = "tenant-notify-callback-token"
PATH = "/callbacks/twilio/status"
TO = "+447700900123"


@pytest.fixture
def h(make_notify) -> Harness:
    return make_notify({"twilio": ScriptedProvider("twilio", ("sms",)),
                        "notify": ScriptedProvider("notify", ("sms",))})


@pytest.fixture
def client(h):
    return h.service.create_app().test_client()


def tenant(h: Harness, provider: str = "twilio") -> str:
    return h.tenant([provider], provider_credentials={
        "twilio": {"account_sid": "AC" + "4" * 32, "auth_token": AUTH_TOKEN,
                   "from_number": "+447700900400"},
        "notify": {"api_key": "k", "template_id_sms": "t", "callback_token": CALLBACK_TOKEN}})


def sent(h: Harness, provider: str = "twilio") -> tuple[str, str]:
    nid = h.send(tenant(h, provider))
    h.dispatcher.run_once()
    row = h.row(nid)
    assert row.status == "sent"
    return nid, row.provider_reference


def post_twilio(client, h: Harness, params: dict, *, token: str | None = AUTH_TOKEN, query: str = ""):
    path = PATH + (f"?{query}" if query else "")
    headers = {}
    if token is not None:
        url = h.service.runtime.settings.public_url("notify") + path
        headers["X-Twilio-Signature"] = RequestValidator(token).compute_signature(url, params)
    return client.post(path, data=params, headers=headers)


def receipt(sid: str, status: str, error_code: str | None = None) -> dict:
    params = {"MessageSid": sid, "MessageStatus": status, "To": TO, "AccountSid": "AC" + "4" * 32}
    if error_code:
        params["ErrorCode"] = error_code
    return params


def test_a_signed_delivered_receipt_moves_the_notification_to_delivered(h, client):
    nid, sid = sent(h)

    response = post_twilio(client, h, receipt(sid, "delivered"))

    assert response.status_code == 204
    assert h.row(nid).status == "delivered"
    assert h.statuses(nid) == ["sent", "delivered"], "each change is an event"


@pytest.mark.parametrize("token", ["someone-elses-token", None], ids=["forged", "missing"])
def test_a_forged_or_missing_signature_is_refused_and_changes_nothing(h, client, token):
    nid, sid = sent(h)

    response = post_twilio(client, h, receipt(sid, "delivered"), token=token)

    assert response.status_code == 403
    assert response.json["errors"][0]["message"] == "Invalid X-Twilio-Signature"
    assert h.row(nid).status == "sent"
    assert h.statuses(nid) == ["sent"]


def test_a_signature_over_different_parameters_is_refused(h, client):
    nid, sid = sent(h)
    url = h.service.runtime.settings.public_url("notify") + PATH
    signature = RequestValidator(AUTH_TOKEN).compute_signature(url, receipt(sid, "undelivered", "30003"))

    response = client.post(PATH, data=receipt(sid, "delivered"), headers={"X-Twilio-Signature": signature})

    assert response.status_code == 403 and h.row(nid).status == "sent"


def test_out_of_order_receipts_never_move_a_notification_backwards(h, client):
    nid, sid = sent(h)

    for status in ("delivered", "sent", "queued", "undelivered"):
        assert post_twilio(client, h, receipt(sid, status, "30003" if status == "undelivered" else None)
                           ).status_code == 204

    assert h.row(nid).status == "delivered"
    assert h.statuses(nid) == ["sent", "delivered"]


def test_a_failure_receipt_maps_its_error_code(h, client):
    nid, sid = sent(h)

    post_twilio(client, h, receipt(sid, "undelivered", "30005"))

    row = h.row(nid)
    assert (row.status, row.status_reason) == ("permanent-failure", "Twilio error 30005")


def test_an_opted_out_receipt_suppresses_the_recipient(h, client):
    nid, sid = sent(h)

    post_twilio(client, h, receipt(sid, "failed", "21610"))

    assert h.row(nid).status == "permanent-failure"
    with h.db.read() as session:
        assert find_suppression(session, h.row(nid).tenant_id, "sms", TO) is not None
    assert [e["data"]["recipient"] for e in h.events("subscriber.opted_out")] == [TO]


def test_a_receipt_for_a_send_we_thought_had_timed_out_ends_its_retry(make_notify):
    slow = ScriptedProvider("twilio", ("sms",), ProviderError("Twilio did not answer in time",
                                                             retryable=True, kind="outage"))
    h = make_notify({"twilio": slow})
    client = h.service.create_app().test_client()
    nid = h.send(tenant(h))
    h.dispatcher.run_once()
    assert h.row(nid).status == "created", "waiting to retry"

    response = post_twilio(client, h, receipt("SM" + "9" * 32, "delivered"), query=f"notification_id={nid}")
    h.elapse_backoff()
    h.dispatcher.run_once()

    assert response.status_code == 204
    row = h.row(nid)
    assert (row.status, row.provider_reference) == ("delivered", "SM" + "9" * 32)
    assert len(slow.sent) == 1, "Twilio had it after all: it is not sent again"


def test_a_receipt_for_an_unknown_message_is_not_found(h, client):
    response = post_twilio(client, h, receipt("SM" + "0" * 32, "delivered"))

    assert response.status_code == 404
    assert response.json["errors"][0]["error"] == "NoResultFound"


def test_a_receipt_without_a_message_sid_names_the_field(h, client):
    response = client.post(PATH, data={"MessageStatus": "delivered"})

    assert response.status_code == 400
    assert "MessageSid" in response.json["errors"][0]["message"]


# -- GOV.UK Notify ------------------------------------------------------------------


def notify_body(nid: str, ref: str, status: str) -> dict:
    return {"id": ref, "reference": nid, "to": TO, "status": status, "notification_type": "sms",
            "created_at": "2025-01-01T10:00:00.000000Z", "completed_at": None, "sent_at": None}


def test_a_notify_callback_with_the_tenants_token_moves_the_notification(h, client):
    nid, ref = sent(h, "notify")

    response = client.post("/callbacks/notify/status", json=notify_body(nid, ref, "temporary-failure"),
                           headers={"Authorization": f"Bearer {CALLBACK_TOKEN}"})

    assert response.status_code == 204
    assert h.row(nid).status == "temporary-failure"


def test_a_notify_callback_is_found_by_provider_reference_without_our_reference(h, client):
    nid, ref = sent(h, "notify")
    body = {**notify_body(nid, ref, "delivered"), "reference": None}

    client.post("/callbacks/notify/status", json=body, headers={"Authorization": f"Bearer {CALLBACK_TOKEN}"})

    assert h.row(nid).status == "delivered"


@pytest.mark.parametrize("header, code", [(None, 401), ("Bearer not-the-token", 403)])
def test_a_notify_callback_without_the_right_token_is_refused(h, client, header, code):
    nid, ref = sent(h, "notify")
    headers = {"Authorization": header} if header else {}

    response = client.post("/callbacks/notify/status", json=notify_body(nid, ref, "delivered"),
                           headers=headers)

    assert response.status_code == code
    assert h.row(nid).status == "sent"


def test_a_malformed_notify_callback_is_a_400_naming_the_field(h, client):
    response = client.post("/callbacks/notify/status", json={"id": "x"},
                           headers={"Authorization": f"Bearer {CALLBACK_TOKEN}"})

    assert response.status_code == 400
    assert "status" in response.json["errors"][0]["message"]


def test_a_notify_callback_that_is_not_json_is_refused_clearly(h, client):
    response = client.post("/callbacks/notify/status", data="status=delivered",
                           headers={"Authorization": f"Bearer {CALLBACK_TOKEN}",
                                    "Content-Type": "application/x-www-form-urlencoded"})

    assert response.status_code == 415
