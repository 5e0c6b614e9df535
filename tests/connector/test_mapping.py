"""Row checks before loading: one bad value quarantines one record, never a whole batch."""

from __future__ import annotations

import datetime as dt

import pytest

from medspace.connector.mapping import Fact, Origin, PatientRows, PersonFacts, check_row, unit
from medspace.connector.quarantine import Rejected
from medspace.store.vault import Identity

DAY = dt.date(2024, 3, 1)
AT = Origin("export.ndjson", 1, "AllergyIntolerance")


def test_a_value_outside_a_columns_enumeration_is_rejected_naming_the_choices() -> None:
    row = {"allergy_source_value": "91936005", "severity": "fatal", "recorded_date": DAY}
    with pytest.raises(Rejected, match="one of") as caught:
        check_row("allergy", row)
    assert caught.value.reason == "invalid code"
    assert "severity='fatal'" in caught.value.detail


def test_a_consent_purpose_the_store_does_not_know_is_rejected() -> None:
    row = {"purpose": "marketing", "decision": "permit", "start_date": DAY}
    with pytest.raises(Rejected, match="purpose"):
        check_row("consent", row)


def test_a_lab_unit_is_stored_in_its_ucum_form() -> None:
    assert unit("mmHg") == "mm[Hg]"
    assert unit(" ") is None
    with pytest.raises(Rejected, match="invalid unit"):
        unit("mmol/LL")


def test_a_record_with_one_bad_fact_is_refused_whole() -> None:
    rows = PatientRows("p1", person_id="ps:" + "0" * 32)
    good = Fact("allergy", {"allergy_source_value": "91936005", "recorded_date": DAY}, AT,
                record="AllergyIntolerance/1")
    bad = Fact("allergy", {"allergy_source_value": "x y", "recorded_date": DAY}, AT,
               record="AllergyIntolerance/1")
    with pytest.raises(Rejected):
        rows.put([good, bad])
    assert rows.records == {}


def test_the_same_record_put_again_replaces_its_facts_and_counts_a_duplicate() -> None:
    rows = PatientRows("p1", person_id="ps:" + "0" * 32)
    first = Fact("allergy", {"allergy_source_value": "91936005", "recorded_date": DAY}, AT,
                 record="AllergyIntolerance/1")
    second = Fact("allergy", {"allergy_source_value": "300916003", "recorded_date": DAY}, AT,
                  record="AllergyIntolerance/1")
    rows.put([first])
    rows.put([second])
    assert rows.records == {"AllergyIntolerance/1": [second]}
    assert rows.duplicates == 1


def test_an_event_in_the_future_is_implausible_but_a_planned_end_is_not() -> None:
    future = dt.date.today() + dt.timedelta(days=30)
    with pytest.raises(Rejected, match="in the future") as caught:
        check_row("measurement", {"measurement_source_value": "2345-7", "measurement_date": future})
    assert caught.value.reason == "implausible date"
    check_row("drug_exposure", {"drug_source_value": "A10BA02", "start_date": DAY,
                                "end_date": future})


def test_a_fact_dated_before_its_patients_birth_year_is_refused() -> None:
    rows = PatientRows("p1", person=PersonFacts(Identity("王芳", "MRN-1"), "female",
                                                dt.date(1990, 5, 1), None))
    old = Fact("allergy", {"allergy_source_value": "91936005",
                           "recorded_date": dt.date(1909, 5, 1)}, AT)
    with pytest.raises(Rejected, match="before the patient's birth year"):
        rows.put([old])
