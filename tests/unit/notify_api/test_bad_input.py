"""Bad input on every endpoint: a clear 4xx in GOV.UK Notify's error body, never a 500."""
from __future__ import annotations

import json
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from notify_api_support import EMAIL_TEMPLATE, SMS_TEMPLATE, errors, new_tenant

UNKNOWN = str(uuid.uuid4())

# (method, path, a good JSON body): {t} is a template id, {tenant} the tenant's id
JSON_ENDPOINTS = [
    ("POST", "/v2/notifications/sms", {"phone_number": "07700900111", "template_id": "{t}",
                                       "personalisation": {"name": "a", "bin type": "b"}}),
    ("POST", "/v2/notifications/email", {"email_address": "a@b.cymru", "template_id": "{e}",
                                         "personalisation": {"name": "a"}}),
    ("POST", "/v2/template/{t}/preview", {"personalisation": {"name": "a", "bin type": "b"}}),
    ("POST", "/api/templates", {"name": "n", "type": "sms", "body": {"en": "a", "cy": "b"}}),
    ("PATCH", "/api/templates/{t}", {"name": "n"}),
    ("POST", "/api/templates/{t}/preview", {"personalisation": {"name": "a", "bin type": "b"}}),
    ("POST", "/api/suppressions", {"recipient": "07700900111"}),
    ("POST", "/api/bulk", {"template_id": "{t}", "rows": [{"phone_number": "07700900111"}]}),
    ("POST", "/admin/tenants", {"name": "N", "slug": "newslug"}),
    ("PATCH", "/admin/tenants/{tenant}", {"name": "N"}),
    ("POST", "/admin/tenants/{tenant}/keys", {"name": "k"}),
]
# a field and a value of the wrong type, for each body endpoint
WRONG_TYPES = {
    "/v2/notifications/sms": ("personalisation", "not a dict"),
    "/v2/notifications/email": ("email_address", 12),
    "/v2/template/{t}/preview": ("personalisation", [1, 2]),
    "/api/templates": ("body", "text"),
    "/api/templates/{t}": ("archived", "perhaps"),
    "/api/templates/{t}/preview": ("personalisation", 5),
    "/api/suppressions": ("channel", "pigeon"),
    "/api/bulk": ("rows", "all of them"),
    "/admin/tenants": ("slug", ["a"]),
    "/admin/tenants/{tenant}": ("daily_message_limit", "lots"),
    "/admin/tenants/{tenant}/keys": ("key_type", "skeleton"),
}
FILTERED = ["/v2/notifications", "/v2/templates", "/v2/received-text-messages", "/api/suppressions"]
GET_ENDPOINTS = ["/v2/notifications/{n}", "/v2/notifications", "/v2/template/{t}",
                 "/v2/template/{t}/version/1", "/v2/templates", "/v2/received-text-messages",
                 "/api/templates", "/api/templates/{t}", "/api/suppressions", "/api/bulk/{b}",
                 "/admin/tenants", "/admin/tenants/{tenant}"]


@pytest.fixture(scope="module")
def notify(tmp_path_factory):
    """One service for the whole module: these tests only read or refuse."""
    from services.notify.wiring import build
    from tests.conftest import _base_settings

    svc = build(_base_settings(tmp_path_factory.mktemp("bad-input")))
    svc.runtime.migrate()
    yield svc
    svc.runtime.db.dispose()


@pytest.fixture(scope="module")
def client(notify):
    return notify.create_app().test_client()


@pytest.fixture(scope="module")
def tenant(notify):
    return new_tenant(notify, "drwg")


