"""The de-identification operators, one behaviour per test."""

from __future__ import annotations

import re
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medspace.deid.operators import (
    ENCRYPTED_PATTERN,
    PSEUDONYM_PATTERN,
    DeidError,
    bottom_code,
    date_shift_days,
    decrypt,
    encrypt,
    generalise_date,
    generalise_icd10,
    generalise_number,
    generalise_place,
    mask,
    pseudonym,
    shift_date,
    suppress,
    top_code,
    zip3,
)
from medspace.store.codes import CodeError
from medspace.store.tokens import TokenError

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))

dates = st.dates(min_value=date(1900, 1, 1), max_value=date(2100, 12, 31))


def test_a_mobile_number_is_masked_to_its_first_three_and_last_four_digits() -> None:
    assert mask("13812345678") == "138****5678"


def test_a_value_no_longer_than_what_is_kept_is_masked_whole() -> None:
    assert mask("1234567") == "*******"


def test_mask_uses_the_given_character_and_lengths() -> None:
    assert mask("110101199003071234", keep_start=6, keep_end=0, char="#") == "110101" + "#" * 12


def test_mask_refuses_a_mask_of_more_than_one_character() -> None:
    with pytest.raises(DeidError):
        mask("13812345678", char="**")


@pytest.mark.parametrize(
    ("operator", "arguments"),
    [
        (mask, ()),
        (pseudonym, (KEY, "mrn")),
        (encrypt, (KEY, "mrn")),
        (decrypt, (KEY, "mrn")),
        (generalise_number, (5,)),
        (top_code, (89, "90+")),
        (bottom_code, (18, "<18")),
        (generalise_date, ("year",)),
        (generalise_icd10, ()),
        (generalise_place, ("city",)),
        (zip3, ()),
        (shift_date, (30,)),
        (suppress, ()),
    ],
)
def test_none_passes_through_every_operator_as_none(operator, arguments) -> None:
    assert operator(None, *arguments) is None


def test_a_pseudonym_has_its_prefix_and_128_bits_of_hex() -> None:
    assert re.fullmatch(PSEUDONYM_PATTERN, pseudonym("MRN-001", KEY, "mrn"))


@given(st.text())
def test_a_pseudonym_is_deterministic_under_one_key(value: str) -> None:
    assert pseudonym(value, KEY, "mrn") == pseudonym(value, KEY, "mrn")


@given(st.text())
def test_a_pseudonym_differs_under_another_key(value: str) -> None:
    assert pseudonym(value, KEY, "mrn") != pseudonym(value, OTHER_KEY, "mrn")


def test_a_pseudonym_differs_under_another_context() -> None:
    assert pseudonym("MRN-001", KEY, "mrn") != pseudonym("MRN-001", KEY, "phone")


def test_a_pseudonym_refuses_a_short_key() -> None:
    with pytest.raises(TokenError):
        pseudonym("MRN-001", b"short", "mrn")


@given(st.text())
def test_decrypt_reverses_encrypt(value: str) -> None:
    assert decrypt(encrypt(value, KEY, "mrn"), KEY, "mrn") == value


def test_an_encrypted_value_is_ascii_with_its_prefix() -> None:
    token = encrypt("张三 13812345678", KEY, "name")
    assert token.isascii()
    assert re.fullmatch(ENCRYPTED_PATTERN, token)


def test_encrypting_one_value_twice_gives_two_tokens() -> None:
    assert encrypt("MRN-001", KEY, "mrn") != encrypt("MRN-001", KEY, "mrn")


def test_a_token_does_not_decrypt_under_a_wrong_key() -> None:
    with pytest.raises(DeidError, match="wrong key"):
        decrypt(encrypt("MRN-001", KEY, "mrn"), OTHER_KEY, "mrn")


def test_a_token_does_not_decrypt_under_another_context() -> None:
    with pytest.raises(DeidError):
        decrypt(encrypt("MRN-001", KEY, "mrn"), KEY, "phone")


def test_a_tampered_token_does_not_decrypt() -> None:
    token = encrypt("MRN-001", KEY, "mrn")
    flipped = "A" if token[10] != "A" else "B"
    with pytest.raises(DeidError, match="tampered"):
        decrypt(token[:10] + flipped + token[11:], KEY, "mrn")


def test_a_truncated_token_does_not_decrypt() -> None:
    with pytest.raises(DeidError):
        decrypt("enc:AAAA", KEY, "mrn")


def test_a_value_without_the_prefix_does_not_decrypt() -> None:
    with pytest.raises(DeidError):
        decrypt("MRN-001", KEY, "mrn")


def test_encryption_refuses_a_key_that_is_not_256_bits() -> None:
    with pytest.raises(DeidError):
        encrypt("MRN-001", bytes(48), "mrn")


def test_an_age_falls_in_its_five_year_band() -> None:
    assert generalise_number(37, 5) == "35-39"


def test_bands_count_from_their_start() -> None:
    assert generalise_number(37, 10, start=5) == "35-44"


@given(st.integers(-10_000, 10_000), st.integers(1, 100), st.integers(-100, 100))
def test_a_number_band_contains_its_value(value: int, width: int, start: int) -> None:
    low, high = map(
        int, re.fullmatch(r"(-?\d+)-(-?\d+)", generalise_number(value, width, start)).groups()
    )
    assert low <= value <= high
    assert high - low + 1 == width


