"""Canonical code forms (ICD-10, ATC, LOINC with its check digit) shared by loading and querying.

A code is stored in one canonical form and a cohort's prefixes are put into the same form, so
that ``c34.1``, ``C341`` and ``C34.1`` all mean the same thing and prefix matching is a plain
``starts with``. The patterns also fence what may enter SQL: a prefix that does not match is
refused before any query is built.
"""

from __future__ import annotations

import re

#: ICD-10 (WHO and the Chinese clinical extension, e.g. ``C34.900X001``), upper-case, with dot.
ICD10_PATTERN = r"^[A-Z][0-9][0-9A-Z](\.[0-9A-Z]{1,8})?$"
ICD10_PREFIX_PATTERN = r"^[A-Z]([0-9]([0-9A-Z](\.[0-9A-Z]{0,8})?)?)?$"
#: ATC at any of its five levels; a prefix is also a whole level.
ATC_PATTERN = r"^[A-Z]([0-9]{2}([A-Z]([A-Z]([0-9]{2})?)?)?)?$"
LOINC_PATTERN = r"^[0-9]{1,7}-[0-9]$"
#: Any other code (procedures, observations, allergens, reactions): no spaces, no free text.
CODE_PATTERN = r"^[0-9A-Za-z][0-9A-Za-z.:_\-]{0,63}$"
#: UCUM-like units such as ``mmol/L``, ``10*9/L`` or ``%``.
UNIT_PATTERN = r"^[0-9A-Za-z%/^.*_\-\[\]{}()+]{1,32}$"


class CodeError(ValueError):
    """A code or prefix that is not in a recognised form."""


def _squash(code: str) -> str:
    return re.sub(r"\s", "", code).upper()


def normalise_icd10(code: str) -> str:
    """Upper-case, no spaces, a dot after the category (``c341`` → ``C34.1``)."""
    canonical = _squash(code)
    if "." not in canonical and len(canonical) > 3:
        canonical = f"{canonical[:3]}.{canonical[3:]}"
    if not re.fullmatch(ICD10_PATTERN, canonical):
        raise CodeError(f"not an ICD-10 code: {code!r}")
    return canonical


def normalise_icd10_prefix(prefix: str) -> str:
    """A cohort's ICD-10 prefix in the stored form (``c341`` → ``C34.1``, ``C3`` stays)."""
    canonical = _squash(prefix)
    if "." not in canonical and len(canonical) > 3:
        canonical = f"{canonical[:3]}.{canonical[3:]}"
    if not re.fullmatch(ICD10_PREFIX_PATTERN, canonical):
        raise CodeError(f"not an ICD-10 prefix: {prefix!r}")
    return canonical


def loinc_check_digit(number: str) -> int:
    """LOINC's mod-10 check digit of the part before the hyphen (it is the Luhn algorithm)."""
    total = 0
    for position, digit in enumerate(reversed(number)):
        value = int(digit) * (2 if position % 2 == 0 else 1)
        total += value - 9 if value > 9 else value
    return (10 - total % 10) % 10


def normalise_loinc(code: str) -> str:
    """A LOINC code whose check digit holds (``2345-7``); a mistyped code is refused."""
    canonical = _squash(code)
    if not re.fullmatch(LOINC_PATTERN, canonical):
        raise CodeError(f"not a LOINC code: {code!r}")
    number, check = canonical.split("-")
    if loinc_check_digit(number) != int(check):
        raise CodeError(f"LOINC check digit of {code!r} should be {loinc_check_digit(number)}")
    return canonical


def normalise_atc(code: str) -> str:
    """Upper-case ATC code or level prefix (``l01xe`` → ``L01XE``)."""
    canonical = _squash(code)
    if not re.fullmatch(ATC_PATTERN, canonical):
        raise CodeError(f"not an ATC code or level: {code!r}")
    return canonical
