"""Rejected records are kept with their reason; the rest still loads; no half batches."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from medspace.connector import IngestError, ingest
from medspace.connector.quarantine import read_quarantine
from medspace.synth.writer import ExportSummary
from tests.connector.conftest import Node


def _copy(exports: ExportSummary, fmt: str, tmp_path: Path) -> tuple[Path, int]:
    hospital = next(h for h in exports.hospitals if h.export_format == fmt)
    target = tmp_path / hospital.id / "export"
    shutil.copytree(hospital.directory, target)
    return target, hospital.patients


def test_malformed_fhir_lines_are_quarantined_with_reasons_and_the_rest_loads(
    exports: ExportSummary, node: Node, tmp_path: Path
) -> None:
    export, patients = _copy(exports, "fhir-ndjson", tmp_path)
    conditions = (export / "Condition.ndjson").read_bytes().decode("utf-8").splitlines()
    bad_code = json.loads(conditions[0])
    bad_code["code"]["coding"][0]["code"] = "ZZZ.9999999999"
    bad_system = json.loads(conditions[1])
    bad_system["code"]["coding"][0]["system"] = "http://example.org/local"
    no_date = json.loads(conditions[2])
    del no_date["onsetDateTime"], no_date["recordedDate"]
    lines = [
        '{"resourceType": "Condition", "id": "broken',
        json.dumps(bad_code),
        json.dumps(bad_system),
        json.dumps(no_date),
        *conditions[3:],
    ]
    (export / "Condition.ndjson").write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = node.load(export)
    assert report.patients == patients
    assert node.store.row_counts()["condition"] == len(conditions) - 3
    entries = {e["position"]: e for e in read_quarantine(report.quarantine_file)}
    assert entries[1]["reason"] == "malformed JSON"
    assert entries[2]["reason"] == "invalid ICD-10 code"
    assert entries[3]["reason"] == "unknown code system"
    assert entries[4]["reason"] == "missing required field"
    assert all(entries[n]["source"] == "Condition.ndjson" for n in (1, 2, 3, 4))
    assert report.quarantined_by_kind["Condition"] == 4


def test_unparseable_hl7_messages_are_quarantined_and_the_rest_loads(
    exports: ExportSummary, node: Node, tmp_path: Path
) -> None:
    export, patients = _copy(exports, "hl7v2", tmp_path)
    path = export / "ORU_R01.hl7"
    text = path.read_bytes().decode("utf-8")
    first = text.index("\rMSH|") + 1
    end = text.index("\rMSH|", first) + 1
    message = text[first:end]
    broken = "MSH|\r" + message.split("\r", 1)[1]
    path.write_text(text[:first] + broken + text[end:], encoding="utf-8")
    report = node.load(export)
    assert report.patients == patients
    entries = read_quarantine(report.quarantine_file)
    hl7_errors = [e for e in entries if e["reason"] == "HL7 message does not parse"]
    assert [(e["source"], e["position"]) for e in hl7_errors] == [("ORU_R01.hl7", 1)]
    labs = sum(1 for s in message.split("\r") if s.startswith("OBX|") and "|NM|" in s)
    hospital = next(h for h in exports.hospitals if h.export_format == "hl7v2")
    assert node.store.row_counts()["measurement"] == hospital.records["lab_results"] - labs


def test_hl7_files_with_crlf_or_lf_endings_load_exactly_as_with_cr(
    exports: ExportSummary, tmp_path: Path
) -> None:
    from tests.connector.conftest import open_node

    results = []
    for ending in ("\r", "\r\n", "\n"):
        export, _ = _copy(exports, "hl7v2", tmp_path / repr(ending))
        for path in export.glob("*.hl7"):
            text = path.read_bytes().decode("utf-8")
            path.write_bytes(text.replace("\r", ending).encode("utf-8"))
        node = open_node(tmp_path / repr(ending) / "node")
        node.node_key = b"K" * 32
        report = node.load(export)
        results.append((node.store.row_counts(), dict(report.loaded), report.quarantined))
        node.store.close()
    assert results[0] == results[1] == results[2]
    assert results[0][0]["person"] > 0


def test_a_batch_the_store_refuses_leaves_nothing_and_a_rerun_resumes(
    exports: ExportSummary, node: Node, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    export, patients = _copy(exports, "fhir-ndjson", tmp_path)
    real_load = ingest.store_load
    calls = {"n": 0}

    def refuse_second_batch(store: Any, batch: dict[str, list[dict[str, Any]]],
                            **options: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:
            bad = dict(batch["visit"][0], end_date=None, visit_type="teleport")
            batch = {**batch, "visit": [*batch["visit"], bad]}
        return real_load(store, batch, **options)

    monkeypatch.setattr(ingest, "store_load", refuse_second_batch)
    with pytest.raises(IngestError, match="batch 1 refused"):
        node.load(export, batch_size=10)
    assert node.store.row_counts()["person"] == 10
    monkeypatch.setattr(ingest, "store_load", real_load)
    report = node.load(export, batch_size=10)
    assert report.batches_resumed == 1
    assert report.patients == patients - 10
    assert node.store.row_counts()["person"] == patients
