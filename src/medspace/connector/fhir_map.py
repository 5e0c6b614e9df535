"""One FHIR R4 resource, read as plain JSON, to the facts the clinical store keeps.

Resources are read as plain JSON rather than through ``fhir.resources`` models: the checks that
matter here (required fields, code systems, code forms) are made explicitly, at a fraction of
the cost, and a violation names its field. Which resource types are loaded, and which are
deliberately not, is decided here too.

How the types whose shape leaves a choice are kept:

* Observation: a number (``valueQuantity``, ``valueInteger``) is a ``measurement`` with its
  unit. A coded answer (``valueCodeableConcept``, ``valueBoolean``) is an ``observation`` row
  whose ``value_as_concept`` is the answer's SNOMED CT or LOINC answer code (``Y``/``N`` for a
  boolean); an answer in another system, or as text only, leaves the value empty. Any other
  value (``valueString``, ranges, ratios, times) is free text or a structure the store has no
  column for: the row keeps the LOINC code and the date without it. An Observation with
  ``component`` (a blood pressure panel) gives one row per component, and a row for itself only
  when it has a value of its own.
* DiagnosticReport: a ``measurement`` row for the report's LOINC code with no value, on its
  effective date (or else the date it was issued), so that a panel ordered and reported is on
  record. Its ``result`` Observations are resources of their own and bring the values; its
  conclusion and ``presentedForm`` are free text and are not kept.
* Immunization: an ``immunization`` row with the vaccine's CVX, ATC or SNOMED CT code. The
  three are told apart by form (CVX is one to three digits, SNOMED CT six or more, ATC begins
  with a letter), so the column needs no code system beside it.
* Consent: one ``consent`` row per purpose of its rule (HL7 v3 ActReason purposes of use, or the
  store's own words), with the rule's decision and period. The table holds a decision for a
  whole purpose, so a rule narrowed to actors, actions, data or by nested exceptions is refused
  rather than widened by loading it.
* Extensions are not read. The ones exports carry (US Core race, ethnicity and birth sex on
  Patient; an address's geolocation) have no column in the store, whose text columns hold codes
  of the kinds above and no free text, and a patient's location must not reach it at all.

A record whose status says it did not happen (``not-done``, ``not-taken``, ``cancelled``), is
void (``entered-in-error``) or, for a Consent, is not in force (anything but ``active``) is
:class:`~medspace.connector.quarantine.Withdrawn`: what an earlier version of it loaded is
removed, and a record without an id is refused with its status, to be reviewed.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from functools import partial
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
from medspace.connector.quarantine import Rejected, Withdrawn
from medspace.store.schema import CONSENT_DECISIONS, CONSENT_PURPOSES
from medspace.store.vault import Identity

ICD10_SYSTEMS = frozenset({"http://hl7.org/fhir/sid/icd-10", "http://hl7.org/fhir/sid/icd-10-cn"})
ATC_SYSTEM = "http://www.whocc.no/atc"
LOINC_SYSTEM = "http://loinc.org"
SNOMED_SYSTEM = "http://snomed.info/sct"
CVX_SYSTEMS = frozenset({"http://hl7.org/fhir/sid/cvx", "urn:oid:2.16.840.1.113883.12.292"})
ACT_REASON_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
PROCEDURE_SYSTEMS = frozenset(
    {"http://hl7.org/fhir/sid/icd-9-cm", "http://snomed.info/sct", "http://hl7.org/fhir/sid/icd-10"}
)
VACCINE_SYSTEMS = CVX_SYSTEMS | {ATC_SYSTEM, SNOMED_SYSTEM}
ANSWER_SYSTEMS = frozenset({SNOMED_SYSTEM, LOINC_SYSTEM})
RESIDENT_ID_SYSTEM = "urn:oid:2.16.156.10011.1.1"
RESPONSE_CODE = "treatment-response"

#: Resource types loaded.
LOADED_TYPES = (
    "Patient",
    "Encounter",
    "Condition",
    "MedicationStatement",
    "MedicationRequest",
    "MedicationAdministration",
    "Observation",
    "DiagnosticReport",
    "AllergyIntolerance",
    "Procedure",
    "Immunization",
    "Consent",
)
#: Resource types counted and not loaded, because the store has no place for what they hold:
#: free-text documents, billing, the directory of people and places, provenance, and care plans,
#: goals, care teams, devices, supplies and imaging metadata (free text, or codes the store has
#: no table for). Many are full of identifiers, so they are not copied to the quarantine either.
NOT_LOADED_TYPES = frozenset({
    "DocumentReference",
    "Claim", "ExplanationOfBenefit", "Coverage",
    "Organization", "Location", "Practitioner", "PractitionerRole",
    "Provenance",
    "CarePlan", "CareTeam", "Goal", "Device", "SupplyDelivery", "ImagingStudy",
})  # fmt: skip

#: HL7 v3 ActEncounterCode classes by the visit type they are. ``SS`` (short stay) and
#: ``OBSENC`` (observation encounter) lie between inpatient and outpatient and are refused.
_ENCOUNTER_CLASS = {"IMP": "inpatient", "ACUTE": "inpatient", "NONAC": "inpatient",
                    "AMB": "outpatient", "HH": "outpatient", "FLD": "outpatient",
                    "VR": "outpatient", "PRENC": "outpatient",
                    "EMER": "emergency"}  # fmt: skip
_SEXES = {"female": "female", "male": "male", "other": "other", "unknown": "unknown"}

#: HL7 v3 ActReason purposes of use, with their specialisations, by the store's purpose.
_ACT_REASONS = {
    **dict.fromkeys(("HRESCH", "BIORCH", "CLINTRCH", "CLINTRCHNPC", "CLINTRCHPC", "PRECLINTRCH",
                     "DSRCH", "POARCH", "TRANSRCH"), "research"),
    **dict.fromkeys(("ETREAT", "ERTREAT", "BTG"), "emergency"),
    **dict.fromkeys(("PUBHLTH", "DISASTER", "THREAT"), "public-health"),
    "HMARKT": "commercial",
}
#: Consent rule elements that make a rule apply to less than a whole purpose.
_NARROWING = ("actor", "action", "securityLabel", "class", "code", "data", "dataPeriod",
              "provision")

_NOT_DONE = "not done"
_IN_ERROR = "entered in error"
#: Statuses that keep a record out of the store, by type, with the reason given.
_REFUSED_STATUSES: dict[str, dict[str, str]] = {
    "Encounter": {"cancelled": _NOT_DONE, "entered-in-error": _IN_ERROR},
    "MedicationStatement": {"not-taken": _NOT_DONE, "entered-in-error": _IN_ERROR},
    "MedicationRequest": {"cancelled": _NOT_DONE, "entered-in-error": _IN_ERROR},
    "MedicationAdministration": {"not-done": _NOT_DONE, "entered-in-error": _IN_ERROR},
    "Observation": {"cancelled": _NOT_DONE, "entered-in-error": _IN_ERROR},
    "DiagnosticReport": {"cancelled": _NOT_DONE, "entered-in-error": _IN_ERROR},
    "Procedure": {"not-done": _NOT_DONE, "entered-in-error": _IN_ERROR},
    "Immunization": {"not-done": _NOT_DONE, "entered-in-error": _IN_ERROR},
}
_CVX = re.compile(r"^[0-9]{1,3}$")
_SNOMED = re.compile(r"^[0-9]{6,18}$")


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


def _coded(concept: Any, systems: frozenset[str], what: str) -> tuple[str, str]:
    """The system and code of the first coding in one of ``systems``; others are refused."""
    if isinstance(concept, dict) and concept.get("text") and not concept.get("coding"):
        raise Rejected("no code (text only)", what)
    codings = required(concept.get("coding") if isinstance(concept, dict) else None, what)
    for coding in codings:
        if isinstance(coding, dict) and coding.get("system") in systems:
            return coding["system"], required(coding.get("code"), f"{what}.code")
    seen = ", ".join(dict.fromkeys(str(c.get("system")) for c in codings if isinstance(c, dict)))
    raise Rejected("unknown code system", f"{what}: {seen}")


def _coding(concept: Any, systems: frozenset[str], what: str) -> str:
    """The code from the first coding in one of ``systems``; an unknown system is refused."""
    return _coded(concept, systems, what)[1]


def _normalised(check: Callable[[str], str], code: str, what: str) -> str:
    """``check(code)``, its refusal naming the field the code came from."""
    try:
        return check(code)
    except Rejected as rejected:
        raise Rejected(rejected.reason, f"{what}: {rejected.detail}") from None


def _loinc(concept: Any, what: str) -> str:
    return _normalised(loinc, _coding(concept, frozenset({LOINC_SYSTEM}), what), what)


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


def _check_status(kind: str, r: dict[str, Any]) -> None:
    """Refuse a record whose status says it did not happen or is void."""
    status = r.get("status")
    reason = _REFUSED_STATUSES.get(kind, {}).get(status) if isinstance(status, str) else None
    if reason is not None:
        raise Withdrawn(reason, f"{kind}.status={status!r}")


def facts(kind: str, r: dict[str, Any], origin: Origin) -> list[Fact]:
    """The store rows of one non-Patient resource of type ``kind`` (one or more)."""
    mapper = _MAPPERS.get(kind)
    if mapper is None:
        raise Rejected("unsupported record", f"resource type {kind}")
    _check_status(kind, r)
    return mapper(r, origin)


def _encounter(r: dict[str, Any], origin: Origin) -> list[Fact]:
    period = r.get("period") or {}
    visit_class = r.get("class") or {}
    visit_type = _ENCOUNTER_CLASS.get(visit_class.get("code", ""))
    if visit_type is None:
        raise Rejected("invalid code", f"Encounter.class={visit_class!r}")
    row = {
        "visit_type": visit_type,
        "start_date": _date(period.get("start"), "Encounter.period.start"),
        "end_date": _optional_date(period.get("end"), "Encounter.period.end"),
    }
    return [Fact("visit", row, origin, required(r.get("id"), "Encounter.id"))]


def _condition(r: dict[str, Any], origin: Origin) -> list[Fact]:
    code = _normalised(icd10, _coding(r.get("code"), ICD10_SYSTEMS, "Condition.code"),
                       "Condition.code")
    start = r.get("onsetDateTime") or r.get("recordedDate")
    row = {
        "condition_source_value": code,
        "start_date": _date(start, "Condition.onsetDateTime"),
        "end_date": _optional_date(r.get("abatementDateTime"), "Condition.abatementDateTime"),
    }
    return [Fact("condition", row, origin, _encounter_ref(r))]


def _medication(kind: str, r: dict[str, Any], origin: Origin) -> list[Fact]:
    """A drug exposure from a statement, a prescription or an administration, coded in ATC."""
    what = f"{kind}.medication"
    code = _normalised(atc, _coding(r.get("medicationCodeableConcept"),
                                    frozenset({ATC_SYSTEM}), what), what)
    period = r.get("effectivePeriod") or {}
    start = period.get("start") or r.get("effectiveDateTime") or r.get("authoredOn")
    row = {
        "drug_source_value": code,
        "start_date": _date(start, f"{kind}.effective"),
        "end_date": _optional_date(period.get("end"), f"{kind}.effectivePeriod.end"),
    }
    visit = _encounter_ref(r, "context") or _encounter_ref(r)
    return [Fact("drug_exposure", row, origin, visit)]


def _allergy(r: dict[str, Any], origin: Origin) -> list[Fact]:
    code = _coding(r.get("code"), frozenset({SNOMED_SYSTEM}), "AllergyIntolerance.code")
    row = {
        "allergy_source_value": code,
        "recorded_date": _date(r.get("recordedDate"), "AllergyIntolerance.recordedDate"),
    }
    return [Fact("allergy", row, origin)]


def _procedure(r: dict[str, Any], origin: Origin) -> list[Fact]:
    code = _coding(r.get("code"), PROCEDURE_SYSTEMS, "Procedure.code")
    when = r.get("performedDateTime") or (r.get("performedPeriod") or {}).get("start")
    row = {"procedure_source_value": code, "procedure_date": _date(when, "Procedure.performed")}
    return [Fact("procedure", row, origin, _encounter_ref(r))]


def _effective(r: dict[str, Any], kind: str) -> dt.date:
    """When an Observation or DiagnosticReport applies: its effective time, else its issue."""
    when = (r.get("effectiveDateTime") or (r.get("effectivePeriod") or {}).get("start")
            or r.get("effectiveInstant") or r.get("issued"))
    return _date(when, f"{kind}.effectiveDateTime")


def _observation(r: dict[str, Any], origin: Origin) -> list[Fact]:
    """The observation's own result and one per component; the components share its date."""
    when = _effective(r, "Observation")
    visit = _encounter_ref(r)
    codings = (r.get("code") or {}).get("coding") or []
    if any(c.get("code") == RESPONSE_CODE for c in codings):
        return [_response(r, when, origin, visit)]
    components = r.get("component") or []
    parts = [(c, f"Observation.component[{i}]") for i, c in enumerate(components)]
    if _has_value(r) or not components:
        parts.insert(0, (r, "Observation"))
    return [_result(element, what, when, origin, visit) for element, what in parts]


