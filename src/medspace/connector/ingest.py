"""``load_export``: one hospital export into its node's clinical store and identity vault.

Two passes. Routing reads the export once and spills each record to its patient's batch file
(:mod:`medspace.connector.spill`); then each batch is mapped, its identities are written to the
vault and its rows to the store in one transaction (``medspace.store.load`` with ``replace``).

Loading is idempotent by construction: every row carries the keyed id of the source record it
came from and replaces the stored rows of that record, so the same resource or message twice
changes nothing and a newer version updates. Patients the store already holds are found by
their source key (a FHIR logical id, an MRN, or an MRN a merge retired), so an export of new
results alone attaches them to their patients. HL7 A40 merges are applied once every batch is
in.

Resumption: the export's fingerprint (its files' names, sizes and times, and the batch size)
and each batch's number are committed with the batch, so a run interrupted anywhere, even by
``kill -9``, resumes after its last committed batch, and an export loaded to the end is not
read again. The vault comes first and a put replaces, so a crash between the two leaves at most
identities whose rows the re-run writes. The quarantine is de-duplicated, so a re-run does not
repeat it either.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

from medspace.connector import fhir_bulk, fhir_json, hl7v2, tabular
from medspace.connector.codemap import CodeMap
from medspace.connector.inbox import Inbox
from medspace.connector.mapping import Origin, PatientRows, Routed
from medspace.connector.quarantine import Quarantine
from medspace.connector.report import DataQuality, IngestReport
from medspace.connector.spill import Spill
from medspace.connector.tabular_mapping import MappingFileError, TabularMapping, load_mapping
from medspace.store.engine import ClinicalStore
from medspace.store.load import LoadError, merge_persons, persons_of_mrns
from medspace.store.load import load as store_load
from medspace.store.tokens import key_id, person_pseudonym
from medspace.store.vault import IdentityVault

ProgressCallback = Callable[[int, int], None]
"""Called as ``progress(patients_done, patients_total)`` after each batch."""

BATCH_SIZE = 2_000
"""Patients per transaction: memory grows by about 45 MB per 1,000 patients of a batch, while
smaller batches than this stop being faster."""
_FINISHED = -1


class IngestError(RuntimeError):
    """An export that cannot be loaded, or a batch the store refused (nothing of it stored)."""


class Mapper(Protocol):
    """What a reader's mapper offers: its key namespace and ``add`` for one routed record."""

    key_namespace: str

    def add(self, patients: dict[str, PatientRows], key: str, origin: Origin, raw: str) -> None:
        """Map one record into ``patients``, quarantining it on failure."""


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


def _mapping(path: Path) -> TabularMapping:
    try:
        return load_mapping(path)
    except (MappingFileError, OSError) as exc:
        raise IngestError(str(exc)) from None


def default_quarantine_dir(store: ClinicalStore, export_dir: Path) -> Path:
    """``quarantine/`` next to the store's DuckDB file, or next to the export for PostgreSQL."""
    if store.kind == "duckdb":
        row = store.backend.con.execute(
            "SELECT path FROM duckdb_databases() WHERE database_name = current_database()"
        ).fetchone()
        if row and row[0]:
            return Path(row[0]).parent / "quarantine"
    return export_dir.parent / "quarantine"


def export_id(files: Iterable[Path], fmt: str, batch_size: int) -> str:
    """The fingerprint of an export as this run reads it: a changed file is a new export."""
    digest = hashlib.sha256(f"{fmt}\0{batch_size}".encode())
    for path in sorted(files):
        stat = path.stat()
        digest.update(f"\0{path.name}\0{stat.st_size}\0{stat.st_mtime_ns}".encode())
    return f"ex:{digest.hexdigest()[:32]}"


def _known(store: ClinicalStore, namespace: str, keys: list[str],
           node_key: bytes) -> dict[str, str]:
    """``{routing key: person_id}`` for the batch's patients the store already holds."""
    ids = {key_id(namespace, k, node_key): k for k in keys}
    found = store.lookup("person_key", "key_id", "person_id", list(ids))
    known = {ids[kid]: pid for kid, pid in found.items()}
    if namespace == "mrn":
        pseudonyms = {person_pseudonym(k, node_key): k for k in keys if k not in known}
        stored = store.lookup("person", "person_id", "person_id", list(pseudonyms))
        known.update({pseudonyms[pid]: pid for pid in stored})
    return known


def _assign_person_ids(patients: list[PatientRows], store: ClinicalStore, node_key: bytes,
                       namespace: str) -> list[dict[str, Any]]:
    """Give each patient described in the batch their ``person_id``; return the key rows.

    A patient's MRN that an A40 retired resolves to the surviving patient; their record then
    does not overwrite the survivor's demographics. A FHIR patient's logical id is recorded as
    a key for the records that later arrive without their Patient.
    """
    described = [p for p in patients if p.person is not None]
    retired = store.lookup("person_key", "key_id", "person_id",
                           [key_id("mrn", p.person.identity.mrn, node_key) for p in described])
    keys = []
    for patient in described:
        mrn = patient.person.identity.mrn
        survivor = retired.get(key_id("mrn", mrn, node_key))
        if survivor is not None:
            patient.person_id, patient.person, patient.person_origin = survivor, None, None
            continue
        patient.person_id = person_pseudonym(mrn, node_key)
        if namespace != "mrn":
            keys.append({"key_id": key_id(namespace, patient.key, node_key),
                         "person_id": patient.person_id})
    return keys


