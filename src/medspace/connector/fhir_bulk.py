"""FHIR R4 Bulk Data NDJSON and FHIR JSON files: route each resource to its patient.

A bulk export has one file per resource type, so a patient's resources are spread over every
file. :func:`route` reads ``Patient.ndjson`` first (which fixes the patients and their order)
and then every other file, yielding each line with the id of the patient it belongs to; lines
that are not JSON or point at no patient are quarantined there. :class:`FhirMapper` then turns
one batch's resources into facts with :mod:`medspace.connector.fhir_map`.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from medspace.connector import fhir_json, fhir_map
from medspace.connector.codemap import CodeMap
from medspace.connector.encoding import decode, shown
from medspace.connector.fhir_map import LOADED_TYPES, NOT_LOADED_TYPES
from medspace.connector.mapping import (
    Fact,
    Origin,
    PatientRows,
    Routed,
    known_patient,
    required,
    unexpected_shape,
)
from medspace.connector.quarantine import Quarantine, Rejected, Withdrawn

_SUBJECT = re.compile(r'"(?:subject|patient)":\{"reference":"Patient/([^"]+)"')



def files(export_dir: Path) -> list[Path]:
    """The NDJSON files of an export, ``Patient.ndjson`` first."""
    found = sorted(export_dir.glob("*.ndjson"))
    return sorted(found, key=lambda p: p.stem != "Patient")


def _subject(line: str) -> str:
    match = _SUBJECT.search(line)
    if match:
        return match.group(1)
    resource = fhir_json.json_object(line)
    ref = resource.get("subject") or resource.get("patient")
    return required(fhir_map.reference_id(ref, "Patient"), "subject")


def _key(kind: str, line: str) -> str:
    """The patient a line belongs to: its own id for a Patient, else its subject's id."""
    if kind not in LOADED_TYPES:
        raise Rejected("unsupported record", f"resource type {kind}")
    if kind != "Patient":
        return _subject(line)
    key = required(fhir_json.json_object(line).get("id"), "Patient.id")
    if not isinstance(key, str):
        raise Rejected("wrong type or structure", "Patient.id is not a string")
    return key


def route_line(source: str, position: int, kind: str, line: str,
               quarantine: Quarantine) -> Routed | None:
    """One resource as ``(patient id, origin, line)``, or None once it is quarantined."""
    try:
        key = _key(kind, line)
    except Rejected as rejected:
        quarantine.add(source, position, kind, rejected, line)
        return None
    return key, Origin(source, position, kind), line


def _ndjson(paths: list[Path], quarantine: Quarantine, skipped: Counter[str]) -> Iterator[Routed]:
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
                routed = route_line(path.name, number, kind, line, quarantine)
                if routed is not None:
                    yield routed


def _json_files(paths: list[Path], quarantine: Quarantine, skipped: Counter[str],
                patient_pass: bool) -> Iterator[Routed]:
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
            routed = route_line(path.name, position, kind, line, quarantine)
            if routed is not None:
                yield routed


def route(export_dir: Path, quarantine: Quarantine, skipped: Counter[str]) -> Iterator[Routed]:
    """Every loadable record as ``(patient id, origin, line)``; the rest quarantined or counted.

    Records come from bulk NDJSON files (a line each) and from FHIR JSON files (Bundles of any
    type, or single resources). Every patient's own record comes before the records that point
    at it; whether a patient pointed at exists (here or in the store) is decided when the batch
    is mapped. Records of types that are not loaded (free-text notes, billing, directories) are
    counted in ``skipped`` without being copied anywhere, since they are full of identifiers.
    """
    ndjson = files(export_dir)
    documents = fhir_json.files(export_dir)
    yield from _ndjson([p for p in ndjson if p.stem == "Patient"], quarantine, skipped)
    yield from _json_files(documents, quarantine, skipped, patient_pass=True)
    yield from _ndjson([p for p in ndjson if p.stem != "Patient"], quarantine, skipped)
    yield from _json_files(documents, quarantine, skipped, patient_pass=False)


class FhirMapper:
    """Maps one batch's routed lines into :class:`PatientRows`, quarantining what fails.

    A resource's facts carry its ``Type/id`` as their record, so a resource loaded again, or a
    newer version of it, replaces what it gave before.
    """

    def __init__(self, quarantine: Quarantine, code_map: CodeMap | None = None,
                 source: str = "") -> None:
        self.quarantine = quarantine
        self.code_map = code_map or CodeMap()
        #: Routing keys are FHIR logical ids, unique only within the server that assigned
        #: them: a node fed by several FHIR servers names each ``source``.
        self.key_namespace = f"fhir:{source}" if source else "fhir"

    def add(self, patients: dict[str, PatientRows], key: str, origin: Origin, line: str) -> None:
        """Parse and map one line; ``Patient`` lines come before their patient's other lines."""
        try:
            resource = fhir_json.json_object(line)
            if origin.kind == "Patient":
                rows = patients.setdefault(key, PatientRows(key))
                rows.person, rows.person_origin = fhir_map.person(resource), origin
                return
            rows = known_patient(
                patients, key, f"Patient/{key} is neither in this export nor in the store")
            rid = resource.get("id")
            record = f"{origin.kind}/{rid}" if isinstance(rid, str) and rid else None
            try:
                facts = fhir_map.facts(origin.kind, self.code_map.extend(resource), origin)
            except Withdrawn:
                if record is None:
                    raise
                rows.withdraw(record)
                return
            if record is not None:
                facts = [Fact(f.table, f.row, f.origin, f.visit_ref, record) for f in facts]
            rows.put(facts)
        except Rejected as rejected:
            self.quarantine.add(origin.source, origin.position, origin.kind, rejected, line)
        except (TypeError, ValueError, AttributeError, KeyError) as exc:
            self.quarantine.add(origin.source, origin.position, origin.kind,
                                unexpected_shape(exc), line)
