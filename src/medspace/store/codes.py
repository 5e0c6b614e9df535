"""Canonical code forms (ICD-10, ATC, LOINC with its check digit) shared by loading and querying.

A code is stored in one canonical form and a cohort's prefixes are put into the same form, so
that ``c34.1``, ``C341`` and ``C34.1`` all mean the same thing and prefix matching is a plain
``starts with``. The patterns also fence what may enter SQL: a prefix that does not match is
refused before any query is built.

ICD-10 codes come from WHO ICD-10 and from China's GB/T 14396-2016 and national clinical version
2.0 (国家临床版 2.0, also the basis of the insurance version), which extend a WHO code after the
dot: ``J18.900`` (subcategory .9, then two digits), ``I10.x00`` (``x`` where WHO has no
subcategory), ``C34.900x001`` (an ``x`` and three digits for a finer diagnosis). What is checked:

* the category is a letter and two digits inside a WHO chapter's range (``D49``, ``K95``,
  ``U99`` and the ICD-10-CM categories such as ``D3A`` are refused);
* after the dot, either WHO's one or two digits (``C34.9``, ``S82.01``) or the Chinese three
  characters with an optional ``x`` and three digits;
* the marks that exports copy from the tabular list are dropped: dagger ``†`` (also typed
  ``+`` in Chinese exports, or ``✝``) and asterisk ``*``; two codes in one field
  (``N18.300x001+D63.8*``) are refused rather than cut;
* full-width characters (``Ｃ３４．９``) are read as ASCII, and ``I10X`` (the filler of
  fixed-width four-character exports) is the category ``I10``.

Letters are stored upper-case, the Chinese ``x`` included (``I10.X00X002``): one spelling per
code whatever the case it was typed in, and ``X`` never stands where WHO has a letter, so
nothing is lost. Not checked, because it needs the code lists themselves (the WHO tabular list
and the Chinese national list, neither under a licence that lets the store ship them): whether a
category or subcategory exists inside its chapter (``A10``), whether an ``x`` stands only where
WHO has no subcategory, and whether an extension was issued.
"""

from __future__ import annotations

import functools
import re
import unicodedata

#: ICD-10 as stored: a category, then WHO's subcategory and fifth character (``S82.01``) or the
#: Chinese clinical version's three characters and optional extension (``C34.900X001``).
ICD10_PATTERN = r"^[A-Z][0-9]{2}(\.([0-9]{1,2}|[0-9X][0-9]{2}(X[0-9]{3})?))?$"
#: A leading part of a stored code (``C``, ``C3``, ``C34.``, ``I10.X0``).
ICD10_PREFIX_PATTERN = r"^[A-Z]([0-9]([0-9](\.([0-9X]([0-9]([0-9](X[0-9]{0,3})?)?)?)?)?)?)?$"
#: The WHO chapters by first and last category. Chapter XXII has U00-U49 and, for resistance to
#: drugs, U82-U85 since 2016 and U80-U89 before (older exports still carry U80 and U88).
ICD10_CHAPTERS: tuple[tuple[str, str, str], ...] = (
    ("A00", "B99", "I"), ("C00", "D48", "II"), ("D50", "D89", "III"), ("E00", "E90", "IV"),
    ("F00", "F99", "V"), ("G00", "G99", "VI"), ("H00", "H59", "VII"), ("H60", "H95", "VIII"),
    ("I00", "I99", "IX"), ("J00", "J99", "X"), ("K00", "K93", "XI"), ("L00", "L99", "XII"),
    ("M00", "M99", "XIII"), ("N00", "N99", "XIV"), ("O00", "O99", "XV"), ("P00", "P96", "XVI"),
    ("Q00", "Q99", "XVII"), ("R00", "R99", "XVIII"), ("S00", "T98", "XIX"),
    ("V01", "Y98", "XX"), ("Z00", "Z99", "XXI"), ("U00", "U49", "XXII"), ("U80", "U89", "XXII"),
)
#: ATC at any of its five levels; a prefix is also a whole level.
ATC_PATTERN = r"^[A-Z]([0-9]{2}([A-Z]([A-Z]([0-9]{2})?)?)?)?$"
LOINC_PATTERN = r"^[0-9]{1,7}-[0-9]$"
#: Any other code (procedures, observations, allergens, reactions): no spaces, no free text.
CODE_PATTERN = r"^[0-9A-Za-z][0-9A-Za-z.:_\-]{0,63}$"
#: The longest unit the store keeps (``mL/min/{1.73_m2}`` has 16 characters).
UNIT_MAX_LENGTH = 32
#: A unit as :func:`medspace.store.ucum.normalise_unit` writes it (``mmol/L``, ``10*9/L``, ``%``):
#: the characters of UCUM's c/s codes, with ``'`` for atoms such as ``[in_i'H2O]`` and ``#`` for
#: the count annotation ``{#}``.
UNIT_PATTERN = rf"^[0-9A-Za-z%/^.*_\-\[\]{{}}()+'#]{{1,{UNIT_MAX_LENGTH}}}$"