def _response(r: dict[str, Any], when: dt.date, origin: Origin, visit: str | None) -> Fact:
    answer = r.get("valueBoolean")
    if not isinstance(answer, bool):
        raise Rejected("missing required field", "Observation.valueBoolean")
    row = {
        "observation_source_value": RESPONSE_CODE,
        "value_as_concept": "Y" if answer else "N",
        "observation_date": when,
    }
    return Fact("observation", row, origin, visit)


def _has_value(element: dict[str, Any]) -> bool:
    return any(key.startswith("value") for key in element)


def _result(element: dict[str, Any], what: str, when: dt.date, origin: Origin,
            visit: str | None) -> Fact:
    """One LOINC-coded result (an Observation or one of its components) as a store row."""
    code = _loinc(element.get("code"), f"{what}.code")
    if "valueCodeableConcept" in element or "valueBoolean" in element:
        row = {
            "observation_source_value": code,
            "value_as_concept": _answer(element, what),
            "observation_date": when,
        }
        return Fact("observation", row, origin, visit)
    value, unit = _number(element, what)
    row = {
        "measurement_source_value": code,
        "value_as_number": value,
        "unit_source_value": unit,
        "measurement_date": when,
    }
    return Fact("measurement", row, origin, visit)


def _answer(element: dict[str, Any], what: str) -> str | None:
    """A coded answer's SNOMED CT or LOINC answer code (``Y``/``N`` for a boolean), else None."""
    if "valueBoolean" in element:
        answer = element["valueBoolean"]
        if not isinstance(answer, bool):
            raise Rejected("invalid value", f"{what}.valueBoolean={answer!r}")
        return "Y" if answer else "N"
    codings = (element.get("valueCodeableConcept") or {}).get("coding") or []
    for coding in codings:
        if coding.get("system") in ANSWER_SYSTEMS and coding.get("code"):
            return str(coding["code"])
    return None


