"""Templates: placeholders (hypothesis), versions a sent notification keeps, previews per language."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from notify_api_support import EMAIL_TEMPLATE, errors

from services.notify.templates import MissingPersonalisation, placeholder_key, render

name_words = st.lists(st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=6),
                      min_size=1, max_size=3)
# personalisation values: any text without the brackets that would make a placeholder
values = st.text(alphabet=st.characters(blacklist_characters="()", blacklist_categories=("Cs",)),
                 max_size=30)


def spelt(words: list[str], how: str, upper: bool) -> str:
    text = how.join(words)
    return text.upper() if upper else text


@given(name_words, st.sampled_from([" ", "_", "-", ""]), st.sampled_from([" ", "_", "-", ""]),
       st.booleans(), st.booleans(), values)
def test_a_placeholder_matches_its_key_ignoring_case_spaces_underscores_and_hyphens(
        words, in_template, in_key, upper_template, upper_key, value):
    template = "Helo ((" + spelt(words, in_template, upper_template) + "))!"
    assert render(template, {spelt(words, in_key, upper_key): value}) == f"Helo {value}!"


@given(values, values)
def test_values_are_inserted_as_written_never_expanded_again(a, b):
    assert render("((a)) ((b))", {"a": a + "((b))", "b": b}) == f"{a}((b)) {b}"


@given(st.sampled_from(["yes", "Yes", "TRUE", "1", "y", "ie", "oes", True]), values)
def test_a_conditional_shows_its_text_for_a_yes(flag, text):
    text = text.replace("?", "")
    assert render(f"Bins((garden??{text})).", {"garden": flag}) == f"Bins{text}."


@given(st.sampled_from(["no", "", "false", "0", "na", "nac ydw", False]), values)
def test_a_conditional_hides_its_text_otherwise(flag, text):
    text = text.replace("?", "")
    assert render(f"Bins((garden??{text})).", {"garden": flag}) == "Bins."


@given(st.dictionaries(st.text(alphabet="abcxyz_ -", min_size=1, max_size=5), values, max_size=4),
       name_words)
def test_a_missing_or_null_value_is_named_and_never_rendered_as_none(given_values, words):
    name = "_".join(words)
    # drop any given key that names the same placeholder ("_ax" is "ax")
    wanted = {k: v for k, v in given_values.items()
              if placeholder_key(k) != placeholder_key(name + "x")}
    wanted[name + "x"] = None
    with pytest.raises(MissingPersonalisation) as err:
        render(f"(({name}x))", wanted)
    assert err.value.names == [name + "x"]


def test_missing_personalisation_is_a_400_naming_the_field(client, tenant, sms_template):
    r = client.post("/v2/notifications/sms", headers=tenant.live, json={
        "phone_number": "07700900111", "template_id": sms_template["id"],
        "personalisation": {"name": "Dai"}})
    assert errors(r) == (400, "BadRequestError", "Missing personalisation: bin type")


def test_editing_a_template_makes_a_new_version_and_a_sent_notification_keeps_its_own(
        client, tenant, sms_template):
    tid = sms_template["id"]
    values = {"name": "Dai", "bin_type": "glas"}
    first = client.post("/v2/notifications/sms", headers=tenant.live, json={
        "phone_number": "07700900111", "template_id": tid, "personalisation": values}).get_json()
    edited = client.patch(f"/api/templates/{tid}", headers=tenant.live, json={
        "body": {"cy": "Newydd ((name))", "en": "New ((name))"}})
    assert edited.status_code == 200 and edited.get_json()["version"] == 2
    second = client.post("/v2/notifications/sms", headers=tenant.live, json={
        "phone_number": "07700900111", "template_id": tid, "personalisation": values}).get_json()
    old = client.get(f"/v2/notifications/{first['id']}", headers=tenant.live).get_json()
    assert old["template"]["version"] == 1 and old["body"].startswith("Helo Dai, biniau glas")
    assert second["template"]["version"] == 2 and second["content"]["body"].startswith("Newydd Dai")
    v1 = client.get(old["template"]["uri"].replace("http://localhost", ""), headers=tenant.live)
    assert v1.status_code == 200
    assert v1.get_json()["version"] == 1 and "biniau ((bin type))" in v1.get_json()["body"]
    latest = client.get(f"/v2/template/{tid}", headers=tenant.live).get_json()
    assert latest["version"] == 2 and latest["personalisation"] == {"name": {"required": True}}


def test_an_edit_that_changes_nothing_keeps_the_version(client, tenant, sms_template):
    r = client.patch(f"/api/templates/{sms_template['id']}", headers=tenant.live,
                     json={"name": sms_template["name"]})
    assert r.get_json()["version"] == 1


def test_a_version_that_does_not_exist_is_404(client, tenant, sms_template):
    for version in (2, 0, 99999999999999999999):
        r = client.get(f"/v2/template/{sms_template['id']}/version/{version}", headers=tenant.live)
        assert errors(r) == (404, "NoResultFound", "No result found"), version


def test_preview_shows_each_language_with_its_encoding_and_cost(client, tenant):
    t = client.post("/api/templates", headers=tenant.live, json={
        "name": "Tŷ", "type": "sms",
        "body": {"cy": "Mae’r bin ((lliw)) yn mynd allan ddydd Llun – diolch. Tŷ ((enw))",
                 "en": "Your ((lliw)) bin goes out on Monday - thanks. ((enw))"}}).get_json()
    r = client.post(f"/api/templates/{t['id']}/preview", headers=tenant.live,
                    json={"personalisation": {"lliw": "glas", "enw": "Siân"}})
    assert r.status_code == 200, r.get_data(as_text=True)
    langs = r.get_json()["languages"]
    assert set(langs) == {"cy", "en", "cy+en"}
    assert langs["cy"]["body"] == "Mae'r bin glas yn mynd allan ddydd Llun - diolch. Tŷ Siân"
    assert langs["cy"]["encoding"] == "UCS-2"      # ŷ and â are kept, and cost UCS-2
    assert langs["en"]["encoding"] == "UCS-2"      # "Siân"
    assert langs["cy+en"]["body"] == langs["cy"]["body"] + "\n\n" + langs["en"]["body"]
    assert langs["cy+en"]["fragment_count"] == 2 and langs["cy"]["fragment_count"] == 1


def test_v2_preview_renders_the_recipients_language_or_both_welsh_first(client, tenant,
                                                                           sms_template):
    url = f"/v2/template/{sms_template['id']}/preview"
    values = {"personalisation": {"name": "Dai", "bin type": "du"}}
    both = client.post(url, headers=tenant.live, json=values).get_json()
    assert both["body"] == "Helo Dai, biniau du yfory.\n\nHello Dai, du bins tomorrow."
    assert (both["encoding"], both["fragment_count"], both["language"]) == ("GSM-7", 1, "cy+en")
    english = client.post(url, headers=tenant.live, json={**values, "language": "en"}).get_json()
    assert english["body"] == "Hello Dai, du bins tomorrow."


def test_an_email_template_previews_its_subject_in_each_language(client, tenant):
    t = client.post("/api/templates", headers=tenant.live, json=EMAIL_TEMPLATE).get_json()
    r = client.post(f"/api/templates/{t['id']}/preview", headers=tenant.live,
                    json={"personalisation": {"name": "Dai"}}).get_json()["languages"]
    assert r["cy"]["subject"] == "Eich apwyntiad" and r["en"]["body"] == "Dear Dai"
    assert r["cy+en"]["subject"] == "Eich apwyntiad / Your appointment"
    assert "encoding" not in r["cy"]


def test_an_sms_template_longer_than_918_characters_is_refused_on_create_and_edit(
        client, tenant, sms_template):
    long = {"cy": "a" * 919, "en": "b"}
    r = client.post("/api/templates", headers=tenant.live,
                    json={"name": "x", "type": "sms", "body": long})
    assert errors(r)[:2] == (400, "ValidationError") and "body.cy" in errors(r)[2]
    r = client.patch(f"/api/templates/{sms_template['id']}", headers=tenant.live,
                     json={"body": long})
    assert errors(r)[0] == 400


def test_welsh_and_english_that_render_the_same_are_sent_once_not_twice(client, tenant):
    """An email subject of the date alone, and a one-time code: "X", never "X / X"."""
    email = client.post("/api/templates", headers=tenant.live, json={
        "name": "Apwyntiad", "type": "email",
        "subject": {"cy": "((date))", "en": "((date))"},
        "body": {"cy": "Mae eich apwyntiad ar ((date)).", "en": "Your appointment is on ((date))."},
    }).get_json()["id"]
    code = client.post("/api/templates", headers=tenant.live, json={
        "name": "Cod", "type": "sms", "body": {"cy": "((code))", "en": "((code))"}}).get_json()["id"]
    sent = client.post("/v2/notifications/email", headers=tenant.live, json={
        "email_address": "sian@example.cymru", "template_id": email,
        "personalisation": {"date": "1 Rhag / Dec"}}).get_json()
    assert sent["content"]["subject"] == "1 Rhag / Dec"
    assert sent["content"]["body"] == ("Mae eich apwyntiad ar 1 Rhag / Dec.\n\n---\n\n"
                                       "Your appointment is on 1 Rhag / Dec.")
    text = client.post("/v2/notifications/sms", headers=tenant.live, json={
        "phone_number": "07700900111", "template_id": code,
        "personalisation": {"code": "482913"}}).get_json()
    assert text["content"]["body"] == "482913" and text["content"]["fragment_count"] == 1
    shown = client.get(f"/v2/template/{code}", headers=tenant.live).get_json()
    assert shown["body"] == "((code))"


def test_notify_answers_the_scheduler_each_languages_fragment_count_for_its_tenant_only(
        notify, client, tenant):
    from notify_api_support import new_tenant

    admin = {"Authorization": f"Bearer {notify.runtime.settings.admin_token}"}
    tid = client.post("/api/templates", headers=tenant.live, json={
        "name": "Gwastraff", "type": "sms",
        "body": {"cy": "Helo ((name)), mae'r dŵr wedi'i ddiffodd tan yfory yn ardal ((area)). "
                       "Ffoniwch 01545 570881.",
                 "en": "Hello ((name)), the water is off until tomorrow in ((area))."}},
    ).get_json()["id"]
    url = f"/internal/tenants/{tenant.id}/templates/{tid}/fragments"
    got = client.post(url, headers=admin, json={"personalisation": {"area": "Aberteifi"}})
    assert got.status_code == 200, got.get_data(as_text=True)
    languages = got.get_json()["languages"]
    assert languages["cy"]["encoding"] == "UCS-2" and languages["en"]["encoding"] == "GSM-7"
    assert (languages["cy"]["fragment_count"], languages["en"]["fragment_count"]) == (2, 1)
    assert languages["cy+en"]["fragment_count"] == 3, "both, Welsh first, all in UCS-2"
    other = new_tenant(notify, "arall")
    assert client.post(f"/internal/tenants/{other.id}/templates/{tid}/fragments", headers=admin,
                       json={}).status_code == 404, "another tenant's template is unknown"
    assert client.post(url, headers=tenant.live, json={}).status_code == 403
