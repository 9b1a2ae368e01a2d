"""GOV.UK Notify's send options on the v2 API: files, scheduling, senders and reply-to
addresses as the tenant's settings hold them (docs/notify-api.md, "Send options")."""
from __future__ import annotations

import base64
import io
import uuid

import pytest
from notifications_python_client.utils import prepare_upload
from notify_api_support import EMAIL_TEMPLATE, errors

ADMIN_PATCH = "/admin/tenants/{}"


def admin(notify) -> dict:
    return {"Authorization": f"Bearer {notify.runtime.settings.admin_token}"}


@pytest.fixture
def email_template(client, tenant) -> str:
    return client.post("/api/templates", json=EMAIL_TEMPLATE, headers=tenant.live).get_json()["id"]


def test_a_file_to_send_by_email_is_refused_as_notify_refuses_it_and_never_written_in(
        client, tenant, email_template):
    upload = prepare_upload(io.BytesIO(b"%PDF-1.4 cyfrinachol"), filename="llythyr.pdf")
    r = client.post("/v2/notifications/email", headers=tenant.live, json={
        "email_address": "sian@example.cymru", "template_id": email_template,
        "personalisation": {"name": upload}})
    status, kind, message = errors(r)
    assert (status, kind) == (400, "BadRequestError")
    assert message.startswith("Send files by email has not been set up")
    assert "personalisation name" in message
    assert base64.b64encode(b"%PDF-1.4 cyfrinachol").decode() not in r.get_data(as_text=True)


def test_scheduled_for_is_refused_as_on_a_service_without_scheduling_never_sent_early(
        client, tenant, sms_template):
    r = client.post("/v2/notifications/sms", headers=tenant.live, json={
        "phone_number": "07700900111", "template_id": sms_template["id"],
        "personalisation": {"name": "a", "bin type": "b"},
        "scheduled_for": "2026-12-04T09:00:00"})
    assert errors(r) == (400, "BadRequestError",
                         "Cannot schedule notifications (this feature is invite-only)")


@pytest.mark.parametrize("url", ["http://cyngor.example/u", "not a url"])
def test_the_one_click_unsubscribe_link_must_be_https(client, tenant, email_template, url):
    r = client.post("/v2/notifications/email", headers=tenant.live, json={
        "email_address": "sian@example.cymru", "template_id": email_template,
        "personalisation": {"name": "Siân"}, "one_click_unsubscribe_url": url})
    status, kind, message = errors(r)
    assert (status, kind) == (400, "ValidationError") and "one_click_unsubscribe_url" in message


def test_senders_and_reply_to_addresses_keep_their_ids_and_one_is_the_default(
        notify, client, tenant, email_template):
    url = ADMIN_PATCH.format(tenant.id)
    first = client.patch(url, headers=admin(notify), json={
        "sms_senders": [{"sms_sender": "SirBenfro"}, {"sms_sender": "+447700900401"}],
        "email_reply_to": [{"email_address": "cyswllt@sir-benfro.example"}]}).get_json()
    senders = first["config"]["sms_senders"]
    assert [s["is_default"] for s in senders] == [True, False], "the first, none being marked"
    again = client.patch(url, headers=admin(notify), json={"sms_senders": [
        {"sms_sender": "SirBenfro"}, {"sms_sender": "07700 900401", "is_default": True}]}
    ).get_json()["config"]["sms_senders"]
    assert [s["id"] for s in again] == [s["id"] for s in senders], "matched by value: same ids"
    assert [s["is_default"] for s in again] == [False, True]
    sent = client.post("/v2/notifications/sms", headers=tenant.live, json={
        "phone_number": "07700900111", "template_id": client.post(
            "/api/templates", headers=tenant.live, json={
                "name": "c", "type": "sms", "body": {"cy": "((c))", "en": "((c))"}}
        ).get_json()["id"], "personalisation": {"c": "1"}}).get_json()
    assert sent["content"]["from_number"] == "+447700900401"
    shown = client.get(url, headers=admin(notify)).get_json()["config"]
    assert shown["email_reply_to"][0]["email_address"] == "cyswllt@sir-benfro.example"


@pytest.mark.parametrize("body,field", [
    ({"sms_senders": [{"sms_sender": "Cyngor Sir Benfro"}]}, "sms_senders"),     # > 11
    ({"sms_senders": [{"sms_sender": "07700 9"}]}, "sms_senders"),
    ({"sms_senders": [{"sms_sender": "A", "is_default": True},
                      {"sms_sender": "B", "is_default": True}]}, "sms_senders"),
    ({"email_reply_to": [{"email_address": "not an address"}]}, "email_reply_to"),
    ({"sms_senders": [{"sms_sender": "A", "id": "nope"}]}, "sms_senders"),
])
def test_a_bad_sender_or_reply_to_is_a_400_that_names_it(notify, client, tenant, body, field):
    status, _, message = errors(client.patch(ADMIN_PATCH.format(tenant.id),
                                             headers=admin(notify), json=body))
    assert status == 400 and field in message


def test_another_tenants_sender_id_is_the_same_400_as_an_unknown_one(notify, client, tenant,
                                                                    sms_template):
    from notify_api_support import new_tenant

    other = new_tenant(notify, "arall")
    theirs = client.patch(ADMIN_PATCH.format(other.id), headers=admin(notify), json={
        "sms_senders": [{"sms_sender": "Arall"}]}).get_json()["config"]["sms_senders"][0]["id"]
    body = {"phone_number": "07700900111", "template_id": sms_template["id"],
            "personalisation": {"name": "a", "bin type": "b"}}
    for wanted in (theirs, str(uuid.uuid4())):
        r = client.post("/v2/notifications/sms", headers=tenant.live,
                        json={**body, "sms_sender_id": wanted})
        assert errors(r) == (400, "BadRequestError", f"sms_sender_id {wanted} does not exist "
                                                     f"in database for service id {tenant.id}")


def test_sanitise_content_for_removes_links_from_the_fields_it_names_and_only_those(
        client, tenant):
    template = client.post("/api/templates", headers=tenant.live, json={
        "name": "Diolch", "type": "email", "subject": {"cy": "Diolch", "en": "Thank you"},
        "body": {"cy": "Diolch ((name)). Gweler ((link)).", "en": "Thanks ((name)). See ((link))."}},
    ).get_json()["id"]
    body = {"email_address": "sian@example.cymru", "template_id": template, "language": "en",
            "personalisation": {"name": "Siân visit https://phish.example/x or www.evil.example",
                                "link": "https://www.sir-benfro.gov.uk/biniau"}}
    plain = client.post("/v2/notifications/email", headers=tenant.live, json=body).get_json()
    asked = client.post("/v2/notifications/email", headers=tenant.live,
                        json={**body, "sanitise_content_for": ["name"]})
    assert asked.status_code == 201, asked.get_data(as_text=True)
    assert "phish.example" in plain["content"]["body"]
    assert asked.get_json()["content"]["body"] == \
        "Thanks Siân visit or. See https://www.sir-benfro.gov.uk/biniau."
