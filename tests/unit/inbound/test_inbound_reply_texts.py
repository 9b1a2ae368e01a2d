"""A tenant's own wording of the auto-replies: GET/PUT/preview /api/reply-texts, and the
wording used in the answers (inline and through notify); the same text sent once."""
from __future__ import annotations

import pytest
from inbound_support import (
    CITIZEN,
    auto_reply,
    bearer,
    events_of,
    tenant_with_key,
    twilio_form,
)

from services.inbound import autoreplies, reply_texts


@pytest.fixture
def keyed(inbound):
    return tenant_with_key(inbound)


def put(client, key, texts, **extra):
    return client.put("/api/reply-texts", headers=bearer(key), json={"texts": texts, **extra})


def test_the_platform_s_wording_is_the_default_in_both_languages(client, keyed):
    _tenant, key = keyed
    body = client.get("/api/reply-texts", headers=bearer(key)).get_json()
    assert body["customised"] == [] and body["contact_phone"] is None
    assert body["texts"]["help"] == autoreplies.TEXTS["help"]
    assert set(body["texts"]) == set(autoreplies.TEXTS)
    assert "{phone}" in body["placeholders"]["help"][1] or "phone" in body["placeholders"]["help"]


def test_the_preview_shows_encoding_welsh_letters_and_fragments_per_language(client, keyed):
    _tenant, key = keyed
    preview = client.get("/api/reply-texts", headers=bearer(key)).get_json()["preview"]
    help_cy, help_en = preview["help"]["cy"], preview["help"]["en"]
    # "â'u" in the Welsh help text: UCS-2, and the preview says which letter did it
    assert (help_cy["encoding"], help_cy["ucs2_welsh_letters"]) == ("UCS-2", ["â"])
    assert (help_en["encoding"], help_en["ucs2_characters"]) == ("GSM-7", [])
    assert help_cy["fragment_count"] == 2 and help_en["fragment_count"] == 1
    both = preview["help"]["cy+en"]
    assert both["text"] == help_cy["text"] + "\n\n" + help_en["text"]
    assert both["fragment_count"] == 3
    assert preview["question"]["en"]["text"].endswith("Reference: HYS-ABC234")


def test_a_tenant_s_own_help_text_with_its_phone_number_is_answered_inline(
        inbound, client, keyed, post_twilio):
    tenant, key = keyed
    r = put(client, key, {"help": {
        "cy": "{name}: ffoniwch {phone} am gymorth. Tecstiwch STOP i beidio.",
        "en": "{name}: call {phone} for help. Text STOP to stop."}},
        contact_phone="01437 764551")
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["customised"] == ["help"]
    answer = post_twilio(twilio_form("HELP")).get_data(as_text=True)
    assert f"<Message>{tenant.name}: call 01437 764551 for help. Text STOP to stop." in answer


def test_the_platform_help_text_names_the_council_s_phone_once_it_is_given(
        inbound, client, keyed, post_twilio):
    _tenant, key = keyed
    assert put(client, key, {}, contact_phone="01437 764551").status_code == 200
    answer = post_twilio(twilio_form("CYMORTH")).get_data(as_text=True)
    assert "Ffoniwch ni ar 01437 764551." in answer


def test_a_tenant_s_missed_wording_goes_through_notify(inbound, client, keyed, post_twilio):
    _tenant, key = keyed
    put(client, key, {"missed": {"cy": "Diolch! Bin wedi'i nodi{where}.",
                                 "en": "Thanks! Bin logged{where}."}})
    post_twilio(twilio_form("MISSED"))
    texts = auto_reply(inbound).data["personalisation"]
    assert texts["reply_en"].startswith("Thanks! Bin logged.")
    assert texts["reply_en"].endswith(f"Reference: {auto_reply(inbound).data['reference']}")


def test_leaving_an_answer_out_puts_the_platform_s_wording_back(client, keyed):
    _tenant, key = keyed
    put(client, key, {"help": {"cy": "Helo", "en": "Hello"}})
    body = put(client, key, {}).get_json()
    assert body["customised"] == [] and body["texts"]["help"] == autoreplies.TEXTS["help"]


