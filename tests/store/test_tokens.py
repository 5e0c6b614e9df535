"""Linkage tokens and pseudonyms: keyed, stable, and blind to how an ID number was typed."""

from __future__ import annotations

import hashlib
import hmac
import re

import pytest

from medspace.store.tokens import (
    LINKAGE_TOKEN_PATTERN,
    PSEUDONYM_PATTERN,
    TokenError,
    linkage_token,
    log_pseudonym,
    normalise_id_number,
    person_pseudonym,
)

LINKAGE_KEY = bytes(range(32))
ID_NUMBER = "11010519491231002X"


def test_linkage_token_is_hmac_sha256_of_the_normalised_id_number() -> None:
    expected = hmac.new(LINKAGE_KEY, ID_NUMBER.encode(), hashlib.sha256).hexdigest()
    assert linkage_token(ID_NUMBER, LINKAGE_KEY) == f"lt:{expected}"
    assert re.fullmatch(LINKAGE_TOKEN_PATTERN, linkage_token(ID_NUMBER, LINKAGE_KEY))


@pytest.mark.parametrize(
    "typed",
    [
        "11010519491231002x",
        " 110105 19491231 002X ",
        "110105-19491231-002x",
        "11010519491231002X\n",
    ],
)
def test_lowercase_x_spaces_and_hyphens_give_the_same_token(typed: str) -> None:
    assert normalise_id_number(typed) == ID_NUMBER
    assert linkage_token(typed, LINKAGE_KEY) == linkage_token(ID_NUMBER, LINKAGE_KEY)


def test_token_is_stable_and_depends_on_the_key() -> None:
    first = linkage_token(ID_NUMBER, LINKAGE_KEY)
    assert linkage_token(ID_NUMBER, LINKAGE_KEY) == first
    assert linkage_token(ID_NUMBER, b"\x01" * 32) != first
    assert linkage_token("110105194912310038", LINKAGE_KEY) != first


@pytest.mark.parametrize(
    "bad", ["", "1101051949123100", "11010519491231002Y", "X10105194912310021"]
)
def test_malformed_id_numbers_are_refused_without_echoing_them(bad: str) -> None:
    with pytest.raises(TokenError) as caught:
        linkage_token(bad, LINKAGE_KEY)
    assert bad == "" or bad not in str(caught.value)


def test_a_short_key_is_refused_and_never_echoed() -> None:
    with pytest.raises(TokenError, match="at least 32 bytes") as caught:
        linkage_token(ID_NUMBER, b"secret-short-key")
    assert "secret-short-key" not in str(caught.value)
    with pytest.raises(TokenError):
        person_pseudonym("MRN1", b"short")


def test_pseudonym_is_keyed_stable_and_unlike_the_mrn() -> None:
    key = b"k" * 32
    ps = person_pseudonym("MRN0001", key)
    assert re.fullmatch(PSEUDONYM_PATTERN, ps)
    assert person_pseudonym(" MRN0001 ", key) == ps
    assert person_pseudonym("MRN0001", b"j" * 32) != ps
    assert person_pseudonym("MRN0002", key) != ps
    assert "MRN0001" not in ps
    with pytest.raises(TokenError):
        person_pseudonym("  ", key)


def test_the_log_pseudonym_is_the_same_at_every_hospital_and_not_the_linkage_token() -> None:
    key = b"L" * 32
    first = log_pseudonym("11010519491231002x", key)
    assert first == log_pseudonym("110105 19491231 002X", key)
    assert first.startswith("psn:") and len(first) == 4 + 64
    assert first[4:] != linkage_token("11010519491231002X", key)[3:]
    assert first != log_pseudonym("11010519491231002X", b"M" * 32)
