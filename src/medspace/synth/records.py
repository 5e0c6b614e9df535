"""The generator's in-memory patient record, independent of any file format.

The clinical model fills one ``PatientRecord`` at a time and the FHIR and HL7 v2 writers render
it; keeping the record format-free is what lets one hospital export FHIR and another HL7 v2 from
the same model, and lets tests check clinical facts without parsing files.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Literal

from medspace.synth.codes import Substance
from medspace.synth.identities import Identity

EncounterKind = Literal["inpatient", "outpatient", "emergency"]


@dataclass(frozen=True, slots=True)
class Encounter:
    id: str
    kind: EncounterKind
    start: dt.datetime
    end: dt.datetime


@dataclass(frozen=True, slots=True)
class Diagnosis:
    id: str
    code: str
    encounter_id: str
    onset: dt.date


@dataclass(frozen=True, slots=True)
class Medication:
    id: str
    atc: str
    encounter_id: str
    start: dt.date
    end: dt.date | None


@dataclass(frozen=True, slots=True)
class LabResult:
    id: str
    loinc: str
    value: float
    encounter_id: str
    time: dt.datetime


@dataclass(frozen=True, slots=True)
class Response:
    """Whether the patient responded to a drug, as assessed at a follow-up encounter."""

    id: str
    medication_id: str
    atc: str
    responded: bool
    encounter_id: str
    time: dt.datetime


@dataclass(frozen=True, slots=True)
class Allergy:
    id: str
    substance: Substance
    recorded: dt.date


@dataclass(frozen=True, slots=True)
class Procedure:
    id: str
    code: str
    encounter_id: str
    date: dt.date


@dataclass(frozen=True, slots=True)
class Note:
    """A free-text clinical note; it names the patient, as real admission notes do."""

    id: str
    encounter_id: str
    time: dt.datetime
    text: str


@dataclass(slots=True)
class PatientRecord:
    """Everything one hospital holds about one patient."""

    hospital_id: str
    patient_id: str
    mrn: str
    identity: Identity
    death: dt.datetime | None
    shared_person: int | None = None
    """Index in the shared pool when the same person is also treated at other hospitals."""
    encounters: list[Encounter] = field(default_factory=list)
    diagnoses: list[Diagnosis] = field(default_factory=list)
    medications: list[Medication] = field(default_factory=list)
    labs: list[LabResult] = field(default_factory=list)
    responses: list[Response] = field(default_factory=list)
    allergies: list[Allergy] = field(default_factory=list)
    procedures: list[Procedure] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
