"""Quarantine retry: load quarantined records again, after the data or the mapping was fixed.

A quarantine entry keeps its record whole, so it can go through the same pipeline as an export
(:func:`medspace.connector.ingest.pipeline`): FHIR resources are routed to their patient again
(patients first), HL7 v2 messages whole. Entries that now load leave the quarantine; those that
fail again stay, with the reason of this attempt. The store commits before the quarantine file
is rewritten, so a crash in between leaves entries that a second retry loads again without
changing the store (a retry does not resume: it is short, and idempotent as a whole). An
entry for a whole unreadable file cannot be retried on its own: the fixed file is ingested
again instead.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medspace.connector import fhir_bulk, hl7v2
from medspace.connector.codemap import CodeMap
from medspace.connector.ingest import BATCH_SIZE, ProgressCallback, pipeline
from medspace.connector.mapping import Routed
from medspace.connector.quarantine import Quarantine, read_quarantine
from medspace.connector.report import IngestReport
from medspace.store.engine import ClinicalStore
from medspace.store.vault import IdentityVault

Entry = dict[str, Any]

#: Entry kinds that stand for a whole file, not one record.
_WHOLE_FILE = frozenset({"file"})


@dataclass
class RetryResult:
    """What a retry did: entries tried, loaded, failed again, and left as they were."""

    tried: int
    loaded: int
    failed_again: int
    not_retryable: int
    reports: list[IngestReport]


def _reader(entry: Entry) -> str | None:
    record = str(entry.get("record") or "")
    if entry.get("kind") in _WHOLE_FILE:
        return None
    if record.startswith("MSH"):
        return "hl7v2"
    if record.startswith("{"):
        return "fhir"
    return None


def _fhir_routed(entries: list[Entry], quarantine: Quarantine) -> Iterator[Routed]:
    resources = sorted(((e, *_fhir_resource(e)) for e in entries), key=lambda r: r[1] != "Patient")
    for entry, kind, line in resources:
        routed = fhir_bulk.route_line(entry["source"], entry["position"], kind, line, quarantine)
        if routed is not None:
            yield routed


def _fhir_resource(entry: Entry) -> tuple[str, str]:
    """The type and line of an entry's resource: a Bundle entry's ``resource``, else the
    record itself."""
    record = str(entry["record"])
    if entry["kind"] != "entry":
        return str(entry["kind"]), record
    try:
        resource = json.loads(record).get("resource")
    except (ValueError, AttributeError):
        return "entry", record
    if not isinstance(resource, dict):
        return "entry", record
    line = json.dumps(resource, ensure_ascii=False, separators=(",", ":"))
    return str(resource.get("resourceType")), line


def _hl7_routed(entries: list[Entry], quarantine: Quarantine) -> Iterator[Routed]:
    seen: set[str] = set()
    for entry in entries:
        if entry["record"] in seen:
            continue
        seen.add(entry["record"])
        routed = hl7v2.route_message(entry["source"], entry["position"],
                                     str(entry["record"]).split("\r"), None, quarantine)
        if routed is not None:
            yield routed


def _rewrite(path: Path, kept: list[Entry]) -> None:
    """Replace the quarantine file atomically, readable by its owner only."""
    fd, name = tempfile.mkstemp(prefix=".retry-", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        for entry in kept:
            handle.write(json.dumps(entry, ensure_ascii=False) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(name, 0o600)
    os.replace(name, path)


def retry_quarantine(
    path: Path,
    store: ClinicalStore,
    vault: IdentityVault,
    node_key: bytes,
    linkage_key: bytes,
    *,
    select: Callable[[Entry], bool] | None = None,
    progress: ProgressCallback | None = None,
    batch_size: int = BATCH_SIZE,
    code_map: CodeMap | None = None,
    source: str = "",
) -> RetryResult:
    """Load the selected entries of the quarantine file at ``path`` again (all by default),
    translating codes with ``code_map`` if given; ``source`` as for
    :func:`medspace.connector.ingest.load_export`."""
    entries = read_quarantine(path)
    chosen = [e for e in entries if select is None or select(e)]
    groups: dict[str, list[Entry]] = {}
    for entry in chosen:
        groups.setdefault(_reader(entry) or "none", []).append(entry)
    kept = [e for e in entries if not (select is None or select(e))] + groups.pop("none", [])
    reports = []
    with tempfile.TemporaryDirectory(prefix="medspace-retry-") as scratch:
        again: list[Entry] = []
        for reader, group in sorted(groups.items()):
            quarantine = Quarantine(Path(scratch) / f"{reader}.ndjson")
            report = IngestReport(path, reader, path)
            started = time.perf_counter()
            if reader == "fhir":
                routed = _fhir_routed(group, quarantine)
                mapper = fhir_bulk.FhirMapper(quarantine, code_map, source)
            else:
                routed = _hl7_routed(group, quarantine)
                mapper = hl7v2.Hl7Mapper(quarantine, report.skipped, code_map)
            export = f"ex:{os.urandom(16).hex()}"
            pipeline(routed, mapper, store, vault, (node_key, linkage_key), export, report,
                     quarantine, batch_size, progress)
            report.seconds = time.perf_counter() - started
            reports.append(report)
            again += read_quarantine(quarantine.path)
        _rewrite(path, kept + again)
    tried = sum(len(g) for g in groups.values())
    failed_at = {(e["source"], e["position"]) for e in again}
    failed = sum(1 for g in groups.values() for e in g if (e["source"], e["position"]) in failed_at)
    return RetryResult(tried=tried, loaded=tried - failed, failed_again=failed,
                       not_retryable=len(chosen) - tried, reports=reports)
