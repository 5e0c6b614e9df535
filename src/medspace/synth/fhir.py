"""Render a patient record as FHIR R4 (R4B-valid) resources.

The resources are built as plain dicts, in a fixed key order, rather than through pydantic
models: generation has to run at hundreds of thousands of patients per hospital, and building
models would cost more than everything else together. The tests validate samples with
``fhir.resources``' R4B models instead.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Iterator
from typing import Any

from medspace.synth.codes import (
    ATC,
    DISEASES,
    DRUGS,
    ICD9_PROC,
    ICD10,
    LABS,
    LOINC,
    PROCEDURES,
    RESPONSE_CODE,
    SNOMED,
    SYNTH,
    UCUM,
)
from medspace.synth.records import PatientRecord

Resource = dict[str, Any]

RESIDENT_ID_SYSTEM = "urn:oid:2.16.156.10011.1.1"
"""Identifier system of the resident ID number (the OID China's health standards assign)."""
DIVISION_CODE_EXTENSION = "https://medspace.example.org/fhir/StructureDefinition/division-code"
"""Address extension carrying the district's GB/T 2260 code."""
RESOURCE_TYPES = (
    "Patient",
    "Encounter",
    "Condition",
    "MedicationStatement",
    "Observation",
    "AllergyIntolerance",
    "Procedure",
    "DocumentReference",
)
"""Every resource type a FHIR export holds, one NDJSON file each."""

_V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
_ENCOUNTER_CLASS = {
    "inpatient": ("IMP", "inpatient encounter"),
    "outpatient": ("AMB", "ambulatory"),
    "emergency": ("EMER", "emergency"),
}
_NOTE_TYPE = {
    "inpatient": ("34117-2", "History and physical note"),
    "emergency": ("34111-5", "Emergency department note"),
    "outpatient": ("11506-3", "Progress note"),
}


def mrn_system(hospital: str) -> str:
    """Identifier system of a hospital's local medical record numbers."""
    return f"https://medspace.example.org/fhir/sid/{hospital}/mrn"


def fhir_datetime(value: dt.datetime) -> str:
    """A FHIR dateTime in China Standard Time; FHIR requires the offset when a time is given."""
    return value.strftime("%Y-%m-%dT%H:%M:%S+08:00")


def _ref(resource_type: str, resource_id: str) -> dict[str, str]:
    return {"reference": f"{resource_type}/{resource_id}"}


def _concept(system: str, code: str, display: str, text: str | None = None) -> dict[str, Any]:
    concept: dict[str, Any] = {"coding": [{"system": system, "code": code, "display": display}]}
    if text:
        concept["text"] = text
    return concept


def patient_resource(record: PatientRecord) -> Resource:
    """The Patient, carrying every direct identifier the hospital holds."""
    who = record.identity
    d = who.division
    patient: Resource = {
        "resourceType": "Patient",
        "id": record.patient_id,
        "identifier": [
            {
                "use": "usual",
                "type": _concept(_V2_0203, "MR", "Medical record number"),
                "system": mrn_system(record.hospital_id),
                "value": record.mrn,
            },
            {
                "use": "official",
                "type": _concept(_V2_0203, "NI", "National unique individual identifier"),
                "system": RESIDENT_ID_SYSTEM,
                "value": who.resident_id,
            },
        ],
        "name": [
            {"use": "official", "text": who.name, "family": who.surname, "given": [who.given]}
        ],
        "telecom": [{"system": "phone", "value": who.phone, "use": "mobile"}],
        "gender": "male" if who.male else "female",
        "birthDate": who.birth_date.isoformat(),
    }
    if record.death:
        patient["deceasedDateTime"] = fhir_datetime(record.death)
    patient["address"] = [
        {
            "extension": [{"url": DIVISION_CODE_EXTENSION, "valueCode": d.code}],
            "use": "home",
            "type": "physical",
            "text": who.address_text,
            "line": [who.street],
            "city": d.city,
            "district": d.district,
            "state": d.province,
            "country": "CN",
        }
    ]
    return patient


def resources(record: PatientRecord) -> Iterator[Resource]:
    """Every resource of one patient, the Patient first."""
    yield patient_resource(record)
    subject = _ref("Patient", record.patient_id)
    for e in record.encounters:
        code, display = _ENCOUNTER_CLASS[e.kind]
        yield {
            "resourceType": "Encounter",
            "id": e.id,
            "status": "finished",
            "class": {
                "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                "code": code,
                "display": display,
            },
            "subject": subject,
            "period": {"start": fhir_datetime(e.start), "end": fhir_datetime(e.end)},
        }
    for dx in record.diagnoses:
        disease = DISEASES[dx.code]
        status = "resolved" if disease.kind == "acute" else "active"
        yield {
            "resourceType": "Condition",
            "id": dx.id,
            "clinicalStatus": _concept(
                "http://terminology.hl7.org/CodeSystem/condition-clinical", status, status.title()
            ),
            "verificationStatus": _concept(
                "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                "confirmed",
                "Confirmed",
            ),
            "category": [
                _concept(
                    "http://terminology.hl7.org/CodeSystem/condition-category",
                    "encounter-diagnosis",
                    "Encounter Diagnosis",
                )
            ],
            "code": _concept(ICD10, dx.code, disease.display, disease.display_zh),
            "subject": subject,
            "encounter": _ref("Encounter", dx.encounter_id),
            "onsetDateTime": dx.onset.isoformat(),
            "recordedDate": dx.onset.isoformat(),
        }
    for med in record.medications:
        statement: Resource = {
            "resourceType": "MedicationStatement",
            "id": med.id,
            "status": "completed" if med.end else "active",
            "medicationCodeableConcept": _concept(ATC, med.atc, DRUGS[med.atc].display),
            "subject": subject,
            "context": _ref("Encounter", med.encounter_id),
            "effectivePeriod": {"start": med.start.isoformat()},
            "dateAsserted": med.start.isoformat(),
        }
        if med.end:
            statement["effectivePeriod"]["end"] = med.end.isoformat()
        yield statement
    yield from _observations(record, subject)
    for allergy in record.allergies:
        s = allergy.substance
        code: dict[str, Any] = {"text": s.text}
        if s.snomed:
            code = {"coding": [{"system": SNOMED, "code": s.snomed, "display": s.display}], **code}
        yield {
            "resourceType": "AllergyIntolerance",
            "id": allergy.id,
            "clinicalStatus": _concept(
                "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                "active",
                "Active",
            ),
            "verificationStatus": _concept(
                "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification",
                "confirmed",
                "Confirmed",
            ),
            "category": [s.category],
            "code": code,
            "patient": subject,
            "recordedDate": allergy.recorded.isoformat(),
        }
    for proc in record.procedures:
        yield {
            "resourceType": "Procedure",
            "id": proc.id,
            "status": "completed",
            "code": _concept(ICD9_PROC, proc.code, PROCEDURES[proc.code]),
            "subject": subject,
            "encounter": _ref("Encounter", proc.encounter_id),
            "performedDateTime": proc.date.isoformat(),
        }
    kinds = {e.id: e.kind for e in record.encounters}
    for note in record.notes:
        code, display = _NOTE_TYPE[kinds[note.encounter_id]]
        yield {
            "resourceType": "DocumentReference",
            "id": note.id,
            "status": "current",
            "type": _concept(LOINC, code, display),
            "subject": subject,
            "date": fhir_datetime(note.time),
            "content": [
                {
                    "attachment": {
                        "contentType": "text/plain; charset=utf-8",
                        "language": "zh-CN",
                        "data": base64.b64encode(note.text.encode()).decode(),
                        "title": display,
                    }
                }
            ],
            "context": {"encounter": [_ref("Encounter", note.encounter_id)]},
        }


def _observations(record: PatientRecord, subject: dict[str, str]) -> Iterator[Resource]:
    """Lab results with UCUM quantities, then treatment responses tied to their drug."""
    for lab in record.labs:
        test = LABS[lab.loinc]
        value: float | int = lab.value if test.decimals else int(lab.value)
        yield {
            "resourceType": "Observation",
            "id": lab.id,
            "status": "final",
            "category": [_category("laboratory", "Laboratory")],
            "code": _concept(LOINC, lab.loinc, test.display),
            "subject": subject,
            "encounter": _ref("Encounter", lab.encounter_id),
            "effectiveDateTime": fhir_datetime(lab.time),
            "valueQuantity": _quantity(value, test.unit),
            "referenceRange": [
                {"low": _quantity(test.low, test.unit), "high": _quantity(test.high, test.unit)}
            ],
        }
    for resp in record.responses:
        yield {
            "resourceType": "Observation",
            "id": resp.id,
            "status": "final",
            "category": [_category("therapy", "Therapy")],
            "code": _concept(SYNTH, RESPONSE_CODE, "Response to treatment", "疗效评价"),
            "subject": subject,
            "focus": [_ref("MedicationStatement", resp.medication_id)],
            "encounter": _ref("Encounter", resp.encounter_id),
            "effectiveDateTime": fhir_datetime(resp.time),
            "valueBoolean": resp.responded,
        }


def _quantity(value: float | int, unit: str) -> dict[str, Any]:
    """A UCUM quantity: the unit is both the human-readable unit and the UCUM code."""
    return {"value": value, "unit": unit, "system": UCUM, "code": unit}


def _category(code: str, display: str) -> dict[str, Any]:
    return _concept("http://terminology.hl7.org/CodeSystem/observation-category", code, display)


def transaction_bundle(record: PatientRecord) -> Resource:
    """One patient's resources as a FHIR transaction Bundle of PUTs (ids are the hospital's)."""
    base = f"https://{record.hospital_id}.medspace.example.org/fhir"
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": f"{base}/{r['resourceType']}/{r['id']}",
                "resource": r,
                "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"},
            }
            for r in resources(record)
        ],
    }
