"""FHIR JSON files load like bulk NDJSON: Bundles of every type and single resources."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medspace.connector.quarantine import read_quarantine
from medspace.synth.writer import ExportSummary, write_exports
from tests.connector.conftest import open_node


@pytest.fixture(scope="module")
def with_bundles(tmp_path_factory: pytest.TempPathFactory) -> ExportSummary:
    return write_exports(tmp_path_factory.mktemp("bundled"), 1, 25, seed=13, bundles=True)


def _ndjson(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_transaction_bundles_load_exactly_what_the_bulk_export_loads(
    with_bundles: ExportSummary, tmp_path: Path,
) -> None:
    export = with_bundles.hospitals[0].directory
    from_bulk, from_bundles = open_node(tmp_path / "bulk"), open_node(tmp_path / "bundles")
    try:
        bulk = from_bulk.load(export)
        bundled = from_bundles.load(export / "bundles")
        assert bundled.export_format == "fhir-ndjson"
        assert bundled.patients == bulk.patients == with_bundles.hospitals[0].patients
        assert bundled.quarantined_by_reason == bulk.quarantined_by_reason
        assert from_bundles.store.row_counts() == from_bulk.store.row_counts()
    finally:
        from_bulk.store.close()
        from_bundles.store.close()


def test_collection_bundle_with_urn_uuid_references_and_a_single_resource_file(
    with_bundles: ExportSummary, tmp_path: Path,
) -> None:
    export = with_bundles.hospitals[0].directory
    patient = _ndjson(export / "Patient.ndjson")[0]
    conditions = [c for c in _ndjson(export / "Condition.ndjson")
                  if c["subject"] == {"reference": f"Patient/{patient['id']}"}]
    assert conditions
    folder = tmp_path / "export"
    folder.mkdir()
    uuid = "urn:uuid:0b6a1c8e-9a43-4d6e-8f55-1f1c2f0d7a11"
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": uuid, "resource": patient},
        *({"resource": {**c, "subject": {"reference": uuid}}} for c in conditions[1:]),
    ]}
    (folder / "patient.json").write_text(json.dumps(bundle, ensure_ascii=False))
    single = {**conditions[0], "subject": {"reference": f"Patient/{patient['id']}"}}
    (folder / "condition.json").write_text(json.dumps(single, ensure_ascii=False))
    node = open_node(tmp_path / "node")
    try:
        report = node.load(folder)
        assert report.patients == 1 and report.quarantined == 0, report.to_text()
        assert report.loaded["Condition"] == len(conditions)
        assert node.store.row_counts()["condition"] == len(conditions)
    finally:
        node.store.close()


def test_broken_json_files_and_entries_are_quarantined_with_their_reason(
    with_bundles: ExportSummary, tmp_path: Path,
) -> None:
    export = with_bundles.hospitals[0].directory
    folder = tmp_path / "export"
    folder.mkdir()
    patient = _ndjson(export / "Patient.ndjson")[0]
    (folder / "good.json").write_text(json.dumps(
        {"resourceType": "Bundle", "type": "searchset",
         "entry": [{"resource": patient}, {"search": {"mode": "match"}}]}))
    (folder / "truncated.json").write_text('{"resourceType": "Bundle", "entry": [')
    (folder / "entries.json").write_text('{"resourceType": "Bundle", "entry": {"a": 1}}')
    (folder / "not-fhir.json").write_text('["just", "a", "list"]')
    node = open_node(tmp_path / "node")
    try:
        report = node.load(folder)
    finally:
        node.store.close()
    assert report.patients == 1
    found = {(e["source"], e["reason"]) for e in read_quarantine(report.quarantine_file)}
    assert found == {("good.json", "not a FHIR resource"),
                     ("truncated.json", "malformed JSON"),
                     ("entries.json", "wrong type or structure"),
                     ("not-fhir.json", "not a FHIR resource")}


def test_lab_result_with_a_mistyped_loinc_code_is_quarantined(
    with_bundles: ExportSummary, tmp_path: Path,
) -> None:
    export = with_bundles.hospitals[0].directory
    observation = next(o for o in _ndjson(export / "Observation.ndjson")
                       if o["code"]["coding"][0]["system"] == "http://loinc.org")
    patient = next(p for p in _ndjson(export / "Patient.ndjson")
                   if observation["subject"] == {"reference": f"Patient/{p['id']}"})
    observation["code"]["coding"][0]["code"] = "2345-8"
    observation.pop("encounter", None)
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "bundle.json").write_text(json.dumps({"resourceType": "Bundle", "type": "batch",
        "entry": [{"resource": patient}, {"resource": observation}]}, ensure_ascii=False))
    node = open_node(tmp_path / "node")
    try:
        report = node.load(folder)
    finally:
        node.store.close()
    [entry] = read_quarantine(report.quarantine_file)
    assert entry["reason"] == "invalid LOINC code" and "should be 7" in entry["detail"]
