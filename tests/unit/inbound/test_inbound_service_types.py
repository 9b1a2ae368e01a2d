"""A tenant's own service types (PUT/GET /api/service-types): validated field by field, listed by
Open311, and routing citizens' texts by their keywords."""
from __future__ import annotations

import threading

import pytest
import requests
from georeport import GeoReport
from inbound_support import auto_reply, bearer, events_of, tenant_with_key, twilio_form
from werkzeug.serving import make_server

from services.inbound import catalogue, keywords

FLY_TIPPING = {
    "code": "fly_tipping", "group": "street",
    "name": {"cy": "Tipio anghyfreithlon", "en": "Fly-tipping"},
    "description": {"cy": "Sbwriel wedi'i adael yn anghyfreithlon.",
                    "en": "Rubbish dumped illegally."},
    "keywords": {"cy": ["TIPIO ANGHYFREITHLON", "tipio"], "en": ["FLY TIPPING", "fly-tip"]},
    "attributes": [{"code": "size", "datatype": "singlevaluelist", "description":
                    "Faint? / How much?", "values": [{"key": "bag", "name": "Bag"},
                                                     {"key": "van", "name": "Llond fan / Van"}]}],
}


def defaults() -> list[dict]:
    return [catalogue.DEFAULTS[c].as_json() for c in catalogue.DEFAULTS]


@pytest.fixture
def council(inbound):
    return tenant_with_key(inbound)


@pytest.fixture
def auth(council):
    return bearer(council[1])


def put(client, auth, types):
    return client.put("/api/service-types", headers=auth, json={"service_types": types})


def test_a_tenant_starts_with_the_platform_s_two_types(client, auth):
    body = client.get("/api/service-types", headers=auth).get_json()
    assert body["customised"] is False
    assert [t["code"] for t in body["service_types"]] == ["missed_collection", "question"]
    missed = body["service_types"][0]
    assert missed["name"] == {"cy": "Casgliad wedi'i fethu", "en": "Missed collection"}
    assert missed["metadata"] is True and [a["code"] for a in missed["attributes"]] == [
        "uprn", "bin_type"]


def test_a_tenant_s_own_type_is_kept_listed_by_open311_and_routes_texts(
        client, auth, inbound, post_twilio):
    resp = put(client, auth, [*defaults(), FLY_TIPPING])
    assert resp.status_code == 200, resp.get_json()
    body = client.get("/api/service-types", headers=auth).get_json()
    assert body["customised"] is True
    fly = body["service_types"][2]
    assert fly["keywords"] == {"cy": ["TIPIO ANGHYFREITHLON", "TIPIO"],
                               "en": ["FLY TIPPING", "FLY-TIP"]}
    assert fly["metadata"] is True and fly["attributes"][0]["order"] == 1

    post_twilio(twilio_form("Fly tipping behind the chapel on Heol y Bont"))
    [created] = events_of(inbound, "service_request.created")
    assert created.data["service_code"] == "fly_tipping"
    texts = auto_reply(inbound).data["personalisation"]
    assert "(Tipio anghyfreithlon)" in texts["reply_cy"] and "(Fly-tipping)" in texts["reply_en"]
    assert created.data["reference"] in texts["reply_en"]
    reply = client.get("/api/conversations", headers=auth).get_json()["conversations"][0]
    assert reply["last_message"]["kind"] == "auto_reply"


