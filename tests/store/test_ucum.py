"""UCUM units: lab units are kept in one canonical c/s form, and anything else is refused."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medspace.store.codes import UNIT_PATTERN, CodeError
from medspace.store.ucum import normalise_unit
from medspace.store.ucum_atoms import METRIC_ATOMS, NON_METRIC_ATOMS, PREFIXES

LAB_UNITS = [
    "mmol/L", "mg/dL", "10*9/L", "10*12/L", "g/L", "%", "U/L", "[IU]/L", "mm[Hg]", "kg/m2",
    "/min", "{beats}/min", "mL/min/{1.73_m2}", "umol/L", "fL", "pg", "s", "Cel", "[degF]", "1",
    "mL/min/1.73.m2", "10*3/uL", "ng/mL", "mU/L", "m[IU]/L", "meq/L", "mosm/kg", "mm/h",
    "mmol/mol", "%{HbA1c}", "[pH]", "cm[H2O]", "mL/(24.h)", "g/(8.h){shift}", "100{cells}",
    "10*-3", "m.s-1", "kBq", "[in_i'H2O]", "{#}/[HPF]", "%/100{WBC}", "kat/L", "g%",
]


@pytest.mark.parametrize("unit", LAB_UNITS)
def test_lab_units_in_ucum_are_kept_as_they_are(unit: str) -> None:
    assert normalise_unit(unit) == unit


@pytest.mark.parametrize(
    ("unit", "canonical"),
    [
        ("mg/dl", "mg/dL"),
        ("ml", "mL"),
        ("[iU]/L", "[IU]/L"),
        ("10^9/L", "10*9/L"),
        ("m+2", "m2"),
        ("s-01", "s-1"),
        ("  mmol/L ", "mmol/L"),
    ],
)
def test_ucum_synonyms_get_one_spelling(unit: str, canonical: str) -> None:
    assert normalise_unit(unit) == canonical


@pytest.mark.parametrize(
    ("unit", "canonical"),
    [
        ("mmHg", "mm[Hg]"),
        ("cmH2O", "cm[H2O]"),
        ("°C", "Cel"),
        ("℃", "Cel"),
        ("°F", "[degF]"),
        ("IU/L", "[IU]/L"),
        ("mIU/mL", "m[IU]/mL"),
        ("µIU/mL", "u[IU]/mL"),
        ("mEq/L", "meq/L"),
        ("mOsm/kg", "mosm/kg"),
        ("mcg/L", "ug/L"),
        ("mL/hr", "mL/h"),
        ("x10^9/L", "10*9/L"),
        ("×10^12/L", "10*12/L"),
        ("x10*9/L", "10*9/L"),
        ("10E9/L", "10*9/L"),
        ("10⁹/L", "10*9/L"),
        ("kg/m²", "kg/m2"),
        ("µmol/L", "umol/L"),
        ("μmol/L", "umol/L"),
        ("bpm", "/min"),
        ("beats/min", "/min"),
    ],
)
def test_common_lab_spellings_are_mapped_to_ucum(unit: str, canonical: str) -> None:
    assert normalise_unit(unit) == canonical


@pytest.mark.parametrize(
    ("unit", "reason"),
    [
        ("mmol/LL", "unknown unit 'LL'"),
        ("foo", "unknown unit 'foo'"),
        ("mg//dL", "a unit is missing at position 4"),
        ("mg/", "a unit is missing at the end"),
        ("", "empty"),
        ("   ", "empty"),
        ("m" * 33, "more than 32"),
        ("mg per dL", "contains a space"),
        ("kmin", "'min' is not a metric unit and takes no prefix"),
        ("k%", "'%' is not a metric unit"),
        ("(mg", r"'\(' is not closed"),
        ("mg)", "unexpected '\\)'"),
        ("[IU/L", r"'\[' is not closed"),
        ("{beats/min", "'{' is not closed"),
        ("m0", "exponent of 'm' is 0"),
        ("0/L", "a factor is a whole number"),
        ("10-1", "takes no exponent"),
        ("{é}/L", "annotation"),
        ("MG/DL", "unknown unit 'DL'"),
        ("x10^", "unknown unit"),
    ],
)
def test_what_is_not_ucum_is_refused_saying_why(unit: str, reason: str) -> None:
    with pytest.raises(CodeError, match=reason):
        normalise_unit(unit)


def test_a_mapping_never_rewrites_a_valid_ucum_symbol() -> None:
    """``Pa`` is the pascal, not peta-annum, and ``cd`` the candela, not centi-day."""
    assert normalise_unit("kPa") == "kPa"
    assert normalise_unit("cd") == "cd"
    assert normalise_unit("dar") == "dar"


def test_every_atom_of_the_table_is_a_unit_and_metric_ones_take_prefixes() -> None:
    for atom in METRIC_ATOMS | NON_METRIC_ATOMS:
        assert normalise_unit(atom) in (atom, "L", "[IU]", "10*")
    for prefix in PREFIXES:
        assert normalise_unit(f"{prefix}g") == f"{prefix}g"
        with pytest.raises(CodeError, match="takes no prefix"):
            normalise_unit(f"{prefix}[lb_av]")


_PIECES = st.sampled_from(
    ["m", "g", "L", "l", "mol", "k", "u", "µ", "[IU]", "IU", "10*", "10^", "10", "2", "-1",
     ".", "/", "(", ")", "{a}", "{#}", "%", "min", "h", "Cel", "°C", "mmHg", "x", "[", "]",
     "'", "0", "+", "²"]
)
_UNIT_LIKE = st.lists(_PIECES, min_size=1, max_size=6).map("".join)


@given(st.one_of(_UNIT_LIKE, st.text(max_size=40)))
def test_any_text_is_refused_or_becomes_a_stable_unit_the_store_accepts(text: str) -> None:
    try:
        unit = normalise_unit(text)
    except CodeError:
        return
    assert re.fullmatch(UNIT_PATTERN, unit)
    assert normalise_unit(unit) == unit
