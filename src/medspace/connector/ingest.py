"""``load_export``: one hospital export into its node's clinical store and identity vault.

Two passes. Routing reads the export once and spills each record to its patient's batch file
(:mod:`medspace.connector.spill`); then each batch is mapped, its identities are written to the
vault and its rows to the store in one transaction (``medspace.store.load``). The vault comes
first and is idempotent (a put replaces the person's record), so a crash between the two leaves
at most identities whose rows the next run writes. A re-run skips the patients whose
``person_id`` the store already holds: since a batch is all in or all out, a patient is either
complete or absent. The quarantine is de-duplicated, so a re-run does not repeat it either.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from medspace.connector import fhir_bulk, fhir_json, hl7v2
from medspace.connector.mapping import PatientRows
from medspace.connector.quarantine import Quarantine
from medspace.connector.report import DataQuality, IngestReport
from medspace.connector.spill import Spill
from medspace.store.engine import ClinicalStore
from medspace.store.load import LoadError
from medspace.store.load import load as store_load
from medspace.store.vault import IdentityVault

ProgressCallback = Callable[[int, int], None]
"""Called as ``progress(patients_done, patients_total)`` after each batch."""

BATCH_SIZE = 5_000


class IngestError(RuntimeError):
    """An export that cannot be loaded, or a batch the store refused (nothing of it stored)."""


def detect_format(export_dir: Path) -> str:
    """``fhir-ndjson`` (bulk NDJSON, FHIR JSON files, or both) or ``hl7v2``, from
    ``manifest.json`` or else from the files present."""
    manifest = export_dir / "manifest.json"
    if manifest.exists():
        declared = json.loads(manifest.read_text(encoding="utf-8")).get("format")
        if declared in ("fhir-ndjson", "hl7v2"):
            return str(declared)
    if any(export_dir.glob("*.ndjson")) or fhir_json.files(export_dir):
        return "fhir-ndjson"
    if any(export_dir.glob("*.hl7")):
        return "hl7v2"
    raise IngestError(f"{export_dir}: no FHIR (*.ndjson, *.json) or HL7 v2 (*.hl7) files found")


def default_quarantine_dir(store: ClinicalStore, export_dir: Path) -> Path:
    """``quarantine/`` next to the store's DuckDB file, or next to the export for PostgreSQL."""
    if store.kind == "duckdb":
        row = store.backend.con.execute(
            "SELECT path FROM duckdb_databases() WHERE database_name = current_database()"
        ).fetchone()
        if row and row[0]:
            return Path(row[0]).parent / "quarantine"
    return export_dir.parent / "quarantine"


def _already_loaded(store: ClinicalStore, person_ids: list[str]) -> set[str]:
    person = store.backend.table("person")
    found = person.filter(person.person_id.isin(person_ids)).person_id.to_pyarrow()
    return set(found.to_pylist())


def _commit(
    patients: dict[str, PatientRows],
    store: ClinicalStore,
    vault: IdentityVault,
    keys: tuple[bytes, bytes],
    report: IngestReport,
    batch_no: int,
) -> None:
    node_key, linkage_key = keys
    ready = [p for p in patients.values() if p.person is not None]
    by_id = {p.person_id(node_key): p for p in ready}
    done = _already_loaded(store, list(by_id)) if by_id else set()
    report.patients_already_loaded += len(done)
    batch: dict[str, list[dict[str, Any]]] = {}
    loaded: Counter[str] = Counter()
    identities = []
    for pid, patient in by_id.items():
        if pid in done:
            continue
        assert patient.person is not None
        identities.append((pid, patient.person.identity, patient.link_token(linkage_key)))
        for table, rows in patient.rows(node_key, loaded).items():
            batch.setdefault(table, []).extend(rows)
    if not batch:
        return
    vault.put_many(identities)
    try:
        written = store_load(store, batch)
    except LoadError as exc:
        raise IngestError(
            f"batch {batch_no} refused by the store, nothing of it stored: {exc}"
        ) from exc
    report.patients += len(by_id) - len(done)
    report.rows.update(written)
    report.loaded.update(loaded)
    report.batches += 1


def load_export(
    export_dir: Path,
    store: ClinicalStore,
    vault: IdentityVault,
    node_key: bytes,
    linkage_key: bytes,
    progress: ProgressCallback | None = None,
    *,
    batch_size: int = BATCH_SIZE,
    quarantine_dir: Path | None = None,
) -> IngestReport:
    """Load one hospital's export folder; return what was loaded, quarantined and skipped.

    Safe to run again on the same export: it resumes after the last committed batch and adds
    nothing twice. Raises :class:`IngestError` if the store refuses a batch (the batches before
    it stay committed; a re-run resumes there).
    """
    started = time.perf_counter()
    export_dir = Path(export_dir)
    fmt = detect_format(export_dir)
    store.create_schema()
    folder = quarantine_dir or default_quarantine_dir(store, export_dir)
    quarantine = Quarantine(folder / f"{export_dir.resolve().parent.name}-quarantine.ndjson")
    report = IngestReport(export_dir, fmt, quarantine.path)
    reader = fhir_bulk if fmt == "fhir-ndjson" else hl7v2
    try:
        with Spill(batch_size) as spill:
            for key, origin, raw in reader.route(export_dir, quarantine, report.skipped):
                spill.add(key, origin, raw)
            mapper = (
                fhir_bulk.FhirMapper(quarantine)
                if fmt == "fhir-ndjson"
                else hl7v2.Hl7Mapper(quarantine, report.skipped)
            )
            for batch_no, records in spill.batches():
                patients: dict[str, PatientRows] = {}
                for key, origin, raw in records:
                    mapper.add(patients, key, origin, raw)
                quarantine.flush()
                _commit(patients, store, vault, (node_key, linkage_key), report, batch_no)
                if progress is not None:
                    progress(min((batch_no + 1) * batch_size, spill.patients), spill.patients)
    finally:
        quarantine.close()
        report.quarantined_by_reason.update(quarantine.by_reason)
        report.quarantined_by_kind.update(quarantine.by_kind)
    report.quality = DataQuality.measure(store)
    report.seconds = time.perf_counter() - started
    return report
