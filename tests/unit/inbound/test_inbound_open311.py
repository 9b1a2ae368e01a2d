"""Open311 GeoReport v2 at /open311/v2/: read by the `georeport` client from PyPI, and checked
against the standard's own rules (formats, errors, windows, api_key)."""
from __future__ import annotations

import datetime as dt
import threading
import xml.etree.ElementTree as ET

import pytest
import requests
from georeport import GeoReport
from inbound_support import CITIZEN, key_record, seed_tenant, tenant_with_key, twilio_form
from werkzeug.serving import make_server

from services.inbound import open311
from services.inbound.open311_format import Open311Error


@pytest.fixture
def council(inbound):
    return tenant_with_key(inbound)


@pytest.fixture
def root(inbound):
    """The inbound app served on a free port, as the georeport client needs a real server."""
    server = make_server("127.0.0.1", 0, inbound.create_app(), threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/open311/v2"
    server.shutdown()
    server.server_close()


def post_request(root: str, api_key: str, ext: str = "json", **fields):
    form = {"api_key": api_key, "jurisdiction_id": "penfro", "service_code": "missed_collection",
            "address_string": "1 Stryd Fawr, Hwlffordd", "attribute[bin_type]": "recycling",
            **fields}
    return requests.post(f"{root}/requests.{ext}", data=form, timeout=5)


# -- the georeport client, unchanged but for its root address ---------------------

def test_the_georeport_client_lists_the_services_in_json_and_xml(council, root):
    for output in ("json", "xml"):
        client = GeoReport(root, jurisdiction="penfro", output_format=output)
        services = client.get_service_list()
        codes = {s["service_code"] for s in services}
        assert codes == {"missed_collection", "question"}
        missed = next(s for s in services if s["service_code"] == "missed_collection")
        assert missed["service_name"] == "Casgliad wedi'i fethu / Missed collection"
        assert missed["type"] == "realtime"
        assert missed["metadata"] in (True, "true")


def test_the_georeport_client_reads_a_service_definition(council, root):
    definition = GeoReport(root, jurisdiction="penfro").get_service_definition("missed_collection")
    assert definition["service_code"] == "missed_collection"
    codes = [a["code"] for a in definition["attributes"]]
    assert codes == ["uprn", "bin_type"]
    bin_type = definition["attributes"][1]
    assert bin_type["datatype"] == "singlevaluelist"
    assert {"key": "recycling", "name": "Ailgylchu / Recycling"} in bin_type["values"]
    xml = GeoReport(root, jurisdiction="penfro", output_format="xml"
                    ).get_service_definition("missed_collection")
    assert [a["code"] for a in xml["attributes"]["attribute"]] == ["uprn", "bin_type"]


def test_a_request_posted_by_form_is_read_back_by_the_georeport_client(council, root):
    tenant, api_key = council
    created = post_request(root, api_key, description="Heb ei gasglu ers dydd Llun")
    assert created.status_code == 201, created.text
    [answer] = created.json()
    reference = answer["service_request_id"]
    assert reference.startswith("HYS-") and "token" not in answer

    client = GeoReport(root, jurisdiction="penfro")
    listed = client.get_service_requests()
    assert [r["service_request_id"] for r in listed] == [reference]
    one = client.get_service_request(reference)
    assert (one["status"], one["service_code"]) == ("open", "missed_collection")
    assert one["requested_datetime"].endswith("Z")
    xml = GeoReport(root, jurisdiction="penfro", output_format="xml").get_service_request(
        reference)
    assert xml["service_request_id"] == reference
    assert client.get_service_requests(service_request_id=reference)[0]["status"] == "open"
    assert client.get_service_requests(status="closed") == []


def test_without_the_api_key_a_request_shows_no_citizen_s_words_or_address(council, root,
                                                                         inbound, post_twilio):
    _, api_key = council
    post_twilio(twilio_form("My name is Dai Jones, 3 Heol y Dderwen", from_=CITIZEN))
    public = requests.get(f"{root}/requests.json", params={"jurisdiction_id": "penfro"}).json()
    assert public[0]["description"] is None and public[0]["address"] is None
    private = requests.get(f"{root}/requests.json", params={
        "jurisdiction_id": "penfro", "api_key": api_key}).json()
    assert private[0]["description"] == "My name is Dai Jones, 3 Heol y Dderwen"
    assert "phone" not in private[0], "a phone number is never in the Open311 view"


def test_the_xml_is_utf8_with_the_declaration_and_no_namespace(council, root):
    resp = requests.get(f"{root}/services.xml", params={"jurisdiction_id": "penfro"})
    assert resp.headers["Content-Type"] == "text/xml; charset=utf-8"
    assert resp.content.startswith(b'<?xml version="1.0" encoding="utf-8"?>')
    document = ET.fromstring(resp.content)
    assert document.tag == "services"
    assert [c.tag for c in document] == ["service", "service"]
    assert document.find("service/metadata").text == "true"
    assert "Casgliad wedi'i fethu" in resp.content.decode("utf-8")


def test_json_answers_are_top_level_arrays(council, root):
    for path in ("services.json", "requests.json"):
        resp = requests.get(f"{root}/{path}", params={"jurisdiction_id": "penfro"})
        assert resp.headers["Content-Type"] == "application/json; charset=utf-8"
        assert isinstance(resp.json(), list)


def test_a_token_finds_its_request(council, root, inbound):
    _, api_key = council
    reference = post_request(root, api_key).json()[0]["service_request_id"]
    with inbound.runtime.db.read() as session:
        from services.inbound.service_requests import by_references

        token = by_references(session, council[0].id, [reference])[0].token
    for ext in ("json", "xml"):
        resp = requests.get(f"{root}/tokens/{token}.{ext}", params={"jurisdiction_id": "penfro"})
        assert resp.status_code == 200
    assert resp_json(root, f"tokens/{token}.json") == [{"service_request_id": reference,
                                                       "token": token}]


def resp_json(root: str, path: str, **params):
    return requests.get(f"{root}/{path}", params={"jurisdiction_id": "penfro", **params}).json()


# -- errors as the standard reports them ----------------------------------------------

@pytest.mark.parametrize("path, params, status, words", [
    ("services.json", {}, 400, "jurisdiction_id was not provided"),
    ("services.json", {"jurisdiction_id": "nowhere"}, 404, "'nowhere' was not found"),
    ("services/potholes.json", {"jurisdiction_id": "penfro"}, 404, "service_code"),
    ("requests/HYS-ZZZZZZ.json", {"jurisdiction_id": "penfro"}, 404, "service_request_id"),
    ("tokens/nope.json", {"jurisdiction_id": "penfro"}, 404, "token"),
    ("requests.json", {"jurisdiction_id": "penfro", "status": "pending"}, 400, "status"),
    ("requests.json", {"jurisdiction_id": "penfro", "start_date": "2026-01-01"}, 400,
     "time zone"),
    ("requests.json", {"jurisdiction_id": "penfro", "start_date": "yesterday"}, 400,
     "W3C datetime"),
    ("requests.json", {"jurisdiction_id": "penfro", "start_date": "2026-01-01T00:00:00Z",
                       "end_date": "2026-06-01T00:00:00Z"}, 400, "90 days"),
    ("services.csv", {"jurisdiction_id": "penfro"}, 400, "format"),
])
def test_errors_are_code_and_description_with_the_standard_s_status(
        council, root, path, params, status, words):
    resp = requests.get(f"{root}/{path}", params=params)
    assert resp.status_code == status
    [error] = resp.json()
    assert error["code"] == status and words in error["description"]


def test_errors_in_xml_are_errors_of_error(council, root):
    resp = requests.get(f"{root}/services/potholes.xml", params={"jurisdiction_id": "penfro"})
    document = ET.fromstring(resp.content)
    assert (resp.status_code, document.tag) == (404, "errors")
    assert document.find("error/code").text == "404"


@pytest.mark.parametrize("api_key", ["", "not-a-key", None])
def test_a_post_without_a_valid_api_key_is_a_403(council, root, inbound, api_key):
    form = {"jurisdiction_id": "penfro", "service_code": "question", "address_id": "1"}
    if api_key is not None:
        form["api_key"] = api_key
    resp = requests.post(f"{root}/requests.json", data=form)
    assert resp.status_code == 403
    assert "api_key" in resp.json()[0]["description"]


def test_another_tenant_s_key_cannot_post_to_this_jurisdiction(council, root, inbound):
    _, other_key = tenant_with_key(inbound, slug="powys", number="+447700900501")
    resp = post_request(root, other_key)
    assert resp.status_code == 403


def test_a_revoked_key_is_refused(root, inbound):
    import uuid

    secret = str(uuid.uuid4())
    tenant = seed_tenant(inbound, api_keys=[key_record(inbound, secret, revoked=True)])
    resp = post_request(root, f"penfro_live-{tenant.id}-{secret}")
    assert resp.status_code == 403


@pytest.mark.parametrize("fields, words", [
    ({"service_code": ""}, "service_code was not provided"),
    ({"address_string": "", "lat": "51.8"}, "lat and long must both be sent"),
    ({"address_string": ""}, "a location is required"),
    ({"lat": "north", "long": "-4.9"}, "must be numbers"),
    ({"lat": "95", "long": "-4.9"}, "within ±90"),
    ({"attribute[bin_type]": "compost"}, "is not one of"),
    ({"attribute[colour]": "blue"}, "attribute[colour] is not an attribute"),
    ({"email": "not-an-email"}, "email"),
    ({"phone": "12"}, "phone"),
    ({"description": "x" * 4001}, "4000"),
    ({"media_url": "javascript:alert(1)"}, "media_url"),
])
def test_a_post_with_a_bad_field_is_a_400_naming_it(council, root, fields, words):
    resp = post_request(root, council[1], **fields)
    assert resp.status_code == 400, resp.text
    assert words in resp.json()[0]["description"]


def test_an_unknown_service_code_in_a_post_is_a_404(council, root):
    assert post_request(root, council[1], service_code="potholes").status_code == 404


def test_a_post_answers_in_xml_too(council, root):
    resp = post_request(root, council[1], ext="xml", lat="51.80", long="-4.97",
                        address_string="")
    assert resp.status_code == 201
    document = ET.fromstring(resp.content)
    assert document.find("request/service_request_id").text.startswith("HYS-")


def test_a_json_body_is_refused_because_the_standard_posts_forms(council, root):
    resp = requests.post(f"{root}/requests.json?jurisdiction_id=penfro",
                         json={"api_key": council[1], "service_code": "question"})
    assert resp.status_code in (400, 403)


def test_the_uprn_attribute_becomes_the_address_id(council, root):
    _, api_key = council
    reference = post_request(root, api_key, **{"attribute[uprn]": "100100012345"}
                             ).json()[0]["service_request_id"]
    [row] = resp_json(root, "requests.json", api_key=api_key, service_request_id=reference)
    assert row["address_id"] == "100100012345"


# -- the 90-day window (pure) -------------------------------------------------------------

NOW = dt.datetime(2026, 11, 25, tzinfo=dt.UTC)


def test_the_default_window_is_the_most_recent_90_days():
    assert open311.window(None, None, NOW) == (NOW - dt.timedelta(days=90), NOW)


def test_a_start_alone_opens_a_90_day_window_from_it():
    start = NOW - dt.timedelta(days=200)
    assert open311.window(start, None, NOW) == (start, start + dt.timedelta(days=90))


def test_an_end_before_the_start_is_refused():
    with pytest.raises(Open311Error):
        open311.window(NOW, NOW - dt.timedelta(days=1), NOW)


def test_requests_outside_the_window_are_not_listed(council, root, inbound):
    _, api_key = council
    post_request(root, api_key)
    old = resp_json(root, "requests.json", end_date="2020-01-01T00:00:00Z")
    assert old == []
    recent = resp_json(root, "requests.json",
                       start_date=(dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).isoformat())
    assert len(recent) == 1


def test_the_service_discovery_document_names_the_endpoint_and_its_formats(root):
    discovery_url = root.removesuffix("/v2") + "/discovery"
    body = requests.get(discovery_url + ".json").json()
    [endpoint] = body["endpoints"]
    assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
    assert endpoint["url"].endswith("/open311/v2")
    assert endpoint["formats"] == ["text/xml", "application/json"]
    document = ET.fromstring(requests.get(discovery_url + ".xml").content)
    assert [f.text for f in document.findall("endpoints/endpoint/formats/format")] == [
        "text/xml", "application/json"]