#: Distinct codes remembered per normaliser: an export repeats a few thousand codes millions
#: of times, and each is checked once.
CACHED_CODES = 65_536


class CodeError(ValueError):
    """A code or prefix that is not in a recognised form."""


def _squash(code: str) -> str:
    return re.sub(r"\s", "", code).upper()


#: Dagger (``+`` and ``✝`` in some exports) and asterisk of dual classification.
_ICD10_MARKS = ("†", "✝", "+", "*")
_ICD10_SUBDIVISION = re.compile(r"[0-9]{1,2}|[0-9X][0-9]{2}(X[0-9]{3})?")


@functools.lru_cache(maxsize=CACHED_CODES)
def normalise_icd10(code: str) -> str:
    """A WHO or Chinese ICD-10 code in the stored form (``c341`` → ``C34.1``, ``A17.0†`` →
    ``A17.0``, ``i10.x00x002`` → ``I10.X00X002``); what is checked is in the module docstring."""
    canonical = _squash(unicodedata.normalize("NFKC", code))
    if canonical.endswith(_ICD10_MARKS):
        canonical = canonical[:-1]
    if any(mark in canonical for mark in _ICD10_MARKS):
        raise CodeError(f"{code!r} holds two ICD-10 codes (dagger and asterisk): give each alone")
    if "." not in canonical and len(canonical) > 3:
        canonical = f"{canonical[:3]}.{canonical[3:]}"
    category, _, subdivision = canonical.partition(".")
    _check_icd10_category(category, code)
    if subdivision == "X":
        subdivision = ""
    if subdivision and not _ICD10_SUBDIVISION.fullmatch(subdivision):
        if "X" in subdivision and re.fullmatch(r"[0-9X]+", subdivision):
            raise CodeError(
                f"{code!r}: a Chinese ICD-10 code has an x only before two digits (I10.x00) and"
                " before a three-digit extension (C34.900x001)"
            )
        raise CodeError(
            f"{code!r}: after the dot an ICD-10 code has one or two digits (WHO) or three"
            " characters (Chinese clinical version)"
        )
    return f"{category}.{subdivision}" if subdivision else category


def _check_icd10_category(category: str, code: str) -> None:
    if not re.fullmatch(r"[A-Z][0-9][0-9A-Z]", category):
        raise CodeError(f"not an ICD-10 code: {code!r}")
    if not category[2].isdigit():
        raise CodeError(
            f"{code!r}: a WHO ICD-10 category is a letter and two digits ({category} is an"
            " ICD-10-CM form)"
        )
    if not any(first <= category <= last for first, last, _ in ICD10_CHAPTERS):
        raise CodeError(f"{code!r}: no ICD-10 chapter has the category {category}")


def icd10_chapter(code: str) -> str:
    """The WHO chapter of a code as its roman numeral (``C34.900x001`` → ``II``), so that a
    data-quality report can count diagnoses by chapter."""
    category = normalise_icd10(code)[:3]
    return next(numeral for first, last, numeral in ICD10_CHAPTERS if first <= category <= last)


def normalise_icd10_prefix(prefix: str) -> str:
    """A cohort's ICD-10 prefix in the stored form (``c341`` → ``C34.1``, ``C3`` stays); a
    whole category must be one that exists (``U99`` is refused)."""
    canonical = _squash(prefix)
    if "." not in canonical and len(canonical) > 3:
        canonical = f"{canonical[:3]}.{canonical[3:]}"
    if not re.fullmatch(ICD10_PREFIX_PATTERN, canonical):
        raise CodeError(f"not an ICD-10 prefix: {prefix!r}")
    if len(canonical) >= 3:
        _check_icd10_category(canonical[:3], prefix)
    return canonical


def loinc_check_digit(number: str) -> int:
    """LOINC's mod-10 check digit of the part before the hyphen (it is the Luhn algorithm)."""
    total = 0
    for position, digit in enumerate(reversed(number)):
        value = int(digit) * (2 if position % 2 == 0 else 1)
        total += value - 9 if value > 9 else value
    return (10 - total % 10) % 10


@functools.lru_cache(maxsize=CACHED_CODES)
def normalise_loinc(code: str) -> str:
    """A LOINC code whose check digit holds (``2345-7``); a mistyped code is refused."""
    canonical = _squash(code)
    if not re.fullmatch(LOINC_PATTERN, canonical):
        raise CodeError(f"not a LOINC code: {code!r}")
    number, check = canonical.split("-")
    if loinc_check_digit(number) != int(check):
        raise CodeError(f"LOINC check digit of {code!r} should be {loinc_check_digit(number)}")
    return canonical


@functools.lru_cache(maxsize=CACHED_CODES)
def normalise_atc(code: str) -> str:
    """Upper-case ATC code or level prefix (``l01xe`` → ``L01XE``)."""
    canonical = _squash(code)
    if not re.fullmatch(ATC_PATTERN, canonical):
        raise CodeError(f"not an ATC code or level: {code!r}")
    return canonical
