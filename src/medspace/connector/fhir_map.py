"""One FHIR R4 resource, read as plain JSON, to the facts the clinical store keeps.

Resources are read as plain JSON rather than through ``fhir.resources`` models: the checks that
matter here (required fields, code systems, code forms) are made explicitly, at a fraction of
the cost, and a violation names its field. Which resource types are loaded, and which are
deliberately not, is decided here too.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from medspace.connector.mapping import (
    Fact,
    Origin,
    PersonFacts,
    atc,
    birth_date_in_range,
    icd10,
    loinc,
    required,
)
from medspace.connector.quarantine import Rejected
from medspace.store.vault import Identity

ICD10_SYSTEMS = frozenset({"http://hl7.org/fhir/sid/icd-10", "http://hl7.org/fhir/sid/icd-10-cn"})
ATC_SYSTEM = "http://www.whocc.no/atc"
LOINC_SYSTEM = "http://loinc.org"
SNOMED_SYSTEM = "http://snomed.info/sct"
PROCEDURE_SYSTEMS = frozenset(
    {"http://hl7.org/fhir/sid/icd-9-cm", "http://snomed.info/sct", "http://hl7.org/fhir/sid/icd-10"}
)
RESIDENT_ID_SYSTEM = "urn:oid:2.16.156.10011.1.1"
RESPONSE_CODE = "treatment-response"

#: Resource types loaded, and those deliberately not loaded (free text has no place in the store).
LOADED_TYPES = (
    "Patient",
    "Encounter",
    "Condition",
    "MedicationStatement",
    "MedicationRequest",
    "Observation",
    "AllergyIntolerance",
    "Procedure",
)
NOT_LOADED_TYPES = frozenset({"DocumentReference"})

_ENCOUNTER_CLASS = {"IMP": "inpatient", "ACUTE": "inpatient", "AMB": "outpatient",
                    "EMER": "emergency"}  # fmt: skip
_SEXES = {"female": "female", "male": "male", "other": "other", "unknown": "unknown"}


def reference_id(value: Any, prefix: str) -> str | None:
    """The id in a ``{"reference": "Prefix/id"}`` reference, or None if it points elsewhere."""
    reference = value.get("reference") if isinstance(value, dict) else None
    if isinstance(reference, str) and reference.startswith(prefix + "/"):
        return reference[len(prefix) + 1 :]
    return None


def _date(value: Any, what: str) -> dt.date:
    text = required(value, what)
    try:
        return dt.date.fromisoformat(str(text)[:10])
    except ValueError:
        raise Rejected("invalid date", f"{what}={text!r}") from None


def _optional_date(value: Any, what: str) -> dt.date | None:
    return None if value in (None, "") else _date(value, what)


def _coding(concept: Any, systems: frozenset[str], what: str) -> str:
    """The code from the first coding in one of ``systems``; an unknown system is refused."""
    if isinstance(concept, dict) and concept.get("text") and not concept.get("coding"):
        raise Rejected("no code (text only)", what)
    codings = required(concept.get("coding") if isinstance(concept, dict) else None, what)
    for coding in codings:
        if isinstance(coding, dict) and coding.get("system") in systems:
            return required(coding.get("code"), f"{what}.code")
    seen = ", ".join(str(c.get("system")) for c in codings if isinstance(c, dict))
    raise Rejected("unknown code system", f"{what}: {seen}")


def _identifier(patient: dict[str, Any], type_code: str, system: str | None) -> str | None:
    for ident in patient.get("identifier") or []:
        codes = {c.get("code") for c in (ident.get("type") or {}).get("coding") or []}
        if type_code in codes or (system is not None and ident.get("system") == system):
            return ident.get("value")
    return None


def person(resource: dict[str, Any]) -> PersonFacts:
    """A Patient's identity for the vault and the values of its ``person`` row."""
    mrn = required(_identifier(resource, "MR", None), "Patient.identifier (MR)")
    names = resource.get("name") or [{}]
    name = names[0].get("text") or (names[0].get("family", "") + "".join(names[0].get("given", [])))
    phones = [t.get("value") for t in resource.get("telecom") or [] if t.get("system") == "phone"]
    addresses = resource.get("address") or [{}]
    birth = birth_date_in_range(_date(resource.get("birthDate"), "Patient.birthDate"))
    sex = _SEXES.get(resource.get("gender") or "unknown")
    if sex is None:
        raise Rejected("invalid code", f"Patient.gender={resource.get('gender')!r}")
    identity = Identity(
        name=name,
        mrn=mrn,
        id_number=_identifier(resource, "NI", RESIDENT_ID_SYSTEM),
        phone=phones[0] if phones else None,
        address=addresses[0].get("text"),
        birth_date=birth,
    )
    death = _optional_date(resource.get("deceasedDateTime"), "Patient.deceasedDateTime")
    return PersonFacts(identity, sex, birth, death)