def _number(element: dict[str, Any], what: str) -> tuple[float | None, str | None]:
    """A numeric value and its unit, or ``(None, None)`` for a value the store cannot hold."""
    if "valueInteger" in element:
        value, unit, path = element["valueInteger"], None, f"{what}.valueInteger"
    else:
        quantity = element.get("valueQuantity") or {}
        value, unit = quantity.get("value"), quantity.get("code") or quantity.get("unit")
        path = f"{what}.valueQuantity.value"
    if value is None:
        return None, None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Rejected("invalid value", f"{path}={value!r}")
    return float(value), unit


def _report(r: dict[str, Any], origin: Origin) -> list[Fact]:
    """The report's panel code with no value: its results are loaded as Observations."""
    row = {
        "measurement_source_value": _loinc(r.get("code"), "DiagnosticReport.code"),
        "value_as_number": None,
        "unit_source_value": None,
        "measurement_date": _effective(r, "DiagnosticReport"),
    }
    return [Fact("measurement", row, origin, _encounter_ref(r))]


def _immunization(r: dict[str, Any], origin: Origin) -> list[Fact]:
    what = "Immunization.vaccineCode"
    system, code = _coded(r.get("vaccineCode"), VACCINE_SYSTEMS, what)
    row = {
        "vaccine_source_value": _vaccine(system, str(code), what),
        "immunization_date": _date(r.get("occurrenceDateTime"), "Immunization.occurrenceDateTime"),
    }
    return [Fact("immunization", row, origin, _encounter_ref(r))]


