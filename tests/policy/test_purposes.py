"""The purpose hierarchy: a partial order over known codes whose roots are consent purposes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medspace.policy.purposes import PURPOSES, UnknownPurpose, is_known, is_within, parent, root
from medspace.store.schema import CONSENT_PURPOSES

KNOWN = st.sampled_from(sorted(PURPOSES))


def test_every_purpose_hangs_from_a_known_parent() -> None:
    for purpose in PURPOSES:
        above = parent(purpose)
        assert above is None or above in PURPOSES


def test_the_roots_are_the_purposes_a_patient_consents_to() -> None:
    assert {root(p) for p in PURPOSES} == set(CONSENT_PURPOSES)
    assert {p for p in PURPOSES if parent(p) is None} == set(CONSENT_PURPOSES)


def test_a_sub_purpose_is_within_its_parent_and_not_the_other_way() -> None:
    assert is_within("research.clinical", "research")
    assert not is_within("research", "research.clinical")


def test_commercial_research_is_not_research() -> None:
    assert not is_within("commercial.research", "research")
    assert is_within("commercial.research", "commercial")


def test_siblings_are_not_within_each_other() -> None:
    assert not is_within("research.clinical", "research.biomedical")
    assert not is_within("emergency", "public-health")


@pytest.mark.parametrize("purpose", ["Research", "research.", "research.clinical.x", "", "care"])
def test_an_unknown_purpose_is_an_error_naming_it(purpose: str) -> None:
    assert not is_known(purpose)
    with pytest.raises(UnknownPurpose, match=repr(purpose)):
        is_within(purpose, "research")
    with pytest.raises(UnknownPurpose, match=repr(purpose)):
        is_within("research", purpose)


def test_a_purpose_that_is_not_text_is_unknown() -> None:
    assert not is_known(None)
    with pytest.raises(UnknownPurpose):
        root(3)  # type: ignore[arg-type]


@given(KNOWN)
def test_within_is_reflexive(a: str) -> None:
    assert is_within(a, a)


@given(KNOWN, KNOWN)
def test_within_is_antisymmetric(a: str, b: str) -> None:
    if is_within(a, b) and is_within(b, a):
        assert a == b


@given(KNOWN, KNOWN, KNOWN)
def test_within_is_transitive(a: str, b: str, c: str) -> None:
    if is_within(a, b) and is_within(b, c):
        assert is_within(a, c)


@given(KNOWN)
def test_a_purpose_is_within_its_root_and_every_ancestor(a: str) -> None:
    assert is_within(a, root(a))
    above = parent(a)
    while above is not None:
        assert is_within(a, above)
        above = parent(above)

