"""Hospitals differ in case mix and calibration; generation streams and is reproducible."""

from __future__ import annotations

import itertools
import statistics
import time
from collections.abc import Iterator

import pytest

from medspace.synth import build_shared_pool, generate_hospital, profiles_for
from medspace.synth.clinical import age_on
from medspace.synth.population import hospital_sizes
from medspace.synth.profiles import DEFAULT_PROFILES, hospital_id, hospital_index
from medspace.synth.records import PatientRecord

PROFILES = {p.id: p for p in DEFAULT_PROFILES}


def _records(hospital: str, n: int, seed: int = 3) -> list[PatientRecord]:
    profiles = profiles_for(5)
    pool = build_shared_pool(profiles, hospital_sizes(profiles, n), seed)
    return list(generate_hospital(PROFILES[hospital], n, seed, pool))


@pytest.fixture(scope="module")
def tertiary() -> list[PatientRecord]:
    return _records("hospital-a", 3000)


@pytest.fixture(scope="module")
def primary() -> list[PatientRecord]:
    return _records("hospital-d", 3000)


def _prevalence(records: list[PatientRecord], code: str) -> float:
    return sum(any(d.code == code for d in r.diagnoses) for r in records) / len(records)


def test_tertiary_centre_sees_more_cancer_and_primary_care_more_hypertension(
    tertiary: list[PatientRecord], primary: list[PatientRecord]
) -> None:
    assert _prevalence(tertiary, "C34") > 4 * _prevalence(primary, "C34")
    assert _prevalence(tertiary, "C50") > 3 * _prevalence(primary, "C50")
    assert _prevalence(primary, "I10") > 1.2 * _prevalence(tertiary, "I10")
    assert _prevalence(primary, "J44") > _prevalence(tertiary, "J44")


def test_primary_care_patients_are_older_and_rarely_admitted(
    tertiary: list[PatientRecord], primary: list[PatientRecord]
) -> None:
    def mean_age(records: list[PatientRecord]) -> float:
        ages = [age_on(r.identity.birth_date, r.encounters[0].start.date()) for r in records]
        return statistics.mean(ages)

    def inpatient_share(records: list[PatientRecord]) -> float:
        kinds = [e.kind for r in records for e in r.encounters]
        return kinds.count("inpatient") / len(kinds)

    assert mean_age(primary) > mean_age(tertiary) + 4
    assert inpatient_share(tertiary) > 5 * inpatient_share(primary)


def test_a_hospitals_lab_calibration_shifts_its_reported_values(
    tertiary: list[PatientRecord],
) -> None:
    shanghai = _records("hospital-b", 3000)

    def mean_glucose(records: list[PatientRecord]) -> float:
        return statistics.mean(
            lab.value
            for r in records
            if not any(d.code == "E11" for d in r.diagnoses)
            for lab in r.labs
            if lab.loinc == "2345-7"
        )

    # hospital-b's glucose analyser reads 4 mg/dL high; hospital-a is the reference.
    assert 2.5 < mean_glucose(shanghai) - mean_glucose(tertiary) < 5.5


def test_labs_follow_the_diagnoses(tertiary: list[PatientRecord]) -> None:
    def hba1c(diabetic: bool) -> float:
        return statistics.mean(
            lab.value
            for r in tertiary
            if any(d.code == "E11" for d in r.diagnoses) == diabetic
            for lab in r.labs
            if lab.loinc == "4548-4"
        )

    assert hba1c(True) > hba1c(False) + 1.5


def test_generation_is_lazy_and_starts_at_once_for_a_million_patients() -> None:
    profiles = profiles_for(5)
    pool = build_shared_pool(profiles, hospital_sizes(profiles, 100), 1)
    started = time.perf_counter()
    patients = generate_hospital(profiles[0], 1_000_000, 1, pool)
    assert isinstance(patients, Iterator)
    first = list(itertools.islice(patients, 100))
    assert len(first) == 100
    assert time.perf_counter() - started < 5


def test_one_hospital_regenerates_identically_on_its_own() -> None:
    def identities() -> list[tuple[str, str]]:
        return [(r.mrn, r.identity.resident_id) for r in _records("hospital-c", 200, seed=9)]

    assert identities() == identities()


def test_hospital_ids_are_stable_and_reversible() -> None:
    assert [hospital_id(i) for i in (0, 4, 25, 26, 27)] == [
        "hospital-a",
        "hospital-e",
        "hospital-z",
        "hospital-aa",
        "hospital-ab",
    ]
    assert all(hospital_index(hospital_id(i)) == i for i in range(200))
    with pytest.raises(ValueError):
        hospital_index("clinic-a")


def test_more_hospitals_than_profiles_are_perturbed_copies_elsewhere() -> None:
    profiles = profiles_for(12)
    assert profiles[:5] == list(DEFAULT_PROFILES)
    assert len({p.id for p in profiles}) == 12
    for extra in profiles[5:]:
        base = DEFAULT_PROFILES[hospital_index(extra.id) % 5]
        assert extra.level == base.level and extra.export_format == base.export_format
        assert extra.province_code != base.province_code
        assert extra.prevalence != base.prevalence
    assert profiles_for(12) == profiles


def test_a_shared_person_can_be_treated_at_three_hospitals() -> None:
    profiles = profiles_for(5)
    pool = build_shared_pool(profiles, hospital_sizes(profiles, 1000), 5)
    people = list(pool.members_of())
    assert len(people) == len(pool) > 10
    assert len(people[0].hospitals) == 3
    assert all(2 <= len(p.hospitals) <= 3 for p in people)
    assert all(len(set(p.hospitals)) == len(p.hospitals) for p in people)
    for profile in profiles:
        members = list(pool.members_of(profile.id))
        assert len(members) == pool.count_of(profile.id)
        assert members == [p for p in people if profile.id in p.hospitals]