@pytest.fixture(scope="module")
def ids(client, tenant, notify) -> dict:
    sms_template = client.post("/api/templates", json=SMS_TEMPLATE, headers=tenant.live).get_json()
    sent = client.post("/v2/notifications/sms", headers=tenant.live, json={
        "phone_number": "07700900111", "template_id": sms_template["id"],
        "personalisation": {"name": "a", "bin type": "b"}}).get_json()
    job = client.post("/api/bulk", headers=tenant.live, json={
        "template_id": sms_template["id"], "rows": []}).get_json()
    email = client.post("/api/templates", headers=tenant.live, json=EMAIL_TEMPLATE).get_json()
    return {"t": sms_template["id"], "tenant": tenant.id, "n": sent["id"], "b": job["id"],
            "e": email["id"]}


@pytest.fixture(scope="module")
def call(client, tenant, notify, ids):
    admin = {"Authorization": f"Bearer {notify.runtime.settings.admin_token}"}

    def call(method: str, path: str, **kw):
        headers = admin if path.startswith("/admin") else tenant.live
        return client.open(path.format(**ids), method=method, headers=headers, **kw)
    return call


def fill(body: dict, ids: dict) -> dict:
    return json.loads(json.dumps(body).replace("{t}", ids["t"]).replace("{e}", ids["e"]))


def check(resp, status: int, error: str | None = None, says: str | None = None):
    code, kind, message = errors(resp)
    assert code == status, (code, kind, message)
    if error:
        assert kind == error, (kind, message)
    if says:
        assert says in message, message
    return message


@pytest.mark.parametrize("method,path,good", JSON_ENDPOINTS)
def test_the_good_body_is_accepted(call, ids, method, path, good):
    r = call(method, path, json=fill(good, ids))
    assert 200 <= r.status_code < 300, r.get_data(as_text=True)


@pytest.mark.parametrize("method,path,good", JSON_ENDPOINTS)
def test_malformed_json_is_a_400(call, method, path, good):
    check(call(method, path, data='{,}', content_type="application/json"), 400,
          says="Invalid JSON")


@pytest.mark.parametrize("method,path,good", JSON_ENDPOINTS)
def test_a_body_that_is_not_an_object_is_a_400(call, method, path, good):
    r = call(method, path, data="[1, 2]", content_type="application/json")
    assert r.status_code == 400 and errors(r)[0] == 400


# GOV.UK Notify's send schemas allow properties they do not know (docs/notify-api.md)
NOTIFY_SENDS = ("/v2/notifications/sms", "/v2/notifications/email")


@pytest.mark.parametrize("method,path,good",
                         [e for e in JSON_ENDPOINTS if e[1] not in NOTIFY_SENDS])
def test_an_unknown_field_is_a_400_that_names_it(call, ids, method, path, good):
    body = {**fill(good, ids), "colour": "red"}
    check(call(method, path, json=body), 400, "ValidationError", says="colour")


@pytest.mark.parametrize("method,path,good", [e for e in JSON_ENDPOINTS if e[1] in NOTIFY_SENDS])
def test_an_option_notify_does_not_know_is_ignored_on_a_send_as_notify_ignores_it(
        call, ids, method, path, good):
    r = call(method, path, json={**fill(good, ids), "colour": "red"})
    assert r.status_code == 201, r.get_data(as_text=True)


@pytest.mark.parametrize("method,path,good", JSON_ENDPOINTS)
def test_a_wrong_type_is_a_400_that_names_the_field(call, ids, method, path, good):
    field, value = WRONG_TYPES[path]
    r = call(method, path, json={**fill(good, ids), field: value})
    check(r, 400, says=field)


@pytest.mark.parametrize("method,path,good", JSON_ENDPOINTS)
def test_an_oversize_body_is_a_413(call, method, path, good):
    size = 51 * 1024 * 1024 if path == "/api/bulk" else 3 * 1024 * 1024
    r = call(method, path, data=b"{" + b" " * size + b"}", content_type="application/json")
    check(r, 413, "RequestTooLargeError")


@pytest.mark.parametrize("method,path,good", JSON_ENDPOINTS)
def test_a_body_that_is_not_json_is_a_415(call, ids, method, path, good):
    r = call(method, path, data=json.dumps(fill(good, ids)), content_type="text/plain")
    check(r, 415, "UnsupportedMediaTypeError")


