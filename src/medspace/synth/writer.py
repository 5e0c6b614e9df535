"""Write the hospitals' export files: ``OUT/<hospital-id>/export/`` plus a manifest.

Patients stream from the generator to the files one at a time, so memory stays flat whatever
the size. FHIR hospitals write FHIR Bulk Data NDJSON, one file per resource type (the primary
format; transaction Bundles per patient are optional for small runs); HL7 v2 hospitals write one
batch file per message structure. Nothing in the files depends on the clock or the machine, so
the same seed gives byte-identical exports.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import time
from collections import Counter
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from medspace.synth import fhir, hl7v2
from medspace.synth.clinical import REFERENCE_DATE, WINDOW_START
from medspace.synth.population import (
    SharedPool,
    build_shared_pool,
    generate_hospital,
    hospital_sizes,
)
from medspace.synth.profiles import HospitalProfile, profiles_for
from medspace.synth.records import PatientRecord
from medspace.synth.resident_id import MAX_OWNERS

ProgressCallback = Callable[[str, int, int], None]
"""Called as ``progress(hospital_id, patients_done, patients_total)`` while a hospital writes."""

BUNDLE_LIMIT = 10_000
"""Largest hospital for which per-patient transaction Bundles may be written as well."""
_PROGRESS_EVERY = 500


@dataclass(slots=True)
class HospitalSummary:
    """What was written for one hospital."""

    id: str
    name: str
    export_format: str
    patients: int
    directory: Path
    counts: dict[str, int]
    """Resources per FHIR resource type, or messages per HL7 v2 message structure."""
    records: dict[str, int]
    """Clinical facts written, whatever the format (patients, encounters, labs, deaths, ...)."""


@dataclass(slots=True)
class ExportSummary:
    """What ``write_exports`` did, and how fast."""

    out_dir: Path
    seed: int
    hospitals: list[HospitalSummary] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def patients(self) -> int:
        """Patients written over all hospitals."""
        return sum(h.patients for h in self.hospitals)

    @property
    def patients_per_second(self) -> float:
        """Generation and writing rate over the whole run."""
        return self.patients / self.seconds if self.seconds else 0.0


def write_exports(
    out_dir: Path,
    n_hospitals: int = 5,
    patients_per_hospital: int = 1000,
    seed: int = 7,
    progress: ProgressCallback | None = None,
    bundles: bool = False,
) -> ExportSummary:
    """Generate and write the exports of ``n_hospitals`` hospitals under ``out_dir``.

    Each hospital gets ``patients_per_hospital`` scaled by its profile's relative size. With
    ``bundles`` the FHIR hospitals also get one transaction Bundle per patient in
    ``export/bundles/`` (only up to ``BUNDLE_LIMIT`` patients per hospital).
    """
    if n_hospitals >= MAX_OWNERS:
        raise ValueError(f"at most {MAX_OWNERS - 1} hospitals (unique ID numbers per issuer)")
    started = time.perf_counter()
    profiles = profiles_for(n_hospitals)
    sizes = hospital_sizes(profiles, patients_per_hospital)
    if bundles and max(sizes.values()) > BUNDLE_LIMIT:
        raise ValueError(f"transaction Bundles are for small exports (<= {BUNDLE_LIMIT} patients)")
    pool = build_shared_pool(profiles, sizes, seed)
    summary = ExportSummary(Path(out_dir), seed)
    for profile in profiles:
        summary.hospitals.append(
            write_hospital(
                Path(out_dir) / profile.id / "export",
                profile,
                sizes[profile.id],
                seed,
                pool,
                progress,
                bundles,
            )
        )
    summary.seconds = time.perf_counter() - started
    return summary


def write_hospital(
    directory: Path,
    profile: HospitalProfile,
    n_patients: int,
    seed: int,
    pool: SharedPool,
    progress: ProgressCallback | None = None,
    bundles: bool = False,
) -> HospitalSummary:
    """Write one hospital's export directory and its ``manifest.json``."""
    directory.mkdir(parents=True, exist_ok=True)
    patients = generate_hospital(profile, n_patients, seed, pool)
    if profile.export_format == "hl7v2":
        counts, records = _write_hl7(directory, profile, patients, n_patients, progress)
    else:
        counts, records = _write_fhir(directory, patients, n_patients, progress, bundles)
    summary = HospitalSummary(
        profile.id, profile.name, profile.export_format, n_patients, directory, counts, records
    )
    manifest = _manifest(profile, seed, summary, pool, bundles)
    (directory / "manifest.json").write_text(
        json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    return summary


def _write_fhir(
    directory: Path,
    patients: Iterable[PatientRecord],
    total: int,
    progress: ProgressCallback | None,
    bundles: bool,
) -> tuple[dict[str, int], dict[str, int]]:
    counts: Counter[str] = Counter({t: 0 for t in fhir.RESOURCE_TYPES})
    records: Counter[str] = Counter()
    if bundles:
        (directory / "bundles").mkdir(exist_ok=True)
    with ExitStack() as stack:
        files = {t: _open(stack, directory / f"{t}.ndjson") for t in fhir.RESOURCE_TYPES}
        for done, record in enumerate(patients, start=1):
            for resource in fhir.resources(record):
                kind = resource["resourceType"]
                files[kind].write(_json_line(resource))
                counts[kind] += 1
            if bundles:
                (directory / "bundles" / f"{record.patient_id}.json").write_text(
                    _json_line(fhir.transaction_bundle(record)), encoding="utf-8"
                )
            _tally(records, record)
            _report(progress, record.hospital_id, done, total)
    return dict(counts), dict(records)


def _write_hl7(
    directory: Path,
    profile: HospitalProfile,
    patients: Iterable[PatientRecord],
    total: int,
    progress: ProgressCallback | None,
) -> tuple[dict[str, int], dict[str, int]]:
    counts: Counter[str] = Counter({t: 0 for t in hl7v2.MESSAGE_TYPES})
    records: Counter[str] = Counter()
    control_ids = itertools.count(1)
    header = hl7v2.batch_header(profile.id, _export_time())
    with ExitStack() as stack:
        files = {t: _open(stack, directory / f"{t}.hl7") for t in hl7v2.MESSAGE_TYPES}
        for handle in files.values():
            handle.write(header)
        for done, record in enumerate(patients, start=1):
            for kind, segments in hl7v2.messages(record, control_ids):
                files[kind].write(hl7v2.encode(segments))
                counts[kind] += 1
            _tally(records, record)
            _report(progress, record.hospital_id, done, total)
        for kind, handle in files.items():
            handle.write(hl7v2.batch_trailer(counts[kind]))
    return dict(counts), dict(records)


def _open(stack: ExitStack, path: Path) -> TextIO:
    """A large-buffered UTF-8 text file that never translates ``\\r`` or ``\\n``."""
    return stack.enter_context(path.open("w", encoding="utf-8", newline="", buffering=1 << 20))


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
"""Compact UTF-8 JSON; one shared encoder, since ``json.dumps`` with options builds one per call."""


def _json_line(resource: dict[str, Any]) -> str:
    return _ENCODER.encode(resource) + "\n"


def _export_time() -> dt.datetime:
    """The batch timestamp: the reference date's end, never the wall clock (determinism)."""
    return dt.datetime.combine(REFERENCE_DATE, dt.time(23, 59, 59))


def _tally(records: Counter[str], record: PatientRecord) -> None:
    records["patients"] += 1
    records["shared_patients"] += record.shared_person is not None
    records["deaths"] += record.death is not None
    records["encounters"] += len(record.encounters)
    records["diagnoses"] += len(record.diagnoses)
    records["medications"] += len(record.medications)
    records["lab_results"] += len(record.labs)
    records["treatment_responses"] += len(record.responses)
    records["allergies"] += len(record.allergies)
    records["procedures"] += len(record.procedures)
    records["notes"] += len(record.notes)


def _report(progress: ProgressCallback | None, hospital: str, done: int, total: int) -> None:
    if progress is not None and (done % _PROGRESS_EVERY == 0 or done == total):
        progress(hospital, done, total)


def _manifest(
    profile: HospitalProfile,
    seed: int,
    summary: HospitalSummary,
    pool: SharedPool,
    bundles: bool,
) -> dict[str, Any]:
    """The manifest: who the hospital is, how the files were made and what they contain."""
    fhir_export = profile.export_format == "fhir-ndjson"
    suffix = ".ndjson" if fhir_export else ".hl7"
    return {
        "generator": "medspace.synth",
        "seed": seed,
        "hospital": profile.as_json(),
        "format": profile.export_format,
        "fhir_version": "4.0.1" if fhir_export else None,
        "hl7v2_version": None if fhir_export else "2.5.1",
        "transaction_bundles": "bundles/" if bundles and fhir_export else None,
        "reference_date": REFERENCE_DATE.isoformat(),
        "period": [WINDOW_START.isoformat(), REFERENCE_DATE.isoformat()],
        "identifier_systems": {
            "resident_id": fhir.RESIDENT_ID_SYSTEM,
            "mrn": fhir.mrn_system(profile.id),
        },
        "shared_pool_size": len(pool),
        "counts": summary.counts,
        "files": {f"{kind}{suffix}": n for kind, n in summary.counts.items()},
        "records": summary.records,
    }