def test_the_preview_endpoint_saves_nothing(client, keyed):
    _tenant, key = keyed
    r = client.post("/api/reply-texts/preview", headers=bearer(key), json={
        "texts": {"when_none": {"cy": "Dim casgliad ŵyr", "en": "No collection"}}})
    assert r.status_code == 200, r.get_json()
    measured = r.get_json()["preview"]["when_none"]["cy"]
    assert (measured["encoding"], measured["ucs2_welsh_letters"]) == ("UCS-2", ["ŵ"])
    assert client.get("/api/reply-texts", headers=bearer(key)).get_json()["customised"] == []


@pytest.mark.parametrize("body, field", [
    ({"texts": {"hello": {"cy": "a", "en": "b"}}}, "texts.hello"),
    ({"texts": {"help": {"cy": "Helo"}}}, "texts.help.en"),
    ({"texts": {"help": {"cy": "", "en": "Hi"}}}, "texts.help.cy"),
    ({"texts": {"help": {"cy": "a", "en": "b", "fr": "c"}}}, "texts.help.fr"),
    ({"texts": {"help": {"cy": "{code}", "en": "b"}}}, "texts.help.cy"),
    ({"texts": {"help": {"cy": "{name.__class__}", "en": "b"}}}, None),
    ({"texts": {"help": {"cy": "x" * 500, "en": "b"}}}, "texts.help.cy"),
    ({"texts": {"help": "Helo"}}, "texts.help"),
    ({"texts": {}, "contact_phone": "ffoniwch ni"}, "contact_phone"),
    ({"texts": {}, "colour": "blue"}, "colour"),
    ({}, "texts"),
])
def test_a_bad_text_is_a_400_naming_it(client, keyed, body, field):
    _tenant, key = keyed
    r = client.put("/api/reply-texts", headers=bearer(key), json=body)
    if field is None:
        # not a placeholder at all: kept as written, never evaluated
        assert r.status_code == 200
        assert r.get_json()["texts"]["help"]["cy"] == "{name.__class__}"
        return
    assert r.status_code == 400, r.get_json()
    assert field in str(r.get_json())


def test_reply_texts_are_the_tenant_s_own(inbound, client, keyed):
    _tenant, key = keyed
    put(client, key, {"help": {"cy": "Helo", "en": "Hello"}})
    _other, other_key = tenant_with_key(inbound, slug="powys", number="+447700900501")
    assert client.get("/api/reply-texts", headers=bearer(other_key)).get_json()[
        "customised"] == []


def test_an_answer_whose_welsh_and_english_are_the_same_is_sent_once(
        inbound, client, keyed, post_twilio):
    _tenant, key = keyed
    same = "Cyngor Penfro: 01437 764551"
    # the reference placed in the text itself, so no per-language reference line is added
    put(client, key, {"question": {"cy": same + " ({reference})", "en": same + " ({reference})"},
                      "help": {"cy": same, "en": same}})
    post_twilio(twilio_form("Oes bin i fatris?"))
    reply = auto_reply(inbound)
    assert reply.data["language"] == "cy", "one language asked for: notify sends it once"
    assert reply.data["personalisation"]["reply_cy"] == f"{same} ({reply.data['reference']})"
    inline = post_twilio(twilio_form("")).get_data(as_text=True)
    assert inline.count(same) == 1
    assert len(events_of(inbound, "notification.requested")) == 1


def test_the_bilingual_preview_of_an_identical_text_is_the_text_once():
    wording = autoreplies.Wording({"help": {"cy": "Ffoniwch 01437", "en": "Ffoniwch 01437"}})
    assert reply_texts.preview_texts(wording, "help")["cy+en"] == "Ffoniwch 01437"


def test_reply_texts_are_in_the_openapi_document(client):
    spec = client.get("/openapi.json").get_json()
    assert {"get", "put"} <= set(spec["paths"]["/api/reply-texts"])
    assert "post" in spec["paths"]["/api/reply-texts/preview"]


def test_a_citizen_s_number_is_never_part_of_the_wording(client, keyed):
    _tenant, key = keyed
    assert CITIZEN not in str(client.get("/api/reply-texts", headers=bearer(key)).get_json())
