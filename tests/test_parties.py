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
    ],
)
def test_canonical_identifier(raw, region, canonical):
    assert parties.canonical_identifier(raw, region=region) == canonical


@pytest.mark.parametrize("raw", ["", "   ", None])
def test_empty_identifier(raw):
    with pytest.raises(BadInput):
        parties.canonical_identifier(raw)


def test_pseudonym_is_keyed():
    a, b = b"a" * 32, b"b" * 32
    assert parties.pseudonym(a, "+31612345678") == parties.pseudonym(a, "+31612345678")
    assert parties.pseudonym(a, "+31612345678") != parties.pseudonym(b, "+31612345678")
    assert parties.suppression_token(a, "x") != parties.pseudonym(a, "x")


@given(st.text(min_size=1, max_size=30).filter(lambda s: s.strip()))
def test_canonical_is_idempotent(raw):
    once = parties.canonical_identifier(raw)
    assert parties.canonical_identifier(once) == once


def test_label_keeps_only_a_hint():
    label = parties.display_label("+31612345678")
    assert label.endswith("78") and "1234" not in label