def test_open311_lists_and_defines_the_tenant_s_own_types(client, auth, inbound):
    put(client, auth, [*defaults(), FLY_TIPPING])
    server = make_server("127.0.0.1", 0, inbound.create_app(), threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        root = f"http://127.0.0.1:{server.server_port}/open311/v2"
        geo = GeoReport(root, jurisdiction="penfro")
        listed = {s["service_code"]: s for s in geo.get_service_list()}
        assert set(listed) == {"missed_collection", "question", "fly_tipping"}
        assert listed["fly_tipping"]["service_name"] == "Tipio anghyfreithlon / Fly-tipping"
        assert listed["fly_tipping"]["group"] == "street"
        assert "FLY TIPPING" in listed["fly_tipping"]["keywords"]
        assert "COLLI" in listed["missed_collection"]["keywords"], "the MISSED words in force"
        definition = geo.get_service_definition("fly_tipping")
        assert [v["key"] for v in definition["attributes"][0]["values"]] == ["bag", "van"]
        resp = requests.get(f"{root}/services/pothole.json",
                            params={"jurisdiction_id": "penfro"}, timeout=5)
        assert resp.status_code == 404
    finally:
        server.shutdown()
        server.server_close()


def test_a_text_nothing_names_is_still_a_question(client, auth, inbound, post_twilio):
    put(client, auth, [*defaults(), FLY_TIPPING])
    post_twilio(twilio_form("Is there tipping at the tip on Sunday?"))
    [created] = events_of(inbound, "service_request.created")
    assert created.data["service_code"] == "question"


def test_the_reply_keywords_are_read_before_a_type_s(client, auth, inbound, post_twilio):
    """MISSED stays a missed collection, whatever types the tenant has."""
    put(client, auth, [*defaults(), FLY_TIPPING])
    post_twilio(twilio_form("MISSED"))
    [created] = events_of(inbound, "service_request.created")
    assert created.data["service_code"] == "missed_collection"


def test_a_health_board_with_missed_off_may_drop_missed_collection(client, auth, inbound,
                                                                   post_twilio):
    question = catalogue.DEFAULTS["question"].as_json()
    clinic = {"code": "clinic_question", "name": {"cy": "Cwestiwn clinig",
                                                   "en": "Clinic question"},
              "keywords": {"cy": ["CLINIG"], "en": ["CLINIC"]}}
    resp = put(client, auth, [question, clinic])
    assert resp.status_code == 400
    assert "missed_collection" in resp.get_json()["errors"][0]["message"]
    client.put("/api/keywords", headers=auth, json={"keywords": {"missed": {"cy": [],
                                                                            "en": []}}})
    assert put(client, auth, [question, clinic]).status_code == 200
    post_twilio(twilio_form("Clinic: can I park at the hospital?"))
    [created] = events_of(inbound, "service_request.created")
    assert created.data["service_code"] == "clinic_question"


def _with(**changes) -> dict:
    return {**FLY_TIPPING, **changes}


@pytest.mark.parametrize("types, words", [
    ([FLY_TIPPING], "service_types must include question"),
    ([*defaults(), FLY_TIPPING, FLY_TIPPING], "service_types[3].code 'fly_tipping' appears twice"),
    ([*defaults(), FLY_TIPPING, _with(code="dumping", keywords={"en": ["fly tipping"]})],
     "service_types[3].keywords.en[0] FLY TIPPING is already a keyword of fly_tipping"),
    ([*defaults(), _with(keywords={"en": ["when"]})],
     "service_types[2].keywords.en[0] WHEN is already the when reply keyword"),
    ([*defaults(), _with(keywords={"en": ["STOP"]})], "keywords.en[0] STOP is an opt-out"),
    ([*defaults(), _with(keywords={"cy": ["42"]})], "service_types[2].keywords.cy[0]"),
    ([*defaults(), _with(metadata=False)], "service_types[2].metadata must be true"),
    ([*defaults(), _with(code="Fly Tipping")], "code"),
    ([*defaults(), _with(name={"cy": "Tipio"})], "en"),
    ([*defaults(), _with(colour="red")], "colour"),
    ([*defaults(), _with(attributes=[{"code": "size", "datatype": "singlevaluelist",
                                      "description": "How much?"}])],
     "service_types[2].attributes[0].values are required"),
    ([*defaults(), _with(attributes=[{"code": "size", "datatype": "colour",
                                      "description": "How much?"}])], "datatype"),
    ([], "service_types"),
])
def test_bad_service_types_are_a_400_naming_the_field(client, auth, types, words):
    resp = put(client, auth, types)
    assert resp.status_code == 400, resp.get_json()
    assert words in resp.get_json()["errors"][0]["message"]
    assert client.get("/api/service-types", headers=auth).get_json()["customised"] is False


def test_a_reply_keyword_that_would_hide_a_type_s_is_a_400(client, auth):
    put(client, auth, [*defaults(), FLY_TIPPING])
    resp = client.put("/api/keywords", headers=auth, json={"keywords": {
        "when": {"cy": ["PRYD"], "en": ["WHEN", "FLY TIPPING"]}}})
    assert resp.status_code == 400
    assert "fly_tipping" in resp.get_json()["errors"][0]["message"]


def test_service_types_are_the_tenant_s_own(client, auth, inbound):
    put(client, auth, [*defaults(), FLY_TIPPING])
    _, other_key = tenant_with_key(inbound, slug="powys", number="+447700900501")
    other = client.get("/api/service-types", headers=bearer(other_key)).get_json()
    assert [t["code"] for t in other["service_types"]] == ["missed_collection", "question"]


def test_route_reads_the_longest_phrase_at_the_start_only():
    types = {t.code: t for t in catalogue.validate([*defaults(), FLY_TIPPING],
                                                   keywords.DEFAULT_VOCABULARY)}
    assert catalogue.route("Tipio anghyfreithlon ger y capel", types).code == "fly_tipping"
    assert catalogue.route("fly-tip!", types).code == "fly_tipping"
    assert catalogue.route("There is fly tipping here", types) is None
    assert catalogue.route("", types) is None