def _vaccine(system: str, code: str, what: str) -> str:
    """A vaccine code in the form that tells its system: CVX, SNOMED CT or ATC."""
    if system == ATC_SYSTEM:
        return _normalised(atc, code, what)
    form, name = (_CVX, "CVX") if system in CVX_SYSTEMS else (_SNOMED, "SNOMED CT")
    if not form.match(code):
        raise Rejected("invalid code", f"{what}: {name} code {code!r}")
    return code


def _consent(r: dict[str, Any], origin: Origin) -> list[Fact]:
    """One row per purpose of an active consent's rule, with the rule's decision and period."""
    status = r.get("status")
    if status != "active":
        raise Withdrawn("consent not in force", f"Consent.status={status!r}")
    rule = required(r.get("provision"), "Consent.provision")
    for element in _NARROWING:
        if rule.get(element):
            raise Rejected("unsupported consent rule",
                           f"Consent.provision.{element}: the rule covers less than a purpose")
    decision = required(rule.get("type"), "Consent.provision.type")
    if decision not in CONSENT_DECISIONS:
        raise Rejected("invalid code", f"Consent.provision.type={decision!r}")
    period = rule.get("period") or {}
    start = _date(period.get("start") or r.get("dateTime"), "Consent.provision.period.start")
    end = _optional_date(period.get("end"), "Consent.provision.period.end")
    return [
        Fact("consent", {"purpose": purpose, "decision": decision, "start_date": start,
                         "end_date": end}, origin)
        for purpose in _purposes(required(rule.get("purpose"), "Consent.provision.purpose"))
    ]


