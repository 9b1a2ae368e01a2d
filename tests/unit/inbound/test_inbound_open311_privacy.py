"""Open311's public reads (no api_key) carry no personal data and no staff answers: only the
fields GeoReport v2 defines that say what a request is and where it stands; a public
status_notes only when the team sets one as public; the full record only with the key."""
from __future__ import annotations

import threading

import pytest
import requests
from inbound_support import CITIZEN, bearer, tenant_with_key, twilio_form
from werkzeug.serving import make_server

from services.inbound.open311_format import PUBLIC_FIELDS

STAFF_ANSWER = "Mrs Jones, we will call you on 07700 900123 about the bin at 4 Heol y Bont"
WORDS = "Mae fy min gwyrdd wedi torri, Ceri Jones"


@pytest.fixture
def council(inbound):
    return tenant_with_key(inbound)


@pytest.fixture
def root(inbound):
    server = make_server("127.0.0.1", 0, inbound.create_app(), threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/open311/v2"
    server.shutdown()
    server.server_close()


@pytest.fixture
def answered(council, client, post_twilio, scheduler):
    """A citizen's missed bin (their address from the scheduler) the team answered."""
    scheduler.subscribers[CITIZEN] = {"address": "4 Heol y Bont, Hwlffordd", "uprn": "100100",
                                      "postcode": "SA61 1AA", "lat": 51.8, "long": -4.97}
    post_twilio(twilio_form("MISSED " + WORDS))
    auth = bearer(council[1])
    reference = client.get("/api/service-requests", headers=auth).get_json()[
        "service_requests"][0]["reference"]
    resp = client.patch(f"/api/service-requests/{reference}", headers=auth,
                        json={"status": "closed", "status_notes": STAFF_ANSWER})
    assert resp.status_code == 200
    return reference


def public_reads(root: str, reference: str, token: str) -> dict[str, str]:
    q = {"jurisdiction_id": "penfro"}
    out = {}
    for path in ("requests.json", "requests.xml", f"requests/{reference}.json",
                 f"requests/{reference}.xml", f"tokens/{token}.json", f"tokens/{token}.xml"):
        resp = requests.get(f"{root}/{path}", params=q, timeout=5)
        assert resp.status_code == 200, (path, resp.text)
        out[path] = resp.text
    return out


def token_of(inbound, tenant_id: str, reference: str) -> str:
    from services.inbound.service_requests import by_references

    with inbound.runtime.db.read() as session:
        return by_references(session, tenant_id, [reference])[0].token


def test_a_staff_answer_and_the_citizen_s_details_never_appear_in_a_public_read(
        council, root, inbound, answered):
    token = token_of(inbound, council[0].id, answered)
    for path, text in public_reads(root, answered, token).items():
        for personal in ("Mrs Jones", "07700", "Heol y Bont", "Ceri", "min gwyrdd", "SA61",
                         "100100", "51.8", CITIZEN, CITIZEN[1:]):
            assert personal not in text, f"{personal!r} in the public {path}"


def test_a_public_read_has_only_the_public_fields_filled(council, root, answered):
    [public] = requests.get(f"{root}/requests/{answered}.json",
                            params={"jurisdiction_id": "penfro"}, timeout=5).json()
    filled = {k for k, v in public.items() if v is not None}
    assert filled <= set(PUBLIC_FIELDS)
    assert (public["status"], public["service_code"], public["status_notes"]) == (
        "closed", "missed_collection", None)


def test_the_tenant_s_key_reads_the_full_record(council, root, answered):
    [full] = requests.get(f"{root}/requests/{answered}.json", params={
        "jurisdiction_id": "penfro", "api_key": council[1]}, timeout=5).json()
    assert full["status_notes"] == STAFF_ANSWER
    assert full["description"] == "MISSED " + WORDS
    assert (full["address"], full["zipcode"], full["lat"]) == ("4 Heol y Bont, Hwlffordd",
                                                               "SA61 1AA", 51.8)


def test_public_status_notes_are_set_explicitly_as_public(council, client, root, answered):
    resp = client.patch(f"/api/service-requests/{answered}", headers=bearer(council[1]),
                        json={"public_status_notes": "Casglwyd / Collected",
                              "notify_citizen": False})
    assert resp.status_code == 200
    assert resp.get_json()["public_status_notes"] == "Casglwyd / Collected"
    xml = requests.get(f"{root}/requests.xml", params={"jurisdiction_id": "penfro"},
                       timeout=5).text
    assert "<status_notes>Casglwyd / Collected</status_notes>" in xml
    assert "Mrs Jones" not in xml
