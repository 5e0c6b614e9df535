"""FHIR R4 resources to store rows: the types added for medication administrations, reports,
immunizations and consents, and Observations with components or coded and textual values.

The resources follow the shapes of the FHIR R4 specification's examples (``immunization-example``,
``cbc``, ``blood-pressure``, ``consent-example-*``), with codes the store can hold.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from medspace.connector import fhir_map
from medspace.connector.mapping import Fact, Origin, check_row
from medspace.connector.quarantine import Rejected

ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
CVX = "http://hl7.org/fhir/sid/cvx"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"


def _facts(resource: dict[str, Any]) -> list[Fact]:
    """The facts of ``resource``, each checked as the store would check its row."""
    kind = resource["resourceType"]
    facts = fhir_map.facts(kind, resource, Origin("export.json", 1, kind))
    for fact in facts:
        check_row(fact.table, fact.row)
    return facts


def _rejected(resource: dict[str, Any]) -> Rejected:
    with pytest.raises(Rejected) as caught:
        _facts(resource)
    return caught.value


def _coding(system: str, code: str, display: str = "") -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": display}]}


def _administration(**fields: Any) -> dict[str, Any]:
    return {
        "resourceType": "MedicationAdministration",
        "id": "medadmin0301",
        "status": "completed",
        "medicationCodeableConcept": _coding("http://www.whocc.no/atc", "L01XC02", "rituximab"),
        "subject": {"reference": "Patient/pat1"},
        "context": {"reference": "Encounter/f001"},
        "effectiveDateTime": "2015-01-15T14:30:00+01:00",
        "dosage": {"route": _coding("http://snomed.info/sct", "47625008"),
                   "dose": {"value": 500, "unit": "mg", "system": "http://unitsofmeasure.org",
                            "code": "mg"}},
        **fields,
    }


def _report(**fields: Any) -> dict[str, Any]:
    return {
        "resourceType": "DiagnosticReport",
        "id": "cbc",
        "status": "final",
        "category": [_coding("http://terminology.hl7.org/CodeSystem/v2-0074", "HM")],
        "code": _coding("http://loinc.org", "58410-2", "Complete blood count (hemogram) panel"),
        "subject": {"reference": "Patient/pat2"},
        "encounter": {"reference": "Encounter/example"},
        "effectiveDateTime": "2011-03-04T08:30:00+11:00",
        "issued": "2011-03-04T11:45:33+11:00",
        "result": [{"reference": "Observation/r1"}, {"reference": "Observation/r2"}],
        "conclusion": "Core lab",
        **fields,
    }


def _immunization(**fields: Any) -> dict[str, Any]:
    return {
        "resourceType": "Immunization",
        "id": "example",
        "status": "completed",
        "vaccineCode": {**_coding(CVX, "140", "Influenza, seasonal, injectable"),
                        "text": "Fluvax (Influenza)"},
        "patient": {"reference": "Patient/example"},
        "encounter": {"reference": "Encounter/example"},
        "occurrenceDateTime": "2013-01-10",
        "primarySource": True,
        "lotNumber": "AAJN11K",
        "expirationDate": "2015-02-15",
        **fields,
    }


def _consent(provision: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {
        "resourceType": "Consent",
        "id": "consent-example-research",
        "status": "active",
        "scope": _coding("http://terminology.hl7.org/CodeSystem/consentscope", "research"),
        "category": [_coding("http://loinc.org", "59284-0", "Patient Consent")],
        "patient": {"reference": "Patient/f001", "display": "P. van de Heuvel"},
        "dateTime": "2018-12-28",
        "policyRule": _coding("http://terminology.hl7.org/CodeSystem/v3-ActCode", "OPTOUT"),
        "provision": provision,
        **fields,
    }


def _purpose(code: str, system: str = ACT_REASON) -> dict[str, str]:
    return {"system": system, "code": code}


def _observation(**fields: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": "blood-pressure",
        "status": "final",
        "category": [_coding("http://terminology.hl7.org/CodeSystem/observation-category",
                             "vital-signs")],
        "subject": {"reference": "Patient/example"},
        "encounter": {"reference": "Encounter/example"},
        "effectiveDateTime": "2012-09-17",
        **fields,
    }


def _component(code: str, value: float) -> dict[str, Any]:
    return {"code": _coding("http://loinc.org", code),
            "valueQuantity": {"value": value, "unit": "mmHg",
                              "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}}


def _blood_pressure(**fields: Any) -> dict[str, Any]:
    return _observation(code=_coding("http://loinc.org", "85354-9", "Blood pressure panel"),
                        component=[_component("8480-6", 107), _component("8462-4", 60)],
                        **fields)


def test_every_loaded_type_has_a_mapping_and_none_is_also_not_loaded() -> None:
    for kind in fhir_map.LOADED_TYPES[1:]:
        with pytest.raises(Rejected) as caught:
            fhir_map.facts(kind, {}, Origin("export.json", 1, kind))
        assert caught.value.reason != "unsupported record", kind
    assert not set(fhir_map.LOADED_TYPES) & fhir_map.NOT_LOADED_TYPES


def test_medication_administration_becomes_a_drug_exposure_in_its_encounter() -> None:
    (fact,) = _facts(_administration())
    assert fact.table == "drug_exposure"
    assert fact.row == {"drug_source_value": "L01XC02", "start_date": dt.date(2015, 1, 15),
                        "end_date": None}
    assert fact.visit_ref == "f001"


def test_medication_administration_over_a_period_keeps_its_start_and_end() -> None:
    period = {"start": "2015-01-15T14:30:00+01:00", "end": "2015-01-16T09:00:00+01:00"}
    resource = _administration(effectivePeriod=period)
    del resource["effectiveDateTime"]
    (fact,) = _facts(resource)
    assert (fact.row["start_date"], fact.row["end_date"]) == (dt.date(2015, 1, 15),
                                                              dt.date(2015, 1, 16))


def test_medication_administration_not_done_is_rejected_with_its_status() -> None:
    rejected = _rejected(_administration(status="not-done"))
    assert (rejected.reason, rejected.detail) == (
        "not done", "MedicationAdministration.status='not-done'")


def test_medication_administration_in_rxnorm_is_rejected_naming_the_system() -> None:
    concept = _coding(RXNORM, "1535362", "sodium fluoride 0.0272 MG/MG Oral Gel")
    rejected = _rejected(_administration(medicationCodeableConcept=concept))
    assert rejected.reason == "unknown code system"
    assert rejected.detail == f"MedicationAdministration.medication: {RXNORM}"


def test_medication_statement_not_taken_is_rejected_with_its_status() -> None:
    statement = {**_administration(status="not-taken"), "resourceType": "MedicationStatement"}
    rejected = _rejected(statement)
    assert (rejected.reason, rejected.detail) == (
        "not done", "MedicationStatement.status='not-taken'")


def test_diagnostic_report_becomes_a_valueless_measurement_of_its_panel_code() -> None:
    (fact,) = _facts(_report())
    assert fact.table == "measurement"
    assert fact.row == {"measurement_source_value": "58410-2", "value_as_number": None,
                        "unit_source_value": None, "measurement_date": dt.date(2011, 3, 4)}
    assert fact.visit_ref == "example"


def test_diagnostic_report_without_an_effective_time_is_dated_when_issued() -> None:
    resource = _report(issued="2011-03-05T11:45:33+11:00")
    del resource["effectiveDateTime"]
    (fact,) = _facts(resource)
    assert fact.row["measurement_date"] == dt.date(2011, 3, 5)


def test_diagnostic_report_entered_in_error_is_rejected_with_its_status() -> None:
    rejected = _rejected(_report(status="entered-in-error"))
    assert (rejected.reason, rejected.detail) == (
        "entered in error", "DiagnosticReport.status='entered-in-error'")


def test_diagnostic_report_with_a_malformed_loinc_code_is_rejected_naming_the_field() -> None:
    rejected = _rejected(_report(code=_coding("http://loinc.org", "X9999-0")))
    assert rejected.reason == "invalid LOINC code"
    assert rejected.detail.startswith("DiagnosticReport.code: ")
    assert "X9999-0" in rejected.detail


def test_immunization_with_a_cvx_code_becomes_an_immunization_row_in_its_encounter() -> None:
    (fact,) = _facts(_immunization())
    assert fact.table == "immunization"
    assert fact.row == {"vaccine_source_value": "140", "immunization_date": dt.date(2013, 1, 10)}
    assert fact.visit_ref == "example"


def test_immunization_with_a_cvx_code_with_a_leading_zero_keeps_it() -> None:
    vaccine = _coding(CVX, "08", "Hep B, adolescent or pediatric")
    (fact,) = _facts(_immunization(vaccineCode=vaccine))
    assert fact.row["vaccine_source_value"] == "08"


def test_immunization_coded_in_atc_is_kept_in_the_stored_atc_form() -> None:
    vaccine = _coding("http://www.whocc.no/atc", "j07bb02", "influenza, inactivated, split virus")
    (fact,) = _facts(_immunization(vaccineCode=vaccine))
    assert fact.row["vaccine_source_value"] == "J07BB02"


def test_immunization_coded_in_snomed_keeps_the_snomed_code() -> None:
    vaccine = _coding("http://snomed.info/sct", "1119349007", "SARS-CoV-2 mRNA vaccine")
    (fact,) = _facts(_immunization(vaccineCode=vaccine))
    assert fact.row["vaccine_source_value"] == "1119349007"


def test_immunization_not_done_is_rejected_with_its_status() -> None:
    refused = _immunization(status="not-done", vaccineCode=_coding(CVX, "01", "DTP"),
                            statusReason=_coding(ACT_REASON, "MEDPREC", "medical precaution"))
    rejected = _rejected(refused)
    assert (rejected.reason, rejected.detail) == ("not done", "Immunization.status='not-done'")


def test_immunization_in_a_national_code_system_is_rejected_naming_the_system() -> None:
    vaccine = _coding("urn:oid:1.2.36.1.2001.1005.17", "FLUVAX", "Fluvax")
    rejected = _rejected(_immunization(vaccineCode=vaccine))
    assert rejected.reason == "unknown code system"
    assert rejected.detail == "Immunization.vaccineCode: urn:oid:1.2.36.1.2001.1005.17"


def test_immunization_with_a_code_not_in_cvx_form_is_rejected_naming_it() -> None:
    rejected = _rejected(_immunization(vaccineCode=_coding(CVX, "FLU-1")))
    assert rejected.reason == "invalid code"
    assert rejected.detail == "Immunization.vaccineCode: CVX code 'FLU-1'"


def test_immunization_without_an_occurrence_date_is_rejected_naming_the_field() -> None:
    resource = _immunization(occurrenceString="last autumn")
    del resource["occurrenceDateTime"]
    rejected = _rejected(resource)
    assert (rejected.reason, rejected.detail) == (
        "missing required field", "Immunization.occurrenceDateTime")


def test_consent_deny_research_becomes_a_deny_row() -> None:
    (fact,) = _facts(_consent({"type": "deny", "period": {"start": "2018-12-28"},
                               "purpose": [_purpose("HRESCH")]}))
    assert fact.table == "consent"
    assert fact.row == {"purpose": "research", "decision": "deny",
                        "start_date": dt.date(2018, 12, 28), "end_date": None}


def test_consent_permit_gives_one_row_per_purpose_each_once() -> None:
    purposes = [_purpose(c) for c in ("CLINTRCH", "HRESCH", "PUBHLTH", "ETREAT", "BTG")]
    facts = _facts(_consent({"type": "permit", "purpose": purposes}))
    assert [(f.row["purpose"], f.row["decision"]) for f in facts] == [
        ("research", "permit"), ("public-health", "permit"), ("emergency", "permit")]


def test_consent_for_healthcare_marketing_is_a_commercial_row() -> None:
    (fact,) = _facts(_consent({"type": "deny", "purpose": [_purpose("HMARKT")]}))
    assert fact.row["purpose"] == "commercial"


def test_consent_accepts_the_store_s_own_purpose_words() -> None:
    words = [{"code": "public-health"}, _purpose("commercial", "urn:medspace:consent-purpose")]
    facts = _facts(_consent({"type": "permit", "purpose": words}))
    assert [f.row["purpose"] for f in facts] == ["public-health", "commercial"]


def test_consent_without_a_period_starts_on_its_date_time() -> None:
    (fact,) = _facts(_consent({"type": "permit", "purpose": [_purpose("HRESCH")]}))
    assert fact.row["start_date"] == dt.date(2018, 12, 28)


def test_consent_period_end_is_kept() -> None:
    period = {"start": "1964-01-01", "end": "2016-01-01"}
    (fact,) = _facts(_consent({"type": "permit", "period": period,
                               "purpose": [_purpose("HRESCH")]}))
    assert (fact.row["start_date"], fact.row["end_date"]) == (dt.date(1964, 1, 1),
                                                              dt.date(2016, 1, 1))


@pytest.mark.parametrize("status", ["inactive", "rejected", "entered-in-error", "draft",
                                    "proposed"])
def test_consent_not_in_force_is_rejected_with_its_status(status: str) -> None:
    rule = {"type": "deny", "purpose": [_purpose("HRESCH")]}
    rejected = _rejected(_consent(rule, status=status))
    assert (rejected.reason, rejected.detail) == ("consent not in force",
                                                  f"Consent.status={status!r}")


def test_consent_for_purposes_outside_the_store_is_rejected_naming_them() -> None:
    rejected = _rejected(_consent({"type": "permit",
                                   "purpose": [_purpose("TREAT"), _purpose("HPAYMT")]}))
    assert rejected.reason == "unknown purpose"
    assert rejected.detail == (f"Consent.provision.purpose: {ACT_REASON}#TREAT, "
                               f"{ACT_REASON}#HPAYMT")


def test_consent_purposes_outside_the_store_are_dropped_beside_a_known_one() -> None:
    facts = _facts(_consent({"type": "permit", "purpose": [_purpose("TREAT"),
                                                           _purpose("HRESCH")]}))
    assert [f.row["purpose"] for f in facts] == ["research"]


def test_consent_narrowed_to_an_actor_is_refused_rather_than_widened() -> None:
    actor = {"role": _coding("http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                             "PRCP"), "reference": {"reference": "Organization/f001"}}
    rejected = _rejected(_consent({"type": "permit", "purpose": [_purpose("HRESCH")],
                                   "actor": [actor]}))
    assert rejected.reason == "unsupported consent rule"
    assert rejected.detail.startswith("Consent.provision.actor: ")


def test_consent_with_nested_exceptions_is_refused() -> None:
    exception = {"type": "deny", "data": [{"meaning": "related",
                                           "reference": {"reference": "Condition/f201"}}]}
    rejected = _rejected(_consent({"type": "permit", "purpose": [_purpose("HRESCH")],
                                   "provision": [exception]}))
    assert rejected.reason == "unsupported consent rule"
    assert rejected.detail.startswith("Consent.provision.provision: ")


def test_consent_without_a_decision_is_rejected_naming_the_field() -> None:
    rejected = _rejected(_consent({"purpose": [_purpose("HRESCH")]}))
    assert (rejected.reason, rejected.detail) == ("missing required field",
                                                  "Consent.provision.type")


def test_consent_without_purposes_is_rejected_naming_the_field() -> None:
    rejected = _rejected(_consent({"type": "deny", "period": {"start": "2018-12-28"}}))
    assert (rejected.reason, rejected.detail) == ("missing required field",
                                                  "Consent.provision.purpose")


def test_blood_pressure_gives_one_measurement_per_component() -> None:
    facts = _facts(_blood_pressure())
    assert [(f.table, f.row["measurement_source_value"], f.row["value_as_number"],
             f.row["unit_source_value"]) for f in facts] == [
        ("measurement", "8480-6", 107.0, "mm[Hg]"), ("measurement", "8462-4", 60.0, "mm[Hg]")]
    assert {(f.row["measurement_date"], f.visit_ref) for f in facts} == {
        (dt.date(2012, 9, 17), "example")}


def test_observation_with_a_value_and_components_keeps_both() -> None:
    quantity = {"value": 90, "unit": "mmHg", "code": "mm[Hg]"}
    facts = _facts(_blood_pressure(valueQuantity=quantity))
    assert [f.row["measurement_source_value"] for f in facts] == ["85354-9", "8480-6", "8462-4"]


def test_component_with_a_malformed_loinc_code_rejects_the_observation_naming_it() -> None:
    resource = _blood_pressure()
    resource["component"][1]["code"] = _coding("http://loinc.org", "8462-5")
    rejected = _rejected(resource)
    assert rejected.reason == "invalid LOINC code"
    assert rejected.detail.startswith("Observation.component[1].code: ")


def test_coded_observation_becomes_an_observation_row_with_its_answer_code() -> None:
    smoking = _observation(code=_coding("http://loinc.org", "72166-2", "Tobacco smoking status"),
                           valueCodeableConcept=_coding("http://snomed.info/sct", "8517006",
                                                        "Ex-smoker (finding)"))
    (fact,) = _facts(smoking)
    assert fact.table == "observation"
    assert fact.row == {"observation_source_value": "72166-2", "value_as_concept": "8517006",
                        "observation_date": dt.date(2012, 9, 17)}


def test_coded_observation_keeps_a_loinc_answer_code() -> None:
    answer = _coding("http://loinc.org", "LA32-8", "No")
    (fact,) = _facts(_observation(code=_coding("http://loinc.org", "93034-7"),
                                  valueCodeableConcept=answer))
    assert fact.row["value_as_concept"] == "LA32-8"


def test_coded_answer_in_another_system_keeps_the_question_without_its_answer() -> None:
    answer = {**_coding("urn:oid:2.16.840.1.113883.6.238", "2106-3", "White"), "text": "White"}
    (fact,) = _facts(_observation(code=_coding("http://loinc.org", "32624-9", "Race"),
                                  valueCodeableConcept=answer))
    assert (fact.table, fact.row["value_as_concept"]) == ("observation", None)


def test_boolean_observation_answer_is_kept_as_y_or_n() -> None:
    (fact,) = _facts(_observation(code=_coding("http://loinc.org", "93034-7"), valueBoolean=False))
    assert (fact.table, fact.row["value_as_concept"]) == ("observation", "N")


def test_string_value_is_not_kept_but_its_code_and_date_are() -> None:
    address = _observation(code=_coding("http://loinc.org", "56799-0", "Address"),
                           valueString="2852 Hackett Ferry")
    (fact,) = _facts(address)
    assert fact.row == {"measurement_source_value": "56799-0", "value_as_number": None,
                        "unit_source_value": None, "measurement_date": dt.date(2012, 9, 17)}


def test_integer_value_is_a_number_without_a_unit() -> None:
    (fact,) = _facts(_observation(code=_coding("http://loinc.org", "9279-1"), valueInteger=16))
    assert (fact.row["value_as_number"], fact.row["unit_source_value"]) == (16.0, None)


def test_quantity_value_that_is_not_a_number_is_rejected_naming_the_field() -> None:
    rejected = _rejected(_observation(code=_coding("http://loinc.org", "2339-0"),
                                      valueQuantity={"value": "5.5", "code": "mmol/L"}))
    assert (rejected.reason, rejected.detail) == (
        "invalid value", "Observation.valueQuantity.value='5.5'")


def test_observation_dated_by_its_effective_period_starts_then() -> None:
    resource = _blood_pressure(effectivePeriod={"start": "2012-09-18T09:00:00Z"})
    del resource["effectiveDateTime"]
    assert {f.row["measurement_date"] for f in _facts(resource)} == {dt.date(2012, 9, 18)}


def test_observation_entered_in_error_is_rejected_with_its_status() -> None:
    rejected = _rejected(_blood_pressure(status="entered-in-error"))
    assert (rejected.reason, rejected.detail) == (
        "entered in error", "Observation.status='entered-in-error'")


def _encounter(code: str) -> dict[str, Any]:
    return {"resourceType": "Encounter", "id": "home", "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": code},
            "subject": {"reference": "Patient/example"},
            "period": {"start": "2015-01-17T16:00:00+10:00", "end": "2015-01-17T16:30:00+10:00"}}


def test_home_health_encounter_is_an_outpatient_visit() -> None:
    (fact,) = _facts(_encounter("HH"))
    assert (fact.table, fact.row["visit_type"], fact.visit_ref) == ("visit", "outpatient", "home")


def test_short_stay_encounter_is_rejected_as_a_class_the_store_has_no_type_for() -> None:
    rejected = _rejected(_encounter("SS"))
    assert rejected.reason == "invalid code"
    assert rejected.detail.startswith("Encounter.class=") and "'SS'" in rejected.detail


def test_cancelled_encounter_is_rejected_with_its_status() -> None:
    rejected = _rejected({**_encounter("AMB"), "status": "cancelled"})
    assert (rejected.reason, rejected.detail) == ("not done", "Encounter.status='cancelled'")
