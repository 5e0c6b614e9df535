"""Resident ID numbers follow GB 11643 and never collide."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medspace.synth.divisions import DIVISIONS
from medspace.synth.resident_id import (
    MAX_OWNERS,
    IdNumberAllocator,
    check_character,
    make_resident_id,
    parse_resident_id,
)


def test_check_character_matches_the_standard_example() -> None:
    # The worked example of GB 11643-1999: 11010519491231002X.
    assert check_character("11010519491231002") == "X"
    assert parse_resident_id("11010519491231002X").birth_date == dt.date(1949, 12, 31)


@given(
    area=st.sampled_from([d.code for d in DIVISIONS]),
    birth=st.dates(dt.date(1900, 1, 1), dt.date(2025, 12, 31)),
    sequence=st.integers(0, 999),
)
def test_made_numbers_parse_back_to_their_parts(area: str, birth: dt.date, sequence: int) -> None:
    parsed = parse_resident_id(make_resident_id(area, birth, sequence))
    assert (parsed.area_code, parsed.birth_date, parsed.male) == (area, birth, sequence % 2 == 1)


def test_a_wrong_check_character_is_rejected() -> None:
    number = make_resident_id("110108", dt.date(1980, 5, 17), 123)
    wrong = number[:17] + ("0" if number[17] != "0" else "1")
    with pytest.raises(ValueError, match="check character"):
        parse_resident_id(wrong)


def test_an_impossible_birth_date_is_rejected() -> None:
    first17 = "11010819800231123"
    with pytest.raises(ValueError, match="birth date"):
        parse_resident_id(first17 + check_character(first17))


def test_allocators_of_different_owners_never_issue_the_same_number() -> None:
    numbers = []
    for owner in range(4):
        allocator = IdNumberAllocator(owner)
        for _ in range(2000):
            birth, number = allocator.issue("440106", 1975, True)
            assert birth.year == 1975
            assert number[6:14] == f"{birth:%Y%m%d}"
            assert int(number[16]) % 2 == 1
            numbers.append(number)
    assert len(set(numbers)) == len(numbers)


def test_allocator_refuses_an_owner_out_of_range() -> None:
    with pytest.raises(ValueError):
        IdNumberAllocator(MAX_OWNERS)
