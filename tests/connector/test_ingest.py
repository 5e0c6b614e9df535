"""Loading synthetic exports: everything lands, identities only in the vault, links match."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa

from medspace.store.schema import TABLES
from medspace.store.tokens import linkage_token, person_pseudonym
from medspace.synth.writer import ExportSummary
from tests.connector.conftest import LINKAGE_KEY, Node, open_node


def _identities(export_dir: Path) -> dict[str, dict[str, str]]:
    """MRN → name, ID number and phone, read straight from the export files."""
    found: dict[str, dict[str, str]] = {}
    patients = export_dir / "Patient.ndjson"
    if patients.exists():
        for line in patients.read_text(encoding="utf-8").splitlines():
            p = json.loads(line)
            ids = {i["type"]["coding"][0]["code"]: i["value"] for i in p["identifier"]}
            found[ids["MR"]] = {
                "name": p["name"][0]["text"],
                "id_number": ids["NI"],
                "phone": p["telecom"][0]["value"],
            }
        return found
    for segment in (export_dir / "ADT_A01.hl7").read_bytes().decode("utf-8").split("\r"):
        if segment.startswith("PID|"):
            f = segment.split("|")
            mrn, number = (r.split("^")[0] for r in f[3].split("~"))
            family, given = f[5].split("^")
            found[mrn] = {"name": family + given, "id_number": number, "phone": f[13][:11]}
    return found


def test_every_hospital_of_both_formats_loads_all_its_patients(
    exports: ExportSummary, tmp_path: Path
) -> None:
    formats = set()
    for hospital in exports.hospitals:
        node = open_node(tmp_path / hospital.id)
        report = node.load(hospital.directory)
        formats.add(report.export_format)
        counts = node.store.row_counts()
        assert report.patients == hospital.patients == counts["person"]
        assert counts["visit"] == hospital.records["encounters"]
        assert counts["condition"] == hospital.records["diagnoses"]
        assert counts["drug_exposure"] == hospital.records["medications"]
        assert counts["measurement"] == hospital.records["lab_results"]
        assert counts["observation"] == hospital.records["treatment_responses"]
        assert counts["death"] == hospital.records["deaths"]
        assert report.quarantined == sum(report.quarantined_by_kind.values())
        assert set(report.quarantined_by_reason) <= {"no code (text only)"}
        assert f"patients: {hospital.patients} new" in report.to_text()
        node.store.close()
    assert formats == {"fhir-ndjson", "hl7v2"}


def test_clinical_tables_hold_no_name_id_number_or_phone(
    exports: ExportSummary, tmp_path: Path
) -> None:
    for hospital in exports.hospitals:
        node = open_node(tmp_path / hospital.id)
        node.load(hospital.directory)
        assert _identities(hospital.directory)
        secrets = {
            value
            for identity in _identities(hospital.directory).values()
            for value in (*identity.values(), *identity.values())
        }
        secrets |= set(_identities(hospital.directory))
        for table in TABLES:
            data = node.store.backend.table(table.name).to_pyarrow()
            for column in data.columns:
                if pa.types.is_string(column.type):
                    assert not secrets & set(column.to_pylist()), table.name
        node.store.close()


def test_vault_returns_the_identity_and_shared_patients_link_across_hospitals(
    exports: ExportSummary, tmp_path: Path
) -> None:
    tokens_by_hospital: dict[str, set[str]] = {}
    for hospital in exports.hospitals:
        node = open_node(tmp_path / hospital.id)
        node.load(hospital.directory)
        tokens_by_hospital[hospital.id] = set()
        for mrn, identity in _identities(hospital.directory).items():
            pid = person_pseudonym(mrn, node.node_key)
            stored = node.vault.get(pid)
            assert (stored.name, stored.id_number, stored.phone, stored.mrn) == (
                identity["name"],
                identity["id_number"],
                identity["phone"],
                mrn,
            )
            token = linkage_token(identity["id_number"], LINKAGE_KEY)
            assert node.vault.find(token) == [pid]
            tokens_by_hospital[hospital.id].add(token)
        node.store.close()
    shared = sum(h.records["shared_patients"] for h in exports.hospitals)
    ids = list(tokens_by_hospital.values())
    linked = {t for i, a in enumerate(ids) for b in ids[i + 1 :] for t in a & b}
    assert shared > 0
    assert linked


def test_a_second_run_of_an_unchanged_export_reads_nothing(
    exports: ExportSummary, node: Node
) -> None:
    for hospital in (exports.hospitals[0], exports.hospitals[-1]):
        first = node.load(hospital.directory)
        before = node.store.row_counts()
        quarantine = first.quarantine_file.read_text(encoding="utf-8")
        again = node.load(hospital.directory)
        assert again.already_loaded
        assert again.records == 0
        assert "nothing to do" in again.to_text()
        assert node.store.row_counts() == before
        assert first.quarantine_file.read_text(encoding="utf-8") == quarantine


def test_loading_a_touched_export_again_changes_no_row(
    exports: ExportSummary, node: Node
) -> None:
    for hospital in (exports.hospitals[0], exports.hospitals[-1]):
        first = node.load(hospital.directory)
        before = _snapshot(node)
        for path in hospital.directory.iterdir():
            path.touch()
        again = node.load(hospital.directory)
        assert not again.already_loaded
        assert again.patients == 0
        assert again.patients_updated == first.patients
        assert _snapshot(node) == before


def _snapshot(node: Node) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every clinical table, sorted: two equal snapshots are equal stores."""
    con = node.store.backend.con
    return {
        table: sorted(map(tuple, con.execute(f"SELECT * FROM {table}").fetchall()), key=repr)
        for table in node.store.table_names()
        if table != "ingest_progress"
    }
