"""Canonical code forms (ICD-10, ATC, LOINC) shared by loading and querying.

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


def normalise_atc(code: str) -> str:
    """Upper-case ATC code or level prefix (``l01xe`` → ``L01XE``)."""
    canonical = _squash(code)
    if not re.fullmatch(ATC_PATTERN, canonical):
        raise CodeError(f"not an ATC code or level: {code!r}")
    return canonical
