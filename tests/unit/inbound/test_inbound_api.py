"""The tenant's own API on inbound: keywords, service requests and citizens' languages."""
from __future__ import annotations

import pytest
from inbound_support import (
    CITIZEN,
    bearer,
    events_of,
    start,
    tenant_with_key,
    twilio_form,
)


@pytest.fixture
def council(inbound):
    return tenant_with_key(inbound)


@pytest.fixture
def auth(council):
    return bearer(council[1])


# -- keywords ---------------------------------------------------------------------

def test_the_keywords_in_force_are_the_defaults_until_a_tenant_sets_its_own(client, auth):
    body = client.get("/api/keywords", headers=auth).get_json()
    assert body["customised"] == []
    assert "COLLI" in body["keywords"]["missed"]["cy"]
    assert "PRYD" in body["keywords"]["when"]["cy"]
    assert "STOP" in body["fixed"]["stop"]["en"] and "STOPIO" in body["fixed"]["stop"]["cy"]


def test_a_tenant_s_own_word_is_understood_in_the_next_reply(client, auth, post_twilio,
                                                             inbound):
    resp = client.put("/api/keywords", headers=auth, json={"keywords": {
        "missed": {"cy": ["Sbwriel ar ôl"], "en": ["left behind"]}}})
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["keywords"]["missed"]["cy"] == ["SBWRIEL AR ÔL"]
    assert resp.get_json()["customised"] == ["missed"]

    post_twilio(twilio_form("sbwriel ar ôl"))
    [created] = events_of(inbound, "service_request.created")
    assert created.data["service_code"] == "missed_collection"


def test_a_change_made_by_another_process_is_in_force_at_this_one_s_next_reply(
        settings, scheduler, inbound, auth, post_twilio):
    """Each process keeps a tenant's keywords between replies (reply_config.py), checked
    by one query a reply: a PUT served by another process is read at this one's next
    reply, and an unchanged configuration is not read again."""
    configs = inbound.replies.configs.cache
    post_twilio(twilio_form("left behind"))
    post_twilio(twilio_form("left behind"))
    assert (configs.misses, configs.hits) == (1, 1)

    other = start(settings, scheduler)
    try:
        resp = other.create_app().test_client().put("/api/keywords", headers=auth, json={
            "keywords": {"missed": {"cy": ["sbwriel ar ôl"], "en": ["left behind"]}}})
        assert resp.status_code == 200, resp.get_json()
    finally:
        other.runtime.db.dispose()

    post_twilio(twilio_form("left behind"))
    assert [e.data["service_code"] for e in events_of(inbound, "service_request.created")] == [
        "question", "question", "missed_collection"]
    assert (configs.misses, configs.hits) == (2, 1)


def test_a_health_board_can_switch_missed_off(client, auth, post_twilio, inbound):
    client.put("/api/keywords", headers=auth, json={"keywords": {"missed": {"cy": [], "en": []}}})
    post_twilio(twilio_form("MISSED"))
    [created] = events_of(inbound, "service_request.created")
    assert created.data["service_code"] == "question"


@pytest.mark.parametrize("keywords, words", [
    ({"stop": {"en": ["HALT"]}}, "keywords.stop cannot be redefined"),
    ({"start": {"en": ["GO"]}}, "keywords.start cannot be redefined"),
    ({"missed": {"en": ["STOP"]}}, "STOP is an opt-out or opt-in word"),
    ({"when": {"cy": ["dechrau"]}}, "DECHRAU is an opt-out or opt-in word"),
    ({"missed": {"en": ["PRYD"]}}, "PRYD is already a when keyword"),
    ({"confirm": {"en": ["3"]}}, "must contain a letter"),
    ({"potholes": {"en": ["HOLE"]}}, "keywords.potholes is not a keyword"),
    ({"missed": {"en": ["!!!"]}}, "keywords.missed.en[0] must be"),
])
def test_bad_keywords_are_a_400_naming_the_word(client, auth, keywords, words):
    resp = client.put("/api/keywords", headers=auth, json={"keywords": keywords})
    assert resp.status_code == 400
    assert words in resp.get_json()["errors"][0]["message"]


def test_an_unknown_field_in_the_keywords_is_a_400(client, auth):
    resp = client.put("/api/keywords", headers=auth,
                      json={"keywords": {"missed": {"fr": ["RATÉ"]}}})
    assert resp.status_code == 400
    assert "fr" in resp.get_json()["errors"][0]["message"]


def test_keywords_need_the_tenant_s_token(client):
    assert client.get("/api/keywords").status_code == 401


def test_a_key_without_the_inbound_scope_is_refused(inbound, client):
    _, key = tenant_with_key(inbound, slug="powys", number="+447700900501", scopes=["send"])
    resp = client.get("/api/keywords", headers=bearer(key))
    assert resp.status_code == 403


# -- service requests ------------------------------------------------------------------

