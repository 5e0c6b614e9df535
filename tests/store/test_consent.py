"""Consent decides who a computation counts: the decision in force, or the purpose's default."""

from __future__ import annotations

import datetime as dt

import pytest

from medspace.store.cohort import Cohort, CohortError, cohort_size, count_by, members
from medspace.store.consent import ConsentError, ConsentRule, history, record
from medspace.store.engine import ClinicalStore
from medspace.store.load import load
from tests.store.data import pid

DAY = dt.date(2026, 3, 1)
EVERYONE = Cohort(as_of=DAY)


@pytest.fixture
def persons(store: ClinicalStore) -> ClinicalStore:
    load(store, {"person": [{"person_id": pid(n), "sex": "female" if n % 2 else "male",
                             "birth_year": 1960 + n, "birth_month": 1} for n in range(1, 11)]})
    return store


def _rule(purpose: str = "research", default: str = "opt-out", on: dt.date = DAY) -> ConsentRule:
    return ConsentRule(purpose=purpose, on=on, default=default)  # type: ignore[arg-type]


def test_without_any_decision_opt_out_counts_everyone_and_opt_in_no_one(
    persons: ClinicalStore,
) -> None:
    assert cohort_size(persons, EVERYONE, _rule(default="opt-out")) == 10
    assert cohort_size(persons, EVERYONE, _rule(default="opt-in")) == 0


def test_a_revocation_takes_exactly_that_patient_out_from_its_day_on(
    persons: ClinicalStore,
) -> None:
    record(persons, pid(3), "research", "deny", start=DAY, recorded_ms=1)
    assert cohort_size(persons, EVERYONE, _rule()) == 9
    assert cohort_size(persons, EVERYONE, _rule(on=DAY - dt.timedelta(days=1))) == 10
    assert cohort_size(persons, EVERYONE, _rule(purpose="public-health")) == 10


def test_a_grant_recorded_after_a_revocation_brings_the_patient_back(
    persons: ClinicalStore,
) -> None:
    record(persons, pid(3), "research", "deny", start=DAY, recorded_ms=1)
    record(persons, pid(3), "research", "permit", start=DAY, recorded_ms=2)
    assert cohort_size(persons, EVERYONE, _rule()) == 10
    record(persons, pid(3), "research", "deny", start=DAY, recorded_ms=3)
    assert cohort_size(persons, EVERYONE, _rule()) == 9


def test_opt_in_counts_only_permits_in_force(persons: ClinicalStore) -> None:
    record(persons, pid(1), "commercial", "permit", start=DAY, recorded_ms=1)
    record(persons, pid(2), "commercial", "permit", start=DAY - dt.timedelta(days=30),
           end=DAY - dt.timedelta(days=1), recorded_ms=1)
    assert cohort_size(persons, EVERYONE, _rule("commercial", "opt-in")) == 1


def test_decisions_recorded_together_let_the_deny_win(persons: ClinicalStore) -> None:
    record(persons, pid(4), "research", "permit", start=DAY, recorded_ms=5)
    record(persons, pid(4), "research", "deny", start=DAY, recorded_ms=5)
    assert cohort_size(persons, EVERYONE, _rule()) == 9


def test_an_imported_decision_without_a_recording_time_yields_to_a_recorded_one(
    persons: ClinicalStore,
) -> None:
    load(persons, {"consent": [{"person_id": pid(5), "purpose": "research", "decision": "deny",
                                "start_date": DAY - dt.timedelta(days=400), "end_date": None}]})
    assert cohort_size(persons, EVERYONE, _rule()) == 9
    record(persons, pid(5), "research", "permit", start=DAY - dt.timedelta(days=2), recorded_ms=1)
    assert cohort_size(persons, EVERYONE, _rule()) == 10


def test_counts_by_group_leave_out_the_revoked_patient(persons: ClinicalStore) -> None:
    before = dict((sex, n) for sex, n in count_by(persons, EVERYONE, ["sex"], consent=_rule()))
    record(persons, pid(1), "research", "deny", start=DAY, recorded_ms=1)
    after = dict((sex, n) for sex, n in count_by(persons, EVERYONE, ["sex"], consent=_rule()))
    assert before["female"] - after["female"] == 1 and before["male"] == after["male"]


def test_history_lists_every_decision_in_recorded_order(persons: ClinicalStore) -> None:
    record(persons, pid(6), "research", "deny", start=DAY, recorded_ms=2)
    record(persons, pid(6), "emergency", "permit", start=DAY, end=DAY + dt.timedelta(days=9),
           recorded_ms=7)
    listed = history(persons, pid(6))
    assert [(r.purpose, r.decision, r.recorded_ms) for r in listed] == [
        ("research", "deny", 2), ("emergency", "permit", 7)]
    assert listed[1].end_date == DAY + dt.timedelta(days=9)
    assert history(persons, pid(7)) == []


@pytest.mark.parametrize(
    ("purpose", "decision", "end", "person", "words"),
    [
        ("marketing", "deny", None, pid(1), "unknown purpose"),
        ("research", "maybe", None, pid(1), "a decision is permit or deny"),
        ("research", "deny", DAY - dt.timedelta(days=1), pid(1), "ends"),
        ("research", "deny", None, pid(99), "no such patient"),
    ],
)
def test_a_decision_that_makes_no_sense_is_refused_and_nothing_is_recorded(
    persons: ClinicalStore, purpose: str, decision: str, end: dt.date | None, person: str,
    words: str,
) -> None:
    with pytest.raises(ConsentError, match=words):
        record(persons, person, purpose, decision, start=DAY, end=end, recorded_ms=1)
    assert persons.row_counts()["consent"] == 0


def test_a_rule_for_an_unknown_purpose_or_default_is_refused() -> None:
    with pytest.raises(ConsentError, match="unknown purpose"):
        _rule(purpose="marketing")
    with pytest.raises(ConsentError, match="opt-in or opt-out"):
        _rule(default="ask")


def test_members_lists_the_cohorts_person_ids_in_order_up_to_the_limit(
    persons: ClinicalStore,
) -> None:
    found = members(persons, Cohort(as_of=DAY, sex="female"), limit=3)
    assert found == sorted(found) and len(found) == 3
    assert all(p in {pid(n) for n in range(1, 11, 2)} for p in found)
    with pytest.raises(CohortError, match="limit"):
        members(persons, EVERYONE, limit=0)
