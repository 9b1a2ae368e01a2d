"""Forged, borrowed and malformed calls to the endpoints providers call (no tenant JWT).

The single-tenant cases (forged, missing, replayed signatures on the reply webhooks;
the tenant webhook HMAC's forged, changed and stale signatures) are in
tests/unit/inbound; these add what needs two tenants — one tenant's credentials
used on another's notification — and bodies that are too big, empty or not UTF-8,
on every endpoint a provider calls.
"""
from __future__ import annotations

import uuid

import requests
from twilio.request_validator import RequestValidator

from tests.security.world import ADMIN, Owner, World

PROVIDER_ENDPOINTS = [("notify", "/callbacks/twilio/status"), ("notify", "/callbacks/notify/status"),
                      ("inbound", "/webhooks/twilio/sms"), ("inbound", "/webhooks/notify/inbound")]


def _notify_credentials(w: World, owner: Owner) -> str:
    token = "cb-" + uuid.uuid4().hex
    r = requests.patch(f"{w.url('notify')}/admin/tenants/{owner.tenant['id']}", headers=ADMIN, timeout=10,
                       json={"provider_credentials": {"notify": {
                           "api_key": f"upstream-{uuid.uuid4()}-{uuid.uuid4()}",
                           "template_id_sms": str(uuid.uuid4()), "callback_token": token}}})
    assert r.status_code == 200, r.text
    return token


def _status(w: World, owner: Owner) -> str:
    return requests.get(f"{w.url('notify')}/v2/notifications/{owner.ids['notification']}",
                        headers=owner.headers(), timeout=10).json()["status"]


def _twilio_receipt(w: World, notification_id: str, token: str) -> requests.Response:
    path = f"/callbacks/twilio/status?notification_id={notification_id}"
    params = {"MessageSid": "SM" + uuid.uuid4().hex, "MessageStatus": "failed", "ErrorCode": "30005",
              "AccountSid": "AC" + "1" * 32}
    signature = RequestValidator(token).compute_signature(w.url("notify") + path, params)
    return requests.post(w.url("notify") + path, data=params, headers={"X-Twilio-Signature": signature},
                         timeout=10)


def test_one_tenants_twilio_token_cannot_sign_a_receipt_for_anothers_notification(world):
    a, b = world.a, world.b
    before = _status(world, b)
    borrowed = _twilio_receipt(world, b.ids["notification"], a.auth_token)
    assert borrowed.status_code == 403, borrowed.text
    assert _status(world, b) == before
    genuine = _twilio_receipt(world, b.ids["notification"], b.auth_token)   # the check can pass
    assert genuine.status_code in (200, 204), genuine.text


def test_one_tenants_notify_callback_token_cannot_move_anothers_notification(world):
    a, b = world.a, world.b
    token_a, token_b = _notify_credentials(world, a), _notify_credentials(world, b)
    before = _status(world, b)
    body = {"id": str(uuid.uuid4()), "reference": b.ids["notification"], "to": b.citizen,
            "status": "permanent-failure", "notification_type": "sms"}
    url = world.url("notify") + "/callbacks/notify/status"
    borrowed = requests.post(url, json=body, headers={"Authorization": f"Bearer {token_a}"}, timeout=10)
    assert borrowed.status_code in (403, 404), borrowed.text
    assert b.citizen not in borrowed.text
    assert _status(world, b) == before
    genuine = requests.post(url, json=body, headers={"Authorization": f"Bearer {token_b}"}, timeout=10)
    assert genuine.status_code in (200, 204), genuine.text


def test_one_tenants_token_cannot_post_a_reply_to_anothers_number(world):
    a, b = world.a, world.b
    token_a = _notify_credentials(world, a)
    _notify_credentials(world, b)
    r = requests.post(world.url("inbound") + "/webhooks/notify/inbound", timeout=10,
                      headers={"Authorization": f"Bearer {token_a}"},
                      json={"id": str(uuid.uuid4()), "source_number": b.citizen,
                            "destination_number": b.number, "message": "STOP",
                            "date_received": "2026-11-25T18:00:00.000000Z"})
    assert r.status_code in (401, 403), r.text


BAD_BODIES = {
    "3 MiB": (b"x" * (3 * 1024 * 1024), "application/x-www-form-urlencoded"),
    "empty form": (b"", "application/x-www-form-urlencoded"),
    "empty JSON": (b"", "application/json"),
    "not UTF-8 form": (b"\xff\xfe\x80 MessageSid=\xc3\x28&Body=\xa0\xa1",
                       "application/x-www-form-urlencoded"),
    "not UTF-8 JSON": (b'{"reference": "\xc3\x28"}', "application/json"),
}


def test_oversize_empty_and_non_utf8_bodies_get_a_clear_4xx_and_change_nothing(world):
    """Every provider-facing endpoint × every bad body (one platform for all, to stay fast)."""
    stored_before = _stored(world)
    wrong = []
    for service, path in PROVIDER_ENDPOINTS:
        for name, (body, content_type) in BAD_BODIES.items():
            r = requests.post(world.url(service) + path, data=body, timeout=30,
                              headers={"Content-Type": content_type, "X-Twilio-Signature": "forged",
                                       "Authorization": "Bearer forged"})
            if not _clear_refusal(r, path, oversize=len(body) > 2 * 1024 * 1024):
                wrong.append(f"{path} with {name}: {r.status_code} {r.text[:120]!r}")
    assert not wrong, "\n".join(wrong)
    assert _stored(world) == stored_before


def _clear_refusal(r: requests.Response, path: str, *, oversize: bool) -> bool:
    if path == "/webhooks/twilio/sms" and r.status_code == 200:
        # a text for which no tenant's number can be found is answered (so Twilio stops
        # retrying) with empty TwiML, and dropped
        return r.text.strip().endswith("<Response />")
    if not 400 <= r.status_code < 500 or (oversize and r.status_code not in (413, 415)):
        return False             # too big must be 413, or 415 where the type is wrong anyway
    if "json" in r.headers.get("Content-Type", ""):
        payload = r.json()
        return payload["status_code"] == r.status_code and bool(payload["errors"][0]["message"])
    return True


def _stored(w: World) -> tuple:
    """What a forged call could have changed: replies stored, and each tenant's notification."""
    import sqlalchemy as sa

    with w.platform.inbound.runtime.db.read() as session:
        replies = session.execute(sa.text("SELECT count(*) FROM inbound_messages")).scalar()
    return replies, _status(w, w.a), _status(w, w.b)