def make_request(post_twilio, body: str = "Mae'r bin gwyrdd wedi torri") -> None:
    post_twilio(twilio_form(body))


def test_a_tenant_lists_and_reads_its_requests_with_their_history(client, auth, post_twilio):
    make_request(post_twilio)
    [listed] = client.get("/api/service-requests", headers=auth).get_json()["service_requests"]
    assert (listed["service_code"], listed["phone"], listed["status"]) == (
        "question", CITIZEN, "open")
    one = client.get(f"/api/service-requests/{listed['reference']}", headers=auth).get_json()
    assert [h["status"] for h in one["history"]] == ["open"]
    assert one["history"][0]["changed_by"] == "citizen"


def test_closing_a_request_is_an_event_and_texts_the_citizen(client, auth, post_twilio, inbound):
    make_request(post_twilio)
    reference = client.get("/api/service-requests", headers=auth).get_json()[
        "service_requests"][0]["reference"]
    resp = client.patch(f"/api/service-requests/{reference}", headers=auth, json={
        "status": "closed", "status_notes": "bin newydd ar y ffordd / new bin on its way"})

    assert resp.status_code == 200, resp.get_json()
    assert [h["status"] for h in resp.get_json()["history"]] == ["open", "closed"]
    [updated] = events_of(inbound, "service_request.updated")
    assert (updated.data["reference"], updated.data["status"]) == (reference, "closed")
    texts = events_of(inbound, "notification.requested")[-1].data["personalisation"]
    assert texts["reply_en"] == (f"Cyngor Penfro: your report {reference} has been closed: "
                                 "bin newydd ar y ffordd / new bin on its way")
    assert texts["reply_cy"].startswith(f"Cyngor Penfro: mae eich adroddiad {reference} "
                                        "wedi'i gau: ")


def test_the_same_change_twice_is_one_change(client, auth, post_twilio, inbound):
    make_request(post_twilio)
    reference = client.get("/api/service-requests", headers=auth).get_json()[
        "service_requests"][0]["reference"]
    for _ in range(2):
        client.patch(f"/api/service-requests/{reference}", headers=auth,
                     json={"status": "closed"})
    assert len(events_of(inbound, "service_request.updated")) == 1


def test_a_change_can_be_made_without_texting_the_citizen(client, auth, post_twilio, inbound):
    make_request(post_twilio)
    reference = client.get("/api/service-requests", headers=auth).get_json()[
        "service_requests"][0]["reference"]
    client.patch(f"/api/service-requests/{reference}", headers=auth,
                 json={"status_notes": "with the crew", "notify_citizen": False})
    assert len(events_of(inbound, "notification.requested")) == 1, "only the first auto-reply"


def test_another_tenant_s_request_is_a_404(client, inbound, post_twilio, council):
    make_request(post_twilio)
    _, other_key = tenant_with_key(inbound, slug="powys", number="+447700900501")
    reference = client.get("/api/service-requests", headers=bearer(council[1])).get_json()[
        "service_requests"][0]["reference"]
    for method in ("get", "patch"):
        resp = getattr(client, method)(f"/api/service-requests/{reference}",
                                       headers=bearer(other_key), json={"status": "closed"})
        assert resp.status_code == 404
    assert client.get("/api/service-requests", headers=bearer(other_key)).get_json()[
        "service_requests"] == []


@pytest.mark.parametrize("body, words", [
    ({"status": "pending"}, "status"), ({"colour": "red"}, "colour"),
    ({"status_notes": "x" * 1001}, "status_notes"),
])
def test_a_bad_change_is_a_400_naming_the_field(client, auth, post_twilio, body, words):
    make_request(post_twilio)
    reference = client.get("/api/service-requests", headers=auth).get_json()[
        "service_requests"][0]["reference"]
    resp = client.patch(f"/api/service-requests/{reference}", headers=auth, json=body)
    assert resp.status_code == 400
    assert words in resp.get_json()["errors"][0]["message"]


def test_requests_are_paged_newest_first(client, auth, post_twilio):
    for n in range(3):
        make_request(post_twilio, f"cwestiwn {n}")
    page = client.get("/api/service-requests?page_size=2", headers=auth).get_json()
    assert [r["description"] for r in page["service_requests"]] == ["cwestiwn 2", "cwestiwn 1"]
    rest = client.get(page["links"]["next"], headers=auth).get_json()
    assert [r["description"] for r in rest["service_requests"]] == ["cwestiwn 0"]


# -- languages --------------------------------------------------------------------------------

def test_a_language_chosen_by_text_is_visible_to_the_tenant(client, auth, post_twilio):
    post_twilio(twilio_form("SAESNEG"))
    body = client.get("/api/language-preferences?phone=07700%20900123", headers=auth).get_json()
    assert [(p["phone"], p["language"]) for p in body["language_preferences"]] == [
        (CITIZEN, "en")]
