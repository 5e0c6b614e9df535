"""Malformed cohorts and count requests are refused before any SQL is built (fail closed)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medspace.store.codes import ICD10_PREFIX_PATTERN
from medspace.store.cohort import Cohort, CohortError, count_by
from medspace.store.engine import ClinicalStore
from tests.store.data import AS_OF


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"condition_prefixes": ["C34' OR 1=1 --"]}, "ICD-10 prefix"),
        ({"condition_prefixes": ["C3%"]}, "ICD-10 prefix"),
        ({"condition_prefixes": "C34"}, "list of codes"),
        ({"condition_prefixes": [34]}, "must be a string"),
        ({"drug_atc_prefixes": ["L0"]}, "ATC"),
        ({"age_min": -1}, "age_min"),
        ({"age_max": 151}, "age_max"),
        ({"age_min": True}, "age_min"),
        ({"age_min": 35.5}, "age_min"),
        ({"age_min": 41, "age_max": 40}, "greater than"),
        ({"sex": "F"}, "sex must be one of"),
        ({"observation_values": ["CR"]}, "need an observation_code"),
        ({"observation_code": "response; drop table person"}, "not a code"),
    ],
)
def test_malformed_cohorts_are_refused(fields: dict[str, Any], reason: str) -> None:
    with pytest.raises(CohortError, match=reason):
        Cohort(as_of=AS_OF, **fields)


def test_as_of_must_be_a_date_not_a_datetime_or_text() -> None:
    with pytest.raises(CohortError, match="as_of"):
        Cohort(as_of=dt.datetime(2024, 1, 1))  # type: ignore[arg-type]
    with pytest.raises(CohortError, match="as_of"):
        Cohort(as_of="2024-01-01")  # type: ignore[arg-type]


def test_cohort_from_json_refuses_unknown_fields() -> None:
    with pytest.raises(CohortError, match="unknown cohort fields: where"):
        Cohort.from_mapping({"as_of": "2024-06-15", "where": "1=1"})
    with pytest.raises(CohortError, match="as_of is required"):
        Cohort.from_mapping({"sex": "male"})
    with pytest.raises(CohortError, match="ISO date"):
        Cohort.from_mapping({"as_of": "June 2024"})


def test_cohort_from_json_normalises_like_the_constructor() -> None:
    cohort = Cohort.from_mapping(
        {"as_of": "2024-06-15", "condition_prefixes": ["c341", "C34.1"], "age_min": 35}
    )
    assert cohort == Cohort(as_of=AS_OF, condition_prefixes=("C34.1",), age_min=35)


@pytest.mark.parametrize(
    ("group_by", "width", "reason"),
    [
        (["name"], 10, "group keys must be taken from"),
        (["sex", "postcode"], 10, "group keys must be taken from"),
        ([], 10, "group keys must be taken from"),
        ("sex", 10, "list of group keys"),
        (["sex", "sex"], 10, "repeat"),
        (["age_band"], 0, "age_band_width"),
        (["age_band"], 2.5, "age_band_width"),
    ],
)
def test_unknown_group_keys_and_bad_widths_are_refused(
    store: ClinicalStore, group_by: Any, width: Any, reason: str
) -> None:
    with pytest.raises(CohortError, match=reason):
        count_by(store, Cohort(as_of=AS_OF), group_by, age_band_width=width)


@given(st.text(max_size=12))
def test_any_text_as_a_prefix_is_either_refused_or_a_clean_code(text: str) -> None:
    try:
        cohort = Cohort(as_of=AS_OF, condition_prefixes=[text], drug_atc_prefixes=[])
    except CohortError:
        return
    (prefix,) = cohort.condition_prefixes
    assert re.fullmatch(ICD10_PREFIX_PATTERN, prefix)
