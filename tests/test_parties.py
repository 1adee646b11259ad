"""Identifiers: canonical form, keyed pseudonyms, labels that do not reveal the number."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clipkit import parties
from clipkit.errors import BadInput


@pytest.mark.parametrize(
    "raw, region, canonical",
    [
        ("06-12345678", "NL", "+31612345678"),
        ("+31 6 1234 5678", "NL", "+31612345678"),
        ("0031612345678", "NL", "+31612345678"),
        ("(020) 555 1234", "NL", "+31205551234"),
        ("020 7946 0958", "GB", "+442079460958"),
        ("C-10042", "NL", "c-10042"),
        ("  Employee   E7 ", "NL", "employee e7"),
        ("12345", "NL", "12345"),  # not a valid number: kept as an id
        ("ＡＢＣ", "NL", "abc"),
        # what copy-paste and other keyboards bring along (issue: each became a new party)
        ("\u202a0612345678\u202c", "NL", "+31612345678"),  # Outlook / Word bidi embedding
        ("06\u200b12345678", "NL", "+31612345678"),  # zero-width space
        ("\ufeff06-12345678", "NL", "+31612345678"),  # BOM
        ("06\u201312345678", "NL", "+31612345678"),  # en-dash
        ("06\u221212345678", "NL", "+31612345678"),  # minus sign
        ("06\u00a01234\u20075678", "NL", "+31612345678"),  # no-break and figure spaces
        ("tel:+31-6-12345678", "NL", "+31612345678"),
        ("TEL:0612345678;phone-context=+31", "NL", "+31612345678"),
        ("\u0660\u0666\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668", "NL", "+31612345678"),  # Arabic-Indic
        ("\u0966\u096c\u0967\u0968\u0969\u096a\u096b\u096c\u096d\u096e", "NL", "+31612345678"),  # Devanagari
        ("C\u201310042", "NL", "c-10042"),
        ("\u2068E-0007\u2069", "NL", "e-0007"),
        # numbers phonenumbers calls invalid still lose their separators
        ("+447700900123", "NL", "+447700900123"),
        ("+44 7700 900123", "NL", "+447700900123"),
        ("0044 (0)7700 900123", "NL", "+447700900123"),
        ("0470 12 34 56", "NL", "0470123456"),
        ("0470-123456", "NL", "0470123456"),
        ("+32 470 12 34 56", "NL", "+32470123456"),
    ],
)
def test_canonical_identifier(raw, region, canonical):
    assert parties.canonical_identifier(raw, region=region) == canonical


@pytest.mark.parametrize("raw", ["", "   ", None, "\u202a\u202c", "\u200b\ufeff", "tel:"])
def test_empty_identifier(raw):
    with pytest.raises(BadInput):
        parties.canonical_identifier(raw)


def test_pseudonym_is_keyed():
    a, b = b"a" * 32, b"b" * 32
    assert parties.pseudonym(a, "+31612345678") == parties.pseudonym(a, "+31612345678")
    assert parties.pseudonym(a, "+31612345678") != parties.pseudonym(b, "+31612345678")
    assert parties.suppression_token(a, "x") != parties.pseudonym(a, "x")


def _usable(text: str) -> bool:
    try:
        parties.canonical_identifier(text)
    except BadInput:
        return False
    return True


@given(st.text(min_size=1, max_size=30).filter(_usable))
def test_canonical_is_idempotent(raw):
    once = parties.canonical_identifier(raw)
    assert parties.canonical_identifier(once) == once


def test_label_keeps_only_a_hint():
    label = parties.display_label("+31612345678")
    assert label.endswith("78") and "1234" not in label


# ---------------------------------------------------------------- spellings of one number

SEPARATORS = ["", " ", "-", ".", "/", "\u2013", "\u2212", "\u2010", "\u00a0", "\u200b", "\u2009", " - "]
INVISIBLE = ["\u202a", "\u202c", "\u200e", "\u200f", "\u2066", "\u2069", "\ufeff", "\u200b", "\u2060", "\u00ad"]
DIGIT_SCRIPTS = [0x30, 0x660, 0x6F0, 0x966, 0x9E6, 0xFF10, 0xE50]  # ASCII, Arabic-Indic, Persian, Devanagari...


def _spell(draw, head: str, digits: str) -> str:
    zero = draw(st.sampled_from(DIGIT_SCRIPTS))
    out = head
    for d in digits:
        out += draw(st.sampled_from(SEPARATORS)) if draw(st.booleans()) else ""
        out += chr(zero + int(d))
    for _ in range(draw(st.integers(0, 3))):
        i = draw(st.integers(0, len(out)))
        out = out[:i] + draw(st.sampled_from(INVISIBLE)) + out[i:]
    if draw(st.booleans()):
        out = draw(st.sampled_from(["tel:", "TEL:", "tel://"])) + out
    return draw(st.sampled_from(["", " ", "\t"])) + out + draw(st.sampled_from(["", " ", "\n"]))


@st.composite
def nl_mobile(draw):
    """One Dutch mobile number, written any way people write it."""
    head, digits = draw(st.sampled_from([("+31", "612345678"), ("0031", "612345678"), ("", "0612345678"),
                                         ("+31 (0)", "612345678")]))
    return _spell(draw, head, digits)


@st.composite
def uk_drama_number(draw):
    """A number phonenumbers calls invalid (the UK 07700 900xxx drama range), written any way."""
    head = draw(st.sampled_from(["+44", "0044", "+44 (0)"]))
    return _spell(draw, head, "7700900123")


@given(nl_mobile(), nl_mobile())
def test_every_spelling_of_a_valid_number_is_one_pseudonym(a, b):
    key = b"k" * 32
    assert parties.pseudonym(key, parties.canonical_identifier(a)) == parties.pseudonym(
        key, parties.canonical_identifier(b)), (a, b)


@given(uk_drama_number(), uk_drama_number())
def test_every_spelling_of_an_invalid_number_is_one_pseudonym(a, b):
    assert parties.canonical_identifier(a) == parties.canonical_identifier(b) == "+447700900123", (a, b)


def test_alternative_forms_point_from_national_to_international_and_back():
    assert "+32470123456" in parties.alternative_forms("0470123456")
    assert "0470123456" in parties.alternative_forms("+32470123456")
    assert parties.alternative_forms("c-10042") == []
