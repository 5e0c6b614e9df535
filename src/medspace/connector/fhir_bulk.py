"""FHIR R4 Bulk Data NDJSON: route each line to its patient, then map resources to facts.

A bulk export has one file per resource type, so a patient's resources are spread over every
file. :func:`route` reads ``Patient.ndjson`` first (which fixes the patients and their order)
and then every other file, yielding each line with the id of the patient it belongs to; lines
that are not JSON or point at no exported patient are quarantined there. :class:`FhirMapper`
then turns one batch's resources into facts. Resources are read as plain JSON rather than
through ``fhir.resources`` models: the checks that matter here (required fields, code systems,
code forms) are made explicitly, at a fraction of the cost, and a violation names its field.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from medspace.connector import fhir_json
from medspace.connector.encoding import decode, shown
from medspace.connector.mapping import (
    Fact,
    Origin,
    PatientRows,
    PersonFacts,
    atc,
    birth_date_in_range,
    icd10,
    loinc,
    required,
    unexpected_shape,
)
from medspace.connector.quarantine import Quarantine, Rejected
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

_SUBJECT = re.compile(r'"(?:subject|patient)":\{"reference":"Patient/([^"]+)"')
_ENCOUNTER_CLASS = {"IMP": "inpatient", "ACUTE": "inpatient", "AMB": "outpatient",
                    "EMER": "emergency"}  # fmt: skip
_SEXES = {"female": "female", "male": "male", "other": "other", "unknown": "unknown"}

Routed = tuple[str, Origin, str]


def files(export_dir: Path) -> list[Path]:
    """The NDJSON files of an export, ``Patient.ndjson`` first."""
    found = sorted(export_dir.glob("*.ndjson"))
    return sorted(found, key=lambda p: p.stem != "Patient")


def _reference_id(value: Any, prefix: str) -> str | None:
    reference = value.get("reference") if isinstance(value, dict) else None
    if isinstance(reference, str) and reference.startswith(prefix + "/"):
        return reference[len(prefix) + 1 :]
    return None


def _subject(line: str) -> str:
    match = _SUBJECT.search(line)
    if match:
        return match.group(1)
    resource = fhir_json.json_object(line)
    ref = resource.get("subject") or resource.get("patient")
    return required(_reference_id(ref, "Patient"), "subject")


def _key(kind: str, line: str, patients: set[str]) -> str:
    """The patient a line belongs to; a Patient line adds its patient to ``patients``."""
    if kind not in LOADED_TYPES:
        raise Rejected("unsupported record", f"resource type {kind}")
    if kind != "Patient":
        key = _subject(line)
        if key not in patients:
            raise Rejected("unknown patient", key)
        return key
    key = required(fhir_json.json_object(line).get("id"), "Patient.id")
    if not isinstance(key, str):
        raise Rejected("wrong type or structure", "Patient.id is not a string")
    if key in patients:
        raise Rejected("duplicate patient", key)
    patients.add(key)
    return key


def _ndjson(paths: list[Path], patients: set[str], quarantine: Quarantine,
            skipped: Counter[str]) -> Iterator[Routed]:
    for path in paths:
        kind = path.stem
        with path.open("rb") as handle:
            for number, raw in enumerate(handle, start=1):
                data = raw.rstrip(b"\r\n")
                if not data.strip():
                    continue
                if kind in NOT_LOADED_TYPES:
                    skipped[kind] += 1
                    continue
                try:
                    line = decode(data)
                except Rejected as rejected:
                    quarantine.add(path.name, number, kind, rejected, shown(data))
                    continue
                try:
                    key = _key(kind, line, patients)
                except Rejected as rejected:
                    quarantine.add(path.name, number, kind, rejected, line)
                    continue
                yield key, Origin(path.name, number, kind), line


def _json_files(paths: list[Path], patients: set[str], quarantine: Quarantine,
                skipped: Counter[str], patient_pass: bool) -> Iterator[Routed]:
    """The resources of FHIR JSON files: their Patients in the first pass, the rest in the
    second; unreadable files and entries are quarantined in the pass that meets them first."""
    for path in paths:
        try:
            listed = list(fhir_json.entries(fhir_json.read(path)))
        except (Rejected, RecursionError) as exc:
            if patient_pass:
                rejected = exc if isinstance(exc, Rejected) else Rejected(
                    "malformed JSON", "nested too deeply")
                quarantine.add(path.name, 0, "file", rejected, shown(path.read_bytes()[:65536]))
            continue
        for position, resource, entry in listed:
            kind = "entry" if isinstance(resource, Rejected) else resource["resourceType"]
            if (kind == "Patient") != patient_pass:
                continue
            if isinstance(resource, Rejected):
                quarantine.add(path.name, position, kind, resource,
                               json.dumps(entry, ensure_ascii=False))
                continue
            if kind in NOT_LOADED_TYPES:
                skipped[kind] += 1
                continue
            line = json.dumps(resource, ensure_ascii=False, separators=(",", ":"))
            try:
                key = _key(kind, line, patients)
            except Rejected as rejected:
                quarantine.add(path.name, position, kind, rejected, line)
                continue
            yield key, Origin(path.name, position, kind), line


def route(export_dir: Path, quarantine: Quarantine, skipped: Counter[str]) -> Iterator[Routed]:
    """Every loadable record as ``(patient id, origin, line)``; the rest quarantined or counted.

    Records come from bulk NDJSON files (a line each) and from FHIR JSON files (Bundles of any
    type, or single resources). Every patient's own record comes before the records that point
    at it. Records of types that are not loaded (free-text notes) are counted in ``skipped``
    without being copied anywhere, since they are full of identifiers.
    """
    patients: set[str] = set()
    ndjson = files(export_dir)
    documents = fhir_json.files(export_dir)
    yield from _ndjson([p for p in ndjson if p.stem == "Patient"], patients, quarantine, skipped)
    yield from _json_files(documents, patients, quarantine, skipped, patient_pass=True)
    yield from _ndjson([p for p in ndjson if p.stem != "Patient"], patients, quarantine, skipped)
    yield from _json_files(documents, patients, quarantine, skipped, patient_pass=False)


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


def _person(resource: dict[str, Any]) -> PersonFacts:
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
    return _reference_id(resource.get(field), "Encounter")


def _facts(kind: str, r: dict[str, Any], origin: Origin) -> list[Fact]:
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


class FhirMapper:
    """Maps one batch's routed lines into :class:`PatientRows`, quarantining what fails."""

    def __init__(self, quarantine: Quarantine) -> None:
        self.quarantine = quarantine

    def add(self, patients: dict[str, PatientRows], key: str, origin: Origin, line: str) -> None:
        """Parse and map one line; ``Patient`` lines come before their patient's other lines."""
        try:
            resource = fhir_json.json_object(line)
            if origin.kind == "Patient":
                rows = patients.setdefault(key, PatientRows(key))
                rows.person, rows.person_origin = _person(resource), origin
                return
            rows = patients.get(key) or PatientRows(key)
            if rows.person is None:
                raise Rejected("patient rejected", "the patient's own record was quarantined")
            for fact in _facts(origin.kind, resource, origin):
                rows.add(fact)
        except Rejected as rejected:
            self.quarantine.add(origin.source, origin.position, origin.kind, rejected, line)
        except (TypeError, ValueError, AttributeError, KeyError) as exc:
            self.quarantine.add(origin.source, origin.position, origin.kind,
                                unexpected_shape(exc), line)
