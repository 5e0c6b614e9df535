"""Code forms: LOINC codes carry a check digit, and ICD-10 codes (WHO and the Chinese clinical
version) are kept in one form with impossible categories and extensions refused."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medspace.store.codes import (
    ICD10_PATTERN,
    CodeError,
    icd10_chapter,
    loinc_check_digit,
    normalise_icd10,
    normalise_icd10_prefix,
    normalise_loinc,
)


@pytest.mark.parametrize("code", ["2345-7", "718-7", "4548-4", "2160-0", "11506-3", "34111-5",
                                  "1554-5", "2093-3", "6690-2"])
def test_real_loinc_codes_pass_their_check_digit(code: str) -> None:
    assert normalise_loinc(code) == code


def test_the_loinc_manuals_worked_example() -> None:
    assert loinc_check_digit("12345") == 5


@pytest.mark.parametrize("code", ["2345-8", "718-1", "4584-4"])
def test_a_mistyped_loinc_code_is_refused_naming_the_right_digit(code: str) -> None:
    with pytest.raises(CodeError, match="check digit"):
        normalise_loinc(code)


@pytest.mark.parametrize("code", ["2345", "ABC-1", "12345678-1", "2345-77", ""])
def test_malformed_loinc_codes_are_refused(code: str) -> None:
    with pytest.raises(CodeError, match="not a LOINC code"):
        normalise_loinc(code)


@pytest.mark.parametrize(
    ("code", "stored"),
    [
        ("C34.9", "C34.9"),
        ("C349", "C34.9"),
        ("c34.1", "C34.1"),
        ("I10", "I10"),
        ("S82.01", "S82.01"),
        ("U07.1", "U07.1"),
        ("U82.1", "U82.1"),
        ("U80.0", "U80.0"),
        ("A17.0†", "A17.0"),
        ("G01*", "G01"),
        ("A17.0✝", "A17.0"),
        ("I10X", "I10"),
        ("Ｃ３４．９", "C34.9"),
    ],
)
def test_who_icd10_codes_are_stored_in_one_form(code: str, stored: str) -> None:
    assert normalise_icd10(code) == stored


@pytest.mark.parametrize(
    ("code", "stored"),
    [
        ("C34.900x001", "C34.900X001"),
        ("J18.900", "J18.900"),
        ("I10.x00x002", "I10.X00X002"),
        ("I10.X00X002", "I10.X00X002"),
        ("i10x00x002", "I10.X00X002"),
        ("A00.000", "A00.000"),
        ("N19.x03", "N19.X03"),
        ("U07.100x002", "U07.100X002"),
        ("E14.900x001", "E14.900X001"),
        ("N18.300x001+", "N18.300X001"),
        ("J98.414", "J98.414"),
    ],
)
def test_chinese_clinical_version_codes_keep_their_extension_with_an_upper_case_x(
    code: str, stored: str
) -> None:
    assert normalise_icd10(code) == stored


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("U99", "no ICD-10 chapter has the category U99"),
        ("U50.0", "no ICD-10 chapter has the category U50"),
        ("D49", "no ICD-10 chapter has the category D49"),
        ("H96", "no ICD-10 chapter has the category H96"),
        ("K94.1", "no ICD-10 chapter has the category K94"),
        ("V00", "no ICD-10 chapter has the category V00"),
        ("Y99", "no ICD-10 chapter has the category Y99"),
        ("D9A", "D9A is an ICD-10-CM form"),
        ("C4A.0", "C4A is an ICD-10-CM form"),
        ("I10.x0", "an x only before two digits"),
        ("C34.900x01", "three-digit extension"),
        ("C34.900x0011", "three-digit extension"),
        ("C34.9001", "after the dot"),
        ("T36.0X1A", "after the dot"),
        ("C34.-", "after the dot"),
        ("N18.300x001+D63.8*", "two ICD-10 codes"),
        ("M8140/3", "after the dot"),
        ("", "not an ICD-10 code"),
        ("lung cancer", "not an ICD-10 code"),
    ],
)
def test_impossible_icd10_codes_are_refused_saying_why(code: str, reason: str) -> None:
    with pytest.raises(CodeError, match=re.escape(reason)):
        normalise_icd10(code)


@pytest.mark.parametrize(
    ("code", "chapter"),
    [
        ("A00.0", "I"), ("B99", "I"), ("C34.900x001", "II"), ("D48.9", "II"), ("D50.0", "III"),
        ("E11.900", "IV"), ("H59.0", "VII"), ("H60.0", "VIII"), ("I10.x00x002", "IX"),
        ("J18.900", "X"), ("K93.8", "XI"), ("S82.01", "XIX"), ("T98.3", "XIX"), ("V01.0", "XX"),
        ("Y98", "XX"), ("Z99.9", "XXI"), ("U07.1", "XXII"), ("U85", "XXII"),
    ],
)
def test_a_codes_chapter_is_the_who_chapter_of_its_category(code: str, chapter: str) -> None:
    assert icd10_chapter(code) == chapter


@pytest.mark.parametrize(
    ("prefix", "stored"), [("C", "C"), ("c3", "C3"), ("C34.", "C34."), ("i10.x0", "I10.X0")]
)
def test_icd10_prefixes_are_leading_parts_of_stored_codes(prefix: str, stored: str) -> None:
    assert normalise_icd10_prefix(prefix) == stored


@pytest.mark.parametrize("prefix", ["U99", "D9A", "C34.9A", "C34.900X0011"])
def test_icd10_prefixes_no_code_can_start_with_are_refused(prefix: str) -> None:
    with pytest.raises(CodeError):
        normalise_icd10_prefix(prefix)


_ICD10_LIKE = st.builds(
    "".join,
    st.lists(
        st.sampled_from([*"ACDHIKUVYZcx0123456789.X†*+ ", "Ｃ", "x00", "x001", "900"]),
        max_size=12,
    ),
)


@given(st.one_of(_ICD10_LIKE, st.text(max_size=16)))
def test_any_text_is_refused_or_becomes_a_stable_code_with_a_chapter(text: str) -> None:
    try:
        code = normalise_icd10(text)
    except CodeError:
        return
    assert re.fullmatch(ICD10_PATTERN, code)
    assert normalise_icd10(code) == code
    assert icd10_chapter(code)
    assert normalise_icd10_prefix(code) == code