def test_a_band_narrower_than_one_is_refused() -> None:
    with pytest.raises(DeidError):
        generalise_number(37, 0)


def test_an_age_over_89_is_top_coded() -> None:
    assert top_code(92, 89, "90+") == "90+"


def test_an_age_of_89_is_kept() -> None:
    assert top_code(89, 89, "90+") == 89


def test_a_value_under_the_floor_is_bottom_coded() -> None:
    assert bottom_code(15, 18, "<18") == "<18"


def test_a_value_at_the_floor_is_kept() -> None:
    assert bottom_code(18, 18, "<18") == 18


def test_a_date_generalises_to_its_month() -> None:
    assert generalise_date(date(2023, 4, 17), "month") == "2023-04"


def test_a_date_generalises_to_its_year() -> None:
    assert generalise_date(date(2023, 4, 17), "year") == "2023"


def test_a_date_generalises_to_its_five_year_span() -> None:
    assert generalise_date(date(2023, 4, 17), "5-year") == "2020-2024"


def test_a_date_refuses_an_unknown_level() -> None:
    with pytest.raises(DeidError):
        generalise_date(date(2023, 4, 17), "week")  # type: ignore[arg-type]


def test_a_chinese_icd10_code_generalises_to_its_category() -> None:
    assert generalise_icd10("c34.900x001") == "C34"


def test_an_icd10_code_without_its_dot_generalises_to_its_category() -> None:
    assert generalise_icd10("C341") == "C34"


def test_an_icd10_code_generalises_to_its_subcategory_at_level_4() -> None:
    assert generalise_icd10("C34.900x001", level=4) == "C34.9"


def test_a_code_that_is_not_icd10_is_refused() -> None:
    with pytest.raises(CodeError):
        generalise_icd10("D3A")


def test_a_district_code_generalises_to_its_city_code() -> None:
    assert generalise_place("320506", "city") == "320500"


def test_a_district_code_generalises_to_its_province_code() -> None:
    assert generalise_place("320506", "province") == "320000"


def test_a_district_name_generalises_to_its_city_name() -> None:
    assert generalise_place("吴中区", "city") == "苏州市"


def test_a_district_name_generalises_to_its_province_name() -> None:
    assert generalise_place("吴中区", "province") == "江苏省"


def test_a_city_name_generalises_to_its_province_name() -> None:
    assert generalise_place("苏州市", "province") == "江苏省"


def test_a_municipality_district_generalises_to_the_municipality() -> None:
    assert generalise_place("海淀区", "city") == "北京市"


def test_a_province_name_has_no_city() -> None:
    with pytest.raises(DeidError, match="province"):
        generalise_place("江苏省", "city")


def test_an_unknown_district_code_is_refused() -> None:
    with pytest.raises(DeidError, match="not a district code"):
        generalise_place("999999", "city")


def test_an_unknown_place_name_is_refused() -> None:
    with pytest.raises(DeidError, match="not a division"):
        generalise_place("火星区", "province")


def test_a_zip_code_keeps_its_first_three_digits() -> None:
    assert zip3("10001") == "100"


def test_a_zip_plus_four_keeps_its_first_three_digits() -> None:
    assert zip3("94110-1234") == "941"


def test_a_low_population_zip3_becomes_000() -> None:
    assert zip3("03601") == "000"


def test_a_malformed_zip_code_is_refused() -> None:
    with pytest.raises(DeidError):
        zip3("1234")


@given(st.text(), st.integers(1, 1000))
def test_a_date_shift_is_within_bounds_and_never_zero(person: str, max_days: int) -> None:
    days = date_shift_days(person, KEY, max_days)
    assert -max_days <= days <= max_days
    assert days != 0


def test_one_patient_always_gets_the_same_shift() -> None:
    assert date_shift_days("ps:0001", KEY) == date_shift_days("ps:0001", KEY)


def test_patients_get_different_shifts() -> None:
    shifts = {date_shift_days(f"ps:{n:04d}", KEY) for n in range(50)}
    assert len(shifts) > 40


def test_a_date_shift_of_one_day_is_minus_one_or_plus_one() -> None:
    assert {date_shift_days(f"ps:{n:04d}", KEY, max_days=1) for n in range(50)} == {-1, 1}


@given(st.text(), dates, dates)
def test_every_date_of_one_patient_moves_by_the_same_days(
    person: str, first: date, second: date
) -> None:
    days = date_shift_days(person, KEY)
    assert shift_date(second, days) - shift_date(first, days) == second - first


def test_shift_date_moves_a_date_by_the_given_days() -> None:
    assert shift_date(date(2023, 12, 30), 3) == date(2024, 1, 2)


def test_suppress_removes_the_value() -> None:
    assert suppress("张三") is None


def test_a_district_written_after_its_province_and_city_generalises() -> None:
    assert generalise_place("江苏省苏州市吴中区", "city") == "苏州市"
    assert generalise_place("北京市海淀区", "city") == "北京市"
    assert generalise_place("江苏省苏州市", "province") == "江苏省"