def _encounter_ref(resource: dict[str, Any], field: str = "encounter") -> str | None:
    return reference_id(resource.get(field), "Encounter")


def facts(kind: str, r: dict[str, Any], origin: Origin) -> list[Fact]:
    """The store rows of one non-Patient resource of type ``kind``."""
    if kind == "Encounter":
        period = r.get("period") or {}
        visit_type = _ENCOUNTER_CLASS.get((r.get("class") or {}).get("code", ""))
        if visit_type is None:
            raise Rejected("unknown code system", f"Encounter.class={r.get('class')!r}")
        row = {
            "visit_type": visit_type,
            "start_date": _date(period.get("start"), "Encounter.period.start"),
            "end_date": _optional_date(period.get("end"), "Encounter.period.end"),
        }
        return [Fact("visit", row, origin, required(r.get("id"), "Encounter.id"))]
    if kind == "Condition":
        code = icd10(_coding(r.get("code"), ICD10_SYSTEMS, "Condition.code"))
        start = r.get("onsetDateTime") or r.get("recordedDate")
        row = {
            "condition_source_value": code,
            "start_date": _date(start, "Condition.onsetDateTime"),
            "end_date": _optional_date(r.get("abatementDateTime"), "Condition.abatementDateTime"),
        }
        return [Fact("condition", row, origin, _encounter_ref(r))]
    if kind in ("MedicationStatement", "MedicationRequest"):
        concept = r.get("medicationCodeableConcept")
        code = atc(_coding(concept, frozenset({ATC_SYSTEM}), f"{kind}.medication"))
        period = r.get("effectivePeriod") or {}
        start = period.get("start") or r.get("effectiveDateTime") or r.get("authoredOn")
        row = {
            "drug_source_value": code,
            "start_date": _date(start, f"{kind}.effective"),
            "end_date": _optional_date(period.get("end"), f"{kind}.effectivePeriod.end"),
        }
        visit = _encounter_ref(r, "context") or _encounter_ref(r)
        return [Fact("drug_exposure", row, origin, visit)]
    if kind == "Observation":
        return [_observation(r, origin)]
    if kind == "AllergyIntolerance":
        code = _coding(r.get("code"), frozenset({SNOMED_SYSTEM}), "AllergyIntolerance.code")
        row = {
            "allergy_source_value": code,
            "recorded_date": _date(r.get("recordedDate"), "AllergyIntolerance.recordedDate"),
        }
        return [Fact("allergy", row, origin)]
    if kind == "Procedure":
        code = _coding(r.get("code"), PROCEDURE_SYSTEMS, "Procedure.code")
        when = r.get("performedDateTime") or (r.get("performedPeriod") or {}).get("start")
        row = {"procedure_source_value": code, "procedure_date": _date(when, "Procedure.performed")}
        return [Fact("procedure", row, origin, _encounter_ref(r))]
    raise Rejected("unsupported record", f"resource type {kind}")


def _observation(r: dict[str, Any], origin: Origin) -> Fact:
    when = _date(r.get("effectiveDateTime"), "Observation.effectiveDateTime")
    codings = (r.get("code") or {}).get("coding") or []
    if any(c.get("code") == RESPONSE_CODE for c in codings):
        answer = r.get("valueBoolean")
        if not isinstance(answer, bool):
            raise Rejected("missing required field", "Observation.valueBoolean")
        row = {
            "observation_source_value": RESPONSE_CODE,
            "value_as_concept": "Y" if answer else "N",
            "observation_date": when,
        }
        return Fact("observation", row, origin, _encounter_ref(r))
    code = loinc(_coding(r.get("code"), frozenset({LOINC_SYSTEM}), "Observation.code"))
    quantity = r.get("valueQuantity") or {}
    value = quantity.get("value")
    if value is not None and not isinstance(value, int | float):
        raise Rejected("invalid value", f"Observation.valueQuantity.value={value!r}")
    row = {
        "measurement_source_value": code,
        "value_as_number": None if value is None else float(value),
        "unit_source_value": quantity.get("code") or quantity.get("unit"),
        "measurement_date": when,
    }
    return Fact("measurement", row, origin, _encounter_ref(r))