def _purposes(codings: list[Any]) -> list[str]:
    """The store's purposes among a rule's purposes of use, each once, in order.

    Purposes the store has no column value for (treatment, payment, operations) are not kept;
    a rule with none of the store's purposes is refused.
    """
    found: list[str] = []
    for coding in codings:
        if not isinstance(coding, dict):
            raise Rejected("wrong type or structure", f"Consent.provision.purpose: {coding!r}")
        code = coding.get("code")
        purpose = (_ACT_REASONS.get(code) if coding.get("system") == ACT_REASON_SYSTEM
                   else code if code in CONSENT_PURPOSES else None)
        if purpose is not None and purpose not in found:
            found.append(purpose)
    if not found:
        seen = ", ".join(f"{c.get('system')}#{c.get('code')}" for c in codings)
        raise Rejected("unknown purpose", f"Consent.provision.purpose: {seen}")
    return found


_MAPPERS: dict[str, Callable[[dict[str, Any], Origin], list[Fact]]] = {
    "Encounter": _encounter,
    "Condition": _condition,
    "MedicationStatement": partial(_medication, "MedicationStatement"),
    "MedicationRequest": partial(_medication, "MedicationRequest"),
    "MedicationAdministration": partial(_medication, "MedicationAdministration"),
    "Observation": _observation,
    "DiagnosticReport": _report,
    "AllergyIntolerance": _allergy,
    "Procedure": _procedure,
    "Immunization": _immunization,
    "Consent": _consent,
}
