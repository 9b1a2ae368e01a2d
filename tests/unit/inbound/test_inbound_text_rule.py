"""The platform's one rule for text (shared.schemas) on inbound's two kinds of input: the
tenant's API refuses a NUL or an unknown field with a 400 naming it; a citizen's words from
a provider's webhook lose their control characters and are kept, never refused."""
from __future__ import annotations

import uuid

import sqlalchemy as sa
from inbound_support import CITIZEN, INBOUND_NUMBER, NOTIFY_TOKEN, bearer, tenant_with_key

from services.inbound import catalogue
from services.inbound.models import InboundMessage

NUL_REFUSED = "must not contain NUL (\\u0000) characters"
TYPE = {"code": "fly_tipping", "name": {"cy": "Tipio anghyfreithlon", "en": "Fly-tipping"}}


def put_types(client, auth, *extra: dict):
    types = [catalogue.DEFAULTS[c].as_json() for c in catalogue.DEFAULTS]
    return client.put("/api/service-types", headers=auth, json={"service_types": [*types, *extra]})


def messages(resp) -> list[str]:
    body = resp.get_json()
    assert body["status_code"] == resp.status_code == 400, body
    return [e["message"] for e in body["errors"]]


def test_a_nul_in_the_tenant_s_api_text_is_a_400_naming_the_field(inbound, client):
    auth = bearer(tenant_with_key(inbound)[1])
    bad = {**TYPE, "name": {"cy": "Tipio\x00", "en": "Fly-tipping"}}
    assert messages(put_types(client, auth, bad)) == [f"service_types.2.name.cy {NUL_REFUSED}"]
    assert client.get("/api/service-types", headers=auth).get_json()["customised"] is False


def test_an_unknown_field_in_the_tenant_s_api_is_a_400_naming_it(inbound, client):
    auth = bearer(tenant_with_key(inbound)[1])
    assert messages(put_types(client, auth, {**TYPE, "colour": "red"})) == [
        "Additional properties are not allowed (service_types.2.colour was unexpected)"]


def test_a_citizen_s_text_through_notify_loses_control_characters_and_is_kept(
        inbound, tenant, client):
    resp = client.post("/webhooks/notify/inbound", headers={"Authorization": f"Bearer {NOTIFY_TOKEN}"},
                       json={"id": str(uuid.uuid4()), "source_number": CITIZEN.lstrip("+"),
                             "destination_number": INBOUND_NUMBER.lstrip("+"),
                             "message": "bin\x00 glas\x07\nheddiw", "provider_field": 1})
    assert resp.status_code == 204
    with inbound.runtime.db.read() as session:
        assert session.scalars(sa.select(InboundMessage.body)).all() == ["bin glas\nheddiw"]
