"""Cohort sizes and grouped counts on hand-made data (ages worked out in tests/store/data.py)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from medspace.store.cohort import Cohort, cohort_size, count_by
from medspace.store.engine import ClinicalStore
from medspace.store.load import load
from tests.store.conftest import drop_schemas, postgres_store
from tests.store.data import AS_OF, clinical_batch


@pytest.fixture
def loaded(store: ClinicalStore) -> ClinicalStore:
    load(store, clinical_batch())
    return store


def test_condition_prefix_cohort_counts_codes_recorded_up_to_as_of(loaded: ClinicalStore) -> None:
    # persons 1, 2, 3 (recorded on as_of itself) and 7; person 4's C34.1 comes a day later
    assert cohort_size(loaded, Cohort(as_of=AS_OF, condition_prefixes=["C34"])) == 4
    next_day = AS_OF + dt.timedelta(days=1)
    assert cohort_size(loaded, Cohort(as_of=next_day, condition_prefixes=["C34"])) == 5


def test_count_by_sex_and_age_band_gives_the_hand_worked_counts(loaded: ClinicalStore) -> None:
    cohort = Cohort(as_of=AS_OF, condition_prefixes=["C34"])
    assert count_by(loaded, cohort, ["sex", "age_band"]) == [
        ("female", "30-39", 2),
        ("male", "40-49", 1),
        ("other", "20-29", 1),
    ]


def test_age_bands_put_each_boundary_age_in_the_right_band(loaded: ClinicalStore) -> None:
    everyone = Cohort(as_of=AS_OF)
    assert count_by(loaded, everyone, ["age_band"], age_band_width=5) == [
        ("20-24", 1),
        ("30-34", 2),
        ("35-39", 2),
        ("40-44", 1),
        ("50-54", 1),
    ]


def test_person_not_yet_born_at_as_of_is_never_counted(loaded: ClinicalStore) -> None:
    assert cohort_size(loaded, Cohort(as_of=AS_OF)) == 7
    assert cohort_size(loaded, Cohort(as_of=dt.date(2025, 1, 1))) == 8


def test_age_range_is_inclusive_at_both_ends(loaded: ClinicalStore) -> None:
    # 35 (person 1), 39 (person 2), 40 (person 3, born in the as_of month); 34s and 54 out
    assert cohort_size(loaded, Cohort(as_of=AS_OF, age_min=35, age_max=40)) == 3
    assert cohort_size(loaded, Cohort(as_of=AS_OF, age_min=35, age_max=39)) == 2
    assert cohort_size(loaded, Cohort(as_of=AS_OF, age_min=34, age_max=34)) == 2


def test_prefixes_match_whole_leading_characters_only(loaded: ClinicalStore) -> None:
    def size(*prefixes: str) -> int:
        return cohort_size(loaded, Cohort(as_of=AS_OF, condition_prefixes=list(prefixes)))

    assert size("C34.1") == 1
    assert size("c341") == 1  # normalised to C34.1
    assert size("C3") == 4
    assert size("C4") == 1
    assert size("C") == 6
    assert size("C50", "E11") == 2
    assert size("C34.11") == 0


def test_drug_and_condition_criteria_must_both_hold(loaded: ClinicalStore) -> None:
    cohort = Cohort(as_of=AS_OF, condition_prefixes=["C34"], drug_atc_prefixes=["L01XE"])
    assert cohort_size(loaded, cohort) == 2
    assert cohort_size(loaded, Cohort(as_of=AS_OF, drug_atc_prefixes=["L01"])) == 3


def test_sex_filter_and_treatment_response(loaded: ClinicalStore) -> None:
    assert cohort_size(loaded, Cohort(as_of=AS_OF, condition_prefixes=["C34"], sex="female")) == 2
    responders = Cohort(
        as_of=AS_OF,
        condition_prefixes=["C34"],
        observation_code="treatment-response",
        observation_values=["CR", "PR"],
    )
    assert cohort_size(loaded, responders) == 2


def test_an_empty_cohort_has_no_groups(loaded: ClinicalStore) -> None:
    cohort = Cohort(as_of=AS_OF, condition_prefixes=["Z99"])
    assert cohort_size(loaded, cohort) == 0
    assert count_by(loaded, cohort, ["sex"]) == []


@pytest.fixture
def both_engines(tmp_path: Path) -> Iterator[tuple[ClinicalStore, ClinicalStore]]:
    schemas: list[tuple[str, str]] = []
    duck = ClinicalStore.open(tmp_path / "clinical.duckdb")
    pg = postgres_store(schemas)
    try:
        for opened in (duck, pg):
            opened.create_schema()
            load(opened, clinical_batch())
        yield duck, pg
    finally:
        duck.close()
        pg.close()
        drop_schemas(schemas)


@pytest.mark.postgres
def test_duckdb_and_postgresql_give_identical_answers(
    both_engines: tuple[ClinicalStore, ClinicalStore],
) -> None:
    duck, pg = both_engines
    cohorts = [
        Cohort(as_of=AS_OF),
        Cohort(as_of=AS_OF, condition_prefixes=["C34"]),
        Cohort(as_of=AS_OF, drug_atc_prefixes=["L01"], age_min=30),
        Cohort(as_of=dt.date(2030, 1, 1), sex="male"),
    ]
    for cohort in cohorts:
        assert cohort_size(duck, cohort) == cohort_size(pg, cohort)
        for width in (1, 5, 10):
            by = ["sex", "age_band"]
            assert count_by(duck, cohort, by, width) == count_by(pg, cohort, by, width)