def _drop_dangling_visits(store: ClinicalStore, batch: dict[str, list[dict[str, Any]]]) -> None:
    """Clear visit ids that point at an encounter neither in the batch nor in the store."""
    present = {row["visit_id"] for row in batch.get("visit", [])}
    wanted = {row["visit_id"] for table, rows in batch.items() if table != "visit"
              for row in rows if row.get("visit_id") is not None} - present
    known = present | set(store.lookup("visit", "visit_id", "visit_id", sorted(wanted)))
    for table, rows in batch.items():
        if table == "visit":
            continue
        for row in rows:
            if row.get("visit_id") is not None and row["visit_id"] not in known:
                row["visit_id"] = None


def _commit(patients: dict[str, PatientRows], store: ClinicalStore, vault: IdentityVault,
            keys: tuple[bytes, bytes], namespace: str, progress_row: dict[str, Any],
            report: IngestReport) -> None:
    node_key, linkage_key = keys
    ready = [p for p in patients.values() if p.known]
    batch: dict[str, list[dict[str, Any]]] = {
        "ingest_progress": [progress_row],
        "person_key": _assign_person_ids(ready, store, node_key, namespace),
    }
    for patient in ready:
        patient.scope = patient.key if namespace == "mrn" else patient.person_id
    ids = sorted({p.person_id for p in ready if p.person_id is not None})
    stored_before = store.lookup("person", "person_id", "person_id", ids)
    loaded: Counter[str] = Counter()
    identities = []
    withdrawn = [pair for patient in ready for pair in patient.withdrawn(node_key)]
    for patient in ready:
        if patient.person is not None:
            identities.append((patient.person_id, patient.person.identity,
                               patient.link_token(linkage_key)))
        for table, rows in patient.rows(node_key, loaded).items():
            batch.setdefault(table, []).extend(rows)
        patient.records.clear()
        patient.visits.clear()
        report.duplicates += patient.duplicates
    _drop_dangling_visits(store, batch)
    vault.put_many(identities)
    try:
        written = store_load(store, {t: rows for t, rows in batch.items() if rows},
                             replace=True, withdrawn=withdrawn)
    except LoadError as exc:
        raise IngestError(
            f"batch {progress_row['batch']} refused by the store, nothing of it stored: {exc}"
        ) from exc
    written.pop("ingest_progress", None)
    written.pop("person_key", None)
    report.patients += len(ids) - len(stored_before)
    report.patients_updated += len(stored_before)
    report.rows.update(written)
    report.loaded.update(loaded)
    report.withdrawn += len(withdrawn)
    report.batches += 1


def _merge(merges: list[tuple[str, str]], store: ClinicalStore, vault: IdentityVault,
           node_key: bytes) -> int:
    """Apply HL7 A40 merges (prior MRN → surviving MRN) and retire the prior MRNs."""
    if not merges:
        return 0
    person = persons_of_mrns(store, sorted({m for pair in merges for m in pair}), node_key)
    pairs = [(person[prior], person[survivor]) for prior, survivor in merges]
    merge_persons(store, pairs)
    aliases = [{"key_id": key_id("mrn", prior, node_key), "person_id": person[survivor]}
               for prior, survivor in merges]
    store_load(store, {"person_key": aliases}, replace=True)
    vault.delete([prior for prior, survivor in pairs if prior != survivor])
    return len({prior for prior, survivor in pairs if prior != survivor})


def _committed_batches(store: ClinicalStore, export: str) -> set[int]:
    t = store.backend.table("ingest_progress")
    return set(t.filter(t.export_id == export).batch.to_pyarrow().to_pylist())




