"""Idempotence and updates: a record twice changes nothing, a newer version updates, an A40
merges, and records sent later find the patients the store already holds."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from medspace.connector.codemap import CodeMap
from medspace.connector.inbox import Inbox
from medspace.connector.ingest import load_inbox
from medspace.connector.quarantine import read_quarantine
from medspace.connector.retry import retry_quarantine
from medspace.store.tokens import person_pseudonym
from medspace.store.vault import UnknownPerson
from medspace.synth.writer import ExportSummary
from tests.connector.conftest import LINKAGE_KEY, Node


def _write_ndjson(folder: Path, resources: list[dict[str, Any]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    by_type: dict[str, list[str]] = {}
    for resource in resources:
        by_type.setdefault(resource["resourceType"], []).append(json.dumps(resource))
    for kind, lines in by_type.items():
        (folder / f"{kind}.ndjson").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def _patient(pid: str, mrn: str, birth: str = "1970-05-02", gender: str = "female") -> dict:
    return {"resourceType": "Patient", "id": pid, "gender": gender, "birthDate": birth,
            "name": [{"text": "王芳"}],
            "identifier": [{"type": {"coding": [{"code": "MR"}]}, "value": mrn}]}


def _glucose(oid: str, pid: str, value: float, day: str = "2024-03-01") -> dict:
    return {"resourceType": "Observation", "id": oid, "status": "final",
            "subject": {"reference": f"Patient/{pid}"}, "effectiveDateTime": day,
            "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7"}]},
            "valueQuantity": {"value": value, "unit": "mmol/L", "code": "mmol/L"}}


def _values(node: Node, sql: str) -> list[tuple[Any, ...]]:
    return sorted(node.store.backend.con.execute(sql).fetchall())


def test_the_same_resource_twice_in_one_export_is_kept_once(node: Node, tmp_path: Path) -> None:
    export = _write_ndjson(tmp_path / "export", [
        _patient("p1", "MRN-1"), _glucose("o1", "p1", 5.4), _glucose("o1", "p1", 5.4)])
    report = node.load(export)
    assert report.duplicates == 1
    assert node.store.row_counts()["measurement"] == 1


def test_a_resource_sent_again_with_a_new_value_updates_its_row(
    node: Node, tmp_path: Path
) -> None:
    node.load(_write_ndjson(tmp_path / "first", [
        _patient("p1", "MRN-1"), _glucose("o1", "p1", 5.4), _glucose("o2", "p1", 6.1)]))
    report = node.load(_write_ndjson(tmp_path / "second", [_glucose("o1", "p1", 7.9)]))
    assert report.patients == 0 and report.patients_updated == 1
    assert _values(node, "SELECT value_as_number FROM measurement") == [(6.1,), (7.9,)]


def test_an_updated_patient_replaces_the_person_row_and_the_identity(
    node: Node, tmp_path: Path
) -> None:
    node.load(_write_ndjson(tmp_path / "first", [_patient("p1", "MRN-1", "1970-05-02")]))
    node.load(_write_ndjson(tmp_path / "second", [
        _patient("p1", "MRN-1", "1971-06-03", gender="male")]))
    assert _values(node, "SELECT sex, birth_year, birth_month FROM person") == [("male", 1971, 6)]
    pid = person_pseudonym("MRN-1", node.node_key)
    assert node.vault.get(pid).birth_date.isoformat() == "1971-06-03"


def test_records_for_a_patient_neither_exported_nor_stored_are_quarantined(
    node: Node, tmp_path: Path
) -> None:
    report = node.load(_write_ndjson(tmp_path / "export", [_glucose("o1", "nobody", 5.4)]))
    assert report.quarantined_by_reason == {"unknown patient": 1}
    [entry] = read_quarantine(report.quarantine_file)
    assert "Patient/nobody" in str(entry["detail"])


def test_the_observation_period_grows_with_later_results(node: Node, tmp_path: Path) -> None:
    node.load(_write_ndjson(tmp_path / "first", [
        _patient("p1", "MRN-1"), _glucose("o1", "p1", 5.4, "2024-03-01")]))
    node.load(_write_ndjson(tmp_path / "second", [_glucose("o2", "p1", 5.0, "2025-01-09")]))
    periods = _values(node, "SELECT CAST(start_date AS TEXT), CAST(end_date AS TEXT)"
                            " FROM observation_period")
    assert periods == [("2024-03-01", "2025-01-09")]


def test_two_sources_with_the_same_fhir_ids_lose_nothing(
    exports: ExportSummary, node: Node
) -> None:
    fhir = [h for h in exports.hospitals if h.export_format == "fhir-ndjson"][:2]
    reports = [node.load(h.directory) for h in fhir]
    counts = node.store.row_counts()
    assert counts["person"] == sum(r.patients for r in reports)
    for table in ("condition", "drug_exposure", "visit", "procedure"):
        assert counts[table] == sum(r.rows[table] for r in reports)


HL7_HEADER = "MSH|^~\\&|HIS|HOSP|MEDSPACE|NODE|{when}||{kind}|{control}|P|2.5.1"


def _hl7(folder: Path, messages: list[list[str]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    text = "\r".join("\r".join(segments) for segments in messages) + "\r"
    (folder / "ADT_feed.hl7").write_text(text, encoding="utf-8")
    return folder


def _pid(mrn: str, birth: str = "19700502", sex: str = "F") -> str:
    return f"PID|1||{mrn}^^^HOSP^MR||李^娜||{birth}|{sex}"


def _admit(control: str, mrn: str, visit: str, kind: str = "ADT^A01", **pid: str) -> list[str]:
    return [HL7_HEADER.format(when="20240301080000", kind=kind, control=control),
            _pid(mrn, **pid), f"PV1|1|I|||||||||||||||||{visit}|||||||||||||||||||||||||20240301",
            "DG1|1||I10^Essential hypertension^I10||20240301"]


def test_an_a08_updates_demographics_and_repeats_nothing(node: Node, tmp_path: Path) -> None:
    export = _hl7(tmp_path / "export", [
        _admit("1", "M-1", "V-1"),
        _admit("2", "M-1", "V-1", kind="ADT^A08", birth="19700601", sex="M"),
    ])
    report = node.load(export)
    assert report.duplicates == 1
    assert _values(node, "SELECT sex, birth_year, birth_month FROM person") == [("male", 1970, 6)]
    assert node.store.row_counts()["condition"] == 1
    assert node.store.row_counts()["visit"] == 1


def test_an_a40_moves_everything_of_the_prior_patient_to_the_survivor(
    node: Node, tmp_path: Path
) -> None:
    node.load(_hl7(tmp_path / "first", [_admit("1", "OLD", "V-1"), _admit("2", "NEW", "V-2")]))
    merge = [HL7_HEADER.format(when="20240302080000", kind="ADT^A40^ADT_A39", control="3"),
             _pid("NEW"), "MRG|OLD^^^HOSP^MR"]
    report = node.load(_hl7(tmp_path / "merge", [merge]))
    assert report.merged == 1
    survivor, prior = (person_pseudonym(m, node.node_key) for m in ("NEW", "OLD"))
    assert _values(node, "SELECT person_id FROM person") == [(survivor,)]
    assert _values(node, "SELECT DISTINCT person_id FROM visit") == [(survivor,)]
    assert node.store.row_counts()["visit"] == 2
    with pytest.raises(UnknownPerson):
        node.vault.get(prior)
    later = [HL7_HEADER.format(when="20240303080000", kind="ORU^R01", control="4"),
             _pid("OLD"), "OBR|1||ORD-9|2345-7^Glucose^LN",
             "OBX|1|NM|2345-7^Glucose^LN||5.5|mmol/L|||||F|||20240303"]
    node.load(_hl7(tmp_path / "later", [later]))
    assert _values(node, "SELECT person_id FROM measurement") == [(survivor,)]
    assert _values(node, "SELECT person_id FROM person") == [(survivor,)]
    assert prior not in {row[0] for row in _values(node, "SELECT person_id FROM condition")}


def test_a_corrected_lab_result_replaces_the_first_one(node: Node, tmp_path: Path) -> None:
    def result(control: str, value: str, status: str) -> list[str]:
        return [HL7_HEADER.format(when="20240303080000", kind="ORU^R01", control=control),
                _pid("M-1"), "OBR|1||ORD-1|2345-7^Glucose^LN",
                f"OBX|1|NM|2345-7^Glucose^LN||{value}|mmol/L|||||{status}|||20240303"]

    node.load(_hl7(tmp_path / "first", [result("1", "5.5", "F")]))
    node.load(_hl7(tmp_path / "second", [result("2", "6.5", "C")]))
    assert _values(node, "SELECT value_as_number FROM measurement") == [(6.5,)]


def test_the_same_hl7_feed_loaded_again_changes_no_row(
    exports: ExportSummary, node: Node, tmp_path: Path
) -> None:
    hl7 = next(h for h in exports.hospitals if h.export_format == "hl7v2")
    first = node.load(hl7.directory)
    before = node.store.row_counts()
    copy = shutil.copytree(hl7.directory, tmp_path / "copy")
    for path in copy.iterdir():
        path.touch()
    again = node.load(copy)
    assert not again.already_loaded
    assert (again.patients, again.patients_updated) == (0, first.patients)
    after = node.store.row_counts()
    assert after.pop("ingest_progress") > before.pop("ingest_progress")
    assert after == before


def test_a_retry_loads_records_whose_patient_arrived_later(node: Node, tmp_path: Path) -> None:
    early = node.load(_write_ndjson(tmp_path / "early", [
        _glucose("o1", "p1", 5.4), _glucose("o2", "p1", 6.0)]))
    assert early.quarantined_by_reason == {"unknown patient": 2}
    node.load(_write_ndjson(tmp_path / "patients", [_patient("p1", "MRN-1")]))
    result = retry_quarantine(early.quarantine_file, node.store, node.vault, node.node_key,
                              LINKAGE_KEY)
    assert (result.tried, result.loaded, result.failed_again) == (2, 2, 0)
    assert read_quarantine(early.quarantine_file) == []
    assert _values(node, "SELECT value_as_number FROM measurement") == [(5.4,), (6.0,)]


def test_a_retry_keeps_what_fails_again_with_its_reason(node: Node, tmp_path: Path) -> None:
    bad = {**_glucose("o1", "p1", 5.4), "code": {"coding": [
        {"system": "http://loinc.org", "code": "2345-8"}]}}
    report = node.load(_write_ndjson(tmp_path / "export", [
        _patient("p1", "MRN-1"), bad, _glucose("o2", "nobody", 1.0)]))
    assert report.quarantined == 2
    result = retry_quarantine(report.quarantine_file, node.store, node.vault, node.node_key,
                              LINKAGE_KEY, select=lambda e: e["reason"] == "invalid LOINC code")
    assert (result.tried, result.loaded, result.failed_again) == (1, 0, 1)
    reasons = sorted(str(e["reason"]) for e in read_quarantine(report.quarantine_file))
    assert reasons == ["invalid LOINC code", "unknown patient"]


def test_the_hl7_inbox_loads_each_message_once(node: Node, tmp_path: Path) -> None:
    inbox = Inbox.open(tmp_path)
    for control, segments in (("1", _admit("1", "M-1", "V-1")), ("2", _admit("2", "M-2", "V-2"))):
        inbox.accept("\r".join(segments), "HIS|HOSP", control, "ADT^A01", "127.0.0.1")
    first = load_inbox(inbox, node.store, node.vault, node.node_key, LINKAGE_KEY,
                       quarantine_dir=tmp_path / "quarantine")
    assert first.patients == 2
    inbox.accept("\r".join(_admit("3", "M-1", "V-3", kind="ADT^A08")), "HIS|HOSP", "3",
                  "ADT^A08", "127.0.0.1")
    second = load_inbox(inbox, node.store, node.vault, node.node_key, LINKAGE_KEY,
                        quarantine_dir=tmp_path / "quarantine")
    assert (second.patients, second.patients_updated) == (0, 1)
    assert node.store.row_counts()["visit"] == 3
    third = load_inbox(inbox, node.store, node.vault, node.node_key, LINKAGE_KEY,
                       quarantine_dir=tmp_path / "quarantine")
    assert third.already_loaded


def _consent(cid: str, pid: str, status: str = "active") -> dict:
    return {"resourceType": "Consent", "id": cid, "status": status,
            "patient": {"reference": f"Patient/{pid}"}, "dateTime": "2024-01-05",
            "scope": {"coding": [{"code": "research"}]},
            "category": [{"coding": [{"code": "59284-0", "system": "http://loinc.org"}]}],
            "provision": {"type": "permit", "purpose": [
                {"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason",
                 "code": "HRESCH"}]}}


def test_a_consent_no_longer_in_force_removes_the_permit_it_gave(
    node: Node, tmp_path: Path
) -> None:
    node.load(_write_ndjson(tmp_path / "first", [_patient("p1", "MRN-1"), _consent("c1", "p1")]))
    assert _values(node, "SELECT purpose, decision FROM consent") == [("research", "permit")]
    report = node.load(_write_ndjson(tmp_path / "second", [_consent("c1", "p1", "inactive")]))
    assert report.withdrawn == 1 and report.quarantined == 0
    assert node.store.row_counts()["consent"] == 0


def test_a_result_entered_in_error_is_removed_and_the_period_shrinks(
    node: Node, tmp_path: Path
) -> None:
    node.load(_write_ndjson(tmp_path / "first", [
        _patient("p1", "MRN-1"), _glucose("o1", "p1", 5.4, "2024-03-01"),
        _glucose("o2", "p1", 9.9, "2025-06-01")]))
    void = {**_glucose("o2", "p1", 9.9, "2025-06-01"), "status": "entered-in-error"}
    node.load(_write_ndjson(tmp_path / "second", [void]))
    assert _values(node, "SELECT value_as_number FROM measurement") == [(5.4,)]
    periods = _values(node, "SELECT CAST(end_date AS TEXT) FROM observation_period")
    assert periods == [("2024-03-01",)]


def test_an_hl7_diagnosis_loads_from_its_alternate_code_or_through_the_code_map(
    node: Node, tmp_path: Path
) -> None:
    def admit(control: str, mrn: str, dg1: str) -> list[str]:
        return [*_admit(control, mrn, f"V-{control}")[:3], f"DG1|1||{dg1}||20240301"]

    table = tmp_path / "codes.csv"
    table.write_text("source_system,source_code,target_system,target_code\nSCT,73211009,icd-10,"
                     "E14.9\n")
    report = node.load(_hl7(tmp_path / "feed", [
        admit("1", "M-1", "44054006^Diabetes type 2^SCT^E11.9^^I10"),
        admit("2", "M-2", "73211009^Diabetes^SCT"),
        admit("3", "M-3", "38341003^Hypertension^SCT"),
    ]), code_map=CodeMap.load(table))
    assert _values(node, "SELECT condition_source_value FROM condition") == [
        ("E11.9",), ("E14.9",)]
    [entry] = read_quarantine(report.quarantine_file)
    assert (entry["kind"], entry["reason"]) == ("DG1", "unknown code system")


def test_the_report_names_the_share_of_empty_optional_values(node: Node, tmp_path: Path) -> None:
    no_unit = {**_glucose("o2", "p1", 6.0), "valueQuantity": {"value": 6.0}}
    report = node.load(_write_ndjson(tmp_path / "export", [
        _patient("p1", "MRN-1"), _glucose("o1", "p1", 5.4), no_unit]))
    assert report.quality is not None
    assert report.quality.missing["measurement"] == {"visit_id": 1.0, "unit_source_value": 0.5}
    assert "empty in measurement: visit_id 100.0%, unit_source_value 50.0%" in report.to_text()
