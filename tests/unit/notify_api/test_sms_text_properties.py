"""SMS text rules and phone numbers, as properties (hypothesis) and as the design's table."""
from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from shared import phone, smstext

GSM_CHARS = sorted(smstext._GSM_BASIC_SET | smstext._GSM_EXT_SET)
gsm_text = st.text(alphabet=st.sampled_from(GSM_CHARS), max_size=1200)
basic_text = st.text(alphabet=st.sampled_from(sorted(smstext._GSM_BASIC_SET)), max_size=1200)
non_gsm_char = st.characters(blacklist_characters="".join(GSM_CHARS),
                             blacklist_categories=("Cs",))


@given(gsm_text)
def test_text_of_gsm_characters_is_gsm_7_and_extension_characters_cost_two(text):
    info = smstext.analyse(text)
    extended = sum(1 for c in text if c in smstext.GSM_EXTENDED)
    assert info.encoding == "GSM-7"
    assert info.units == len(text) + extended


@given(gsm_text, non_gsm_char, st.integers(min_value=0, max_value=1200))
def test_one_character_outside_gsm_makes_the_whole_message_ucs_2(text, char, at):
    at = min(at, len(text))
    info = smstext.analyse(text[:at] + char + text[at:])
    assert info.encoding == "UCS-2"
    assert info.units == len((text[:at] + char + text[at:]).encode("utf-16-le")) // 2


@given(st.text(max_size=1500))
@example("a" * 160)
@example("a" * 161)
@example("€" * 80)
@example("â" * 70)
@example("â" * 71)
def test_fragments_are_the_fewest_that_hold_every_unit(text):
    info = smstext.analyse(text)
    single, multi = smstext.SINGLE[info.encoding], smstext.MULTI[info.encoding]
    if info.units <= single:
        assert info.fragments == 1
    else:
        assert (info.fragments - 1) * multi < info.units <= info.fragments * multi


@given(basic_text, basic_text)
def test_a_longer_message_never_costs_fewer_fragments(a, b):
    assert smstext.analyse(a + b).fragments >= smstext.analyse(a).fragments


@given(st.text(max_size=300))
def test_normalising_twice_changes_nothing_more(text):
    once = smstext.normalise(text)
    assert smstext.normalise(once) == once


@given(st.text(alphabet=st.sampled_from(smstext.WELSH_UCS2 + smstext.WELSH_GSM + "abc "),
               max_size=200))
def test_welsh_letters_are_never_stripped(text):
    assert smstext.normalise(text) == text


@pytest.mark.parametrize("letter", list(smstext.WELSH_GSM))
def test_welsh_letters_in_gsm_cost_nothing_extra(letter):
    info = smstext.analyse("Diolch " + letter * 100)
    assert (info.encoding, info.units) == ("GSM-7", 107)


@pytest.mark.parametrize("letter", list(smstext.WELSH_UCS2))
def test_other_welsh_letters_are_kept_and_switch_to_ucs_2(letter):
    text = smstext.normalise("Croeso i’r " + letter)
    assert letter in text
    assert smstext.analyse(text).encoding == "UCS-2"


@pytest.mark.parametrize("typographic,plain", [
    ("‘a’", "'a'"), ("“a”", '"a"'), ("a – b", "a - b"), ("a — b", "a - b"), ("a…", "a..."),
    ("a\u00a0b", "a b"), ("a\u200bb", "ab"), ("‑", "-"),
])
def test_smart_quotes_and_dashes_become_their_gsm_forms(typographic, plain):
    assert smstext.normalise(typographic) == plain
    assert smstext.analyse(smstext.normalise(typographic)).encoding == "GSM-7"


@pytest.mark.parametrize("text,fragments", [
    ("a" * 918, 6), ("a" * 612 + "€" * 306, 8), ("â" * 918, 14),
])
def test_the_918_character_limit_counts_characters_as_the_citizen_sees_them(text, fragments):
    assert not smstext.too_long(text)
    assert smstext.too_long(text + "a")
    assert smstext.analyse(text).fragments == fragments


# -- phone numbers --------------------------------------------------------------------

def _valid_uk(national: str) -> bool:
    return phonenumbers.is_valid_number(phonenumbers.parse("+44" + national))


# Ofcom's drama range (the simulator's numbers) and real mobile numbers
uk_mobile = st.one_of(
    st.integers(min_value=0, max_value=999).map(lambda n: f"7700900{n:03d}"),
    st.integers(min_value=0, max_value=99_999_999).map(lambda n: f"79{n:08d}").filter(_valid_uk))


@st.composite
def written_any_common_way(draw):
    national = draw(uk_mobile)   # 10 digits after the 0 / +44
    prefix = draw(st.sampled_from(["0", "+44", "0044", "44", "+44 (0)", "+44 0"]))
    digits = prefix + national if not prefix.endswith(")") else prefix + national
    sep = draw(st.sampled_from(["", " ", "-", "."]))
    grouped = digits[:-6] + sep + digits[-6:-3] + sep + digits[-3:]
    return national, draw(st.sampled_from(["", " ", "\t"])) + grouped


@given(written_any_common_way())
def test_a_uk_mobile_written_any_common_way_is_one_recipient(case):
    national, written = case
    assert phone.normalise(written) == "+44" + national


@given(st.text(min_size=1, max_size=20).filter(lambda s: any(c.isalpha() for c in s)))
def test_a_number_with_letters_is_refused_never_read_as_a_keypad(text):
    with pytest.raises(phone.InvalidPhoneNumber) as err:
        phone.normalise("07700 900" + text)
    assert str(err.value).startswith("Not a valid phone number")


@given(st.text(max_size=40))
def test_normalising_any_text_either_gives_e164_or_says_why(text):
    try:
        out = phone.normalise(text)
    except phone.InvalidPhoneNumber as exc:
        assert str(exc).startswith("Not a valid phone number")
    else:
        assert out.startswith("+") and out[1:].isdigit()


@pytest.mark.parametrize("raw,why", [
    ("", "empty"), ("0770", "too short"), ("07700 900123 999", "too long"),
    ("07700 900ABC", "letters"), ("+999 1234567", "country code"), ("44+7700900123", "+"),
])
def test_an_invalid_number_says_why(raw, why):
    with pytest.raises(phone.InvalidPhoneNumber) as err:
        phone.normalise(raw)
    assert why in str(err.value)
