"""Code forms: LOINC codes carry a check digit, and a mistyped one is refused."""

from __future__ import annotations

import pytest

from medspace.store.codes import CodeError, loinc_check_digit, normalise_loinc


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
