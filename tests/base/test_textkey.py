"""base/textkey: the one case-insensitive key (Unicode canonical caseless matching, stored NFC)."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skilljar_scim.base import textkey


@pytest.mark.parametrize(("a", "b"), [("Hx Admins", "HX ADMINS"), ("Straße", "STRASSE"), ("Zoë", "zoe\u0308"),
                                      ("ΐ", "ΐ".upper()), ("ǅ", "ǆ"), ("Ω", "ω"), ("K", "\u212a"),
                                      ("ﬁona", "FIONA")])  # full case folding maps ﬁ to fi, as ß to ss
def test_textkey_equates_case_and_canonical_variants(a, b) -> None:
    assert textkey.key(a) == textkey.key(b) and textkey.same(a, b)


@pytest.mark.parametrize(("a", "b"), [("Hx Admins", "Ｈｘ Ａｄｍｉｎｓ"), ("x2", "x²"), ("①", "1"),
                                      ("ı", "i"), ("a b", "a\u00a0b")])
def test_textkey_keeps_compatibility_look_alikes_apart(a, b) -> None:
    assert textkey.key(a) != textkey.key(b) and not textkey.same(a, b)


@settings(max_examples=300, derandomize=True)
@given(st.text(st.characters(exclude_categories=("Cs",)), max_size=12))
def test_textkey_is_stable_under_normal_forms_and_idempotent(text) -> None:
    key = textkey.key(text)
    assert textkey.key(unicodedata.normalize("NFD", text)) == textkey.key(unicodedata.normalize("NFC", text)) == key
    assert textkey.key(key) == key and unicodedata.is_normalized("NFC", key)


def test_textkey_get_finds_a_json_key_in_any_case() -> None:
    data = {"userName": "a", "Emails": [1]}
    assert textkey.get(data, "userName") == "a" and textkey.get(data, "USERNAME") == "a"
    assert textkey.get(data, "emails") == [1] and textkey.get(data, "nosuch", 7) == 7
    assert textkey.get(["not", "a", "mapping"], "x") is None


@settings(max_examples=300, derandomize=True)
@given(st.text(st.characters(max_codepoint=127), max_size=16))
def test_textkey_ascii_keys_as_the_full_algorithm_does(text) -> None:
    """ASCII takes a shortcut (str.lower): it must give exactly what NFD, casefold, NFC give."""
    assert textkey.key(text) == unicodedata.normalize("NFC", unicodedata.normalize("NFD", text).casefold())