def pipeline(routed: Iterable[Routed], mapper: Mapper, store: ClinicalStore,
             vault: IdentityVault, keys: tuple[bytes, bytes], export: str,
             report: IngestReport, quarantine: Quarantine, batch_size: int,
             progress: ProgressCallback | None) -> None:
    """Load routed records: spill them, then map and commit batch by batch, skipping batches
    that a run with the same ``export`` id committed; apply merges; mark ``export`` finished.

    Every source of records (export folders, the HL7 inbox, a quarantine retry) goes through
    here, so each gets the same idempotence, resumption and quarantine.
    """
    done = _committed_batches(store, export)
    try:
        with Spill(batch_size) as spill:
            for key, origin, raw in routed:
                spill.add(key, origin, raw)
            for batch_no, patient_keys, records in spill.batches():
                if batch_no in done:
                    report.batches_resumed += 1
                    continue
                _load_batch(patient_keys, records, mapper, store, vault, keys,
                            {"export_id": export, "batch": batch_no}, report, quarantine)
                if progress is not None:
                    progress(min((batch_no + 1) * batch_size, spill.patients), spill.patients)
        report.merged = _merge(getattr(mapper, "merges", []), store, vault, keys[0])
        store_load(store, {"ingest_progress": [{"export_id": export, "batch": _FINISHED}]})
    finally:
        quarantine.close()
        report.quarantined_by_reason.update(quarantine.by_reason)
        report.quarantined_by_kind.update(quarantine.by_kind)
    report.quality = DataQuality.measure(store)


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
    mapping: Path | None = None,
    code_map: CodeMap | None = None,
    source: str = "",
) -> IngestReport:
    """Load one hospital's export folder; return what was loaded, updated and quarantined.

    FHIR and HL7 v2 exports are recognised by their files; CSV and Excel extracts are read as
    the YAML ``mapping`` file says (:mod:`medspace.connector.tabular_mapping`); ``code_map``
    translates the codes the store does not keep (:mod:`medspace.connector.codemap`); ``source``
    names the FHIR server of the export when a node has several. Safe to run
    again on the same export: it resumes after the last committed batch, and an export loaded
    to the end is not read again. Raises :class:`IngestError` for a bad mapping file, or if
    the store refuses a batch (the batches before it stay committed; a re-run resumes there).
    """
    started = time.perf_counter()
    export_dir = Path(export_dir)
    table_mapping = _mapping(mapping) if mapping is not None else None
    fmt = "tabular" if table_mapping is not None else detect_format(export_dir)
    store.create_schema()
    folder = quarantine_dir or default_quarantine_dir(store, export_dir)
    quarantine = Quarantine(folder / f"{export_dir.resolve().parent.name}-quarantine.ndjson")
    report = IngestReport(export_dir, fmt, quarantine.path)
    mapper: Mapper
    if table_mapping is not None:
        inputs = [path for _, path in tabular.files(export_dir, table_mapping)] + [mapping]
        routed = tabular.route(export_dir, quarantine, report.skipped, table_mapping)
        mapper = tabular.TabularMapper(quarantine, table_mapping)
    elif fmt == "fhir-ndjson":
        inputs = fhir_bulk.files(export_dir) + fhir_json.files(export_dir)
        routed = fhir_bulk.route(export_dir, quarantine, report.skipped)
        mapper = fhir_bulk.FhirMapper(quarantine, code_map, source)
    else:
        inputs = hl7v2.files(export_dir)
        routed = hl7v2.route(export_dir, quarantine, report.skipped)
        mapper = hl7v2.Hl7Mapper(quarantine, report.skipped, code_map)
    if code_map is not None and code_map.path is not None:
        inputs.append(code_map.path)
    export = export_id(inputs, fmt, batch_size)
    if _FINISHED in _committed_batches(store, export):
        quarantine.close()
        report.already_loaded = True
    else:
        pipeline(routed, mapper, store, vault, (node_key, linkage_key), export, report,
                 quarantine, batch_size, progress)
    report.quality = report.quality or DataQuality.measure(store)
    report.seconds = time.perf_counter() - started
    return report


def load_inbox(
    inbox: Inbox,
    store: ClinicalStore,
    vault: IdentityVault,
    node_key: bytes,
    linkage_key: bytes,
    progress: ProgressCallback | None = None,
    *,
    quarantine_dir: Path,
    batch_size: int = BATCH_SIZE,
    code_map: CodeMap | None = None,
) -> IngestReport:
    """Load the HL7 v2 messages the MLLP listener has accepted since the last load.

    The inbox remembers how far it has been loaded only after the store has committed, so a
    crash re-loads the last messages, which changes nothing.
    """
    started = time.perf_counter()
    store.create_schema()
    quarantine = Quarantine(quarantine_dir / "hl7-inbox-quarantine.ndjson")
    report = IngestReport(inbox.path, "hl7v2", quarantine.path)
    first, last = inbox.loaded_up_to(), inbox.last_seq()
    if last > first:
        export = "ex:" + hashlib.sha256(f"inbox\0{first}\0{last}\0{batch_size}".encode()
                                        ).hexdigest()[:32]
        routed = (hl7v2.route_message(f"inbox {m.sender}", m.seq, m.message.split("\r"),
                                      None, quarantine)
                  for m in inbox.iterate(first, last))
        pipeline((r for r in routed if r is not None),
                 hl7v2.Hl7Mapper(quarantine, report.skipped, code_map), store, vault,
                 (node_key, linkage_key), export, report, quarantine, batch_size, progress)
        inbox.mark_loaded(last)
    else:
        quarantine.close()
        report.already_loaded = True
        report.quality = DataQuality.measure(store)
    report.seconds = time.perf_counter() - started
    return report


def _load_batch(patient_keys: list[str], records: Iterable[Routed], mapper: Mapper,
                store: ClinicalStore, vault: IdentityVault, keys: tuple[bytes, bytes],
                progress_row: dict[str, Any], report: IngestReport,
                quarantine: Quarantine) -> None:
    known = _known(store, mapper.key_namespace, patient_keys, keys[0])
    patients = {key: PatientRows(key, person_id=pid) for key, pid in known.items()}
    for key, origin, raw in records:
        mapper.add(patients, key, origin, raw)
    quarantine.flush()
    _commit(patients, store, vault, keys, mapper.key_namespace, progress_row, report)