@pytest.mark.parametrize("path", GET_ENDPOINTS)
def test_an_unknown_query_parameter_or_id_is_a_4xx(call, ids, path):
    r = call("GET", path + "?colour=red")
    if path in FILTERED:
        check(r, 400, says="colour")
    if "{" in path:
        unknown = path.replace("{n}", UNKNOWN).replace("{t}", UNKNOWN).replace(
            "{b}", UNKNOWN).replace("{tenant}", UNKNOWN)
        check(call("GET", unknown), 404, "NoResultFound", "No result found")


@pytest.mark.parametrize("path", [p for p in GET_ENDPOINTS if "{" in p and "tenant" not in p])
def test_a_malformed_id_is_a_400_that_names_it(call, path):
    bad = path.replace("{n}", "not-a-uuid").replace("{t}", "not-a-uuid").replace("{b}", "x")
    check(call("GET", bad), 400, "ValidationError", says="is not a valid UUID")


@pytest.mark.parametrize("query,says", [
    ("status=elephant", "status"), ("template_type=fax", "template_type"),
    ("older_than=yesterday", "older_than"),
])
def test_bad_notification_filters_are_a_400(call, query, says):
    check(call("GET", "/v2/notifications?" + query), 400, "ValidationError", says=says)


@pytest.mark.parametrize("body,says", [
    ({"phone_number": "07700 900ABC"}, "phone_number"),
    ({"phone_number": "+44 7700 900111 22222"}, "phone_number"),
    ({"phone_number": "07700\u0000900111"}, "NUL"),
    ({"reference": "r\u0000"}, "reference"),
    ({"reference": "r" * 1001}, "reference"),
    ({"personalisation": {"name": "a\u0000", "bin type": "b"}}, "personalisation"),
    ({"personalisation": {"name": "a" * 2000, "bin type": "b"}}, "918"),
    ({"template_id": "not-a-uuid"}, "template_id"),
    ({"template_id": UNKNOWN}, "Template not found"),
    ({"scheduled_for": "2030-01-01 10:00"}, "Cannot schedule notifications"),
])
def test_a_bad_text_message_is_a_400_that_says_why(call, ids, body, says):
    good = fill(JSON_ENDPOINTS[0][2], ids)
    check(call("POST", "/v2/notifications/sms", json={**good, **body}), 400, says=says)


def test_an_overlong_email_address_is_a_400_not_a_database_error(call, ids):
    address = "a" * 310 + "@b.cymru.example"
    check(call("POST", "/v2/notifications/email", json={
        "email_address": address, "template_id": ids["e"], "personalisation": {"name": "a"}}),
        400, says="email_address")


def test_an_unknown_suppression_channel_is_a_400(call):
    check(call("DELETE", "/api/suppressions/pigeon/07700900111"), 400, says="channel")


def test_bulk_refuses_other_content_types_and_csv_without_a_template(call):
    check(call("POST", "/api/bulk", data="a,b", content_type="text/plain"), 415)
    check(call("POST", "/api/bulk", data="phone_number\n07700900111\n", content_type="text/csv"),
          400, says="template_id")


def test_letters_are_refused_as_notify_refuses_a_service_without_them(call, ids):
    check(call("POST", "/v2/notifications/letter", json={"template_id": ids["t"]}), 400,
          "BadRequestError", "Service is not allowed to send letters")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=3),
    max_leaves=8)


@pytest.mark.parametrize("method,path,good", JSON_ENDPOINTS)
@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field_values=st.dictionaries(st.text(max_size=12), json_values, max_size=4))
def test_no_json_body_ever_makes_a_500(call, ids, method, path, good, field_values):
    r = call(method, path, json={**fill(good, ids), **field_values})
    assert r.status_code < 500, r.get_data(as_text=True)
    if r.status_code >= 400:
        errors(r)
