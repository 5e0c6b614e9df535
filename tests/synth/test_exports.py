"""The export directories: layout, manifest, determinism, shared patients, content."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

from medspace.synth import ExportSummary, write_exports
from medspace.synth.codes import DRUG_A, LABS, RESPONSE_CODE, UCUM
from medspace.synth.fhir import RESIDENT_ID_SYSTEM, RESOURCE_TYPES, mrn_system
from medspace.synth.hl7v2 import MESSAGE_TYPES
from tests.synth.conftest import SEED
from tests.synth.helpers import fhir_hospitals, hl7_hospitals, read_hl7_messages, read_ndjson


def _tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_the_same_seed_writes_byte_identical_files(tmp_path: Path) -> None:
    write_exports(tmp_path / "one", 6, 60, 11, bundles=True)
    write_exports(tmp_path / "two", 6, 60, 11, bundles=True)
    one, two = _tree(tmp_path / "one"), _tree(tmp_path / "two")
    assert len(one) > 40
    assert one == two


def test_a_different_seed_writes_different_patients(tmp_path: Path) -> None:
    write_exports(tmp_path / "one", 1, 30, 1)
    write_exports(tmp_path / "two", 1, 30, 2)
    patients = "hospital-a/export/Patient.ndjson"
    assert _tree(tmp_path / "one")[patients] != _tree(tmp_path / "two")[patients]


def test_each_hospital_has_its_export_directory_files_and_manifest(
    export: ExportSummary,
) -> None:
    root = export.out_dir
    assert sorted(p.name for p in root.iterdir()) == [f"hospital-{c}" for c in "abcde"]
    for hospital in export.hospitals:
        directory = root / hospital.id / "export"
        manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
        assert manifest["seed"] == SEED
        assert manifest["hospital"]["id"] == hospital.id
        assert manifest["format"] == hospital.export_format
        assert manifest["records"]["patients"] == hospital.patients
        if hospital.export_format == "fhir-ndjson":
            assert set(manifest["counts"]) == set(RESOURCE_TYPES)
            for kind, count in manifest["counts"].items():
                lines = (directory / f"{kind}.ndjson").read_text(encoding="utf-8").splitlines()
                assert len(lines) == count
            assert manifest["counts"]["Patient"] == hospital.patients
            assert len(list((directory / "bundles").glob("*.json"))) == hospital.patients
        else:
            assert set(manifest["counts"]) == set(MESSAGE_TYPES)
            for kind, count in manifest["counts"].items():
                assert len(read_hl7_messages(directory / f"{kind}.hl7")) == count


def test_hospitals_differ_in_size_and_format(export: ExportSummary) -> None:
    sizes = {h.id: h.patients for h in export.hospitals}
    formats = {h.id: h.export_format for h in export.hospitals}
    assert sizes["hospital-a"] > sizes["hospital-c"] > sizes["hospital-e"]
    assert formats["hospital-a"] == "fhir-ndjson"
    assert formats["hospital-d"] == formats["hospital-e"] == "hl7v2"


def _identities(root: Path) -> dict[str, list[tuple[str, str, str, str]]]:
    """Resident ID number -> (hospital, MRN, name, birth date) wherever the person appears."""
    seen: dict[str, list[tuple[str, str, str, str]]] = defaultdict(list)
    for directory in fhir_hospitals(root):
        hospital = directory.parent.name
        for p in read_ndjson(directory / "Patient.ndjson"):
            ids = {i["system"]: i["value"] for i in p["identifier"]}
            seen[ids[RESIDENT_ID_SYSTEM]].append(
                (hospital, ids[mrn_system(hospital)], p["name"][0]["text"], p["birthDate"])
            )
    for directory in hl7_hospitals(root):
        hospital = directory.parent.name
        people = {}
        for m in read_hl7_messages(directory / "ADT_A01.hl7"):
            name = str(m["PID.F5.R1.C1"]) + str(m["PID.F5.R1.C2"])
            birth = dt.datetime.strptime(str(m["PID.F7"]), "%Y%m%d").date().isoformat()
            people[str(m["PID.F3.R2.C1"])] = (hospital, str(m["PID.F3.R1.C1"]), name, birth)
        for number, person in people.items():
            seen[number].append(person)
    return seen


def test_people_treated_at_several_hospitals_share_identity_under_different_mrns(
    export_dir: Path,
) -> None:
    shared = {n: v for n, v in _identities(export_dir).items() if len(v) > 1}
    assert len(shared) >= 10
    assert max(len(v) for v in shared.values()) == 3
    for appearances in shared.values():
        assert len({hospital for hospital, *_ in appearances}) == len(appearances)
        assert len({mrn for _, mrn, *_ in appearances}) == len(appearances)
        assert len({(name, birth) for *_, name, birth in appearances}) == 1


def test_shared_people_have_the_same_death_everywhere(export_dir: Path) -> None:
    deaths: dict[str, set[str | None]] = defaultdict(set)
    for directory in fhir_hospitals(export_dir):
        for p in read_ndjson(directory / "Patient.ndjson"):
            number = next(i["value"] for i in p["identifier"] if i["system"] == RESIDENT_ID_SYSTEM)
            deaths[number].add(p.get("deceasedDateTime"))
    assert all(len(d) == 1 for d in deaths.values())


def test_lab_observations_carry_ucum_units_and_loinc_codes(export_dir: Path) -> None:
    labs = 0
    for directory in fhir_hospitals(export_dir):
        for obs in read_ndjson(directory / "Observation.ndjson"):
            if obs["category"][0]["coding"][0]["code"] != "laboratory":
                continue
            labs += 1
            code = obs["code"]["coding"][0]["code"]
            quantity = obs["valueQuantity"]
            assert quantity["system"] == UCUM
            assert quantity["code"] == quantity["unit"] == LABS[code].unit
            assert quantity["value"] > 0
    assert labs > 1000


def test_hl7_lab_results_carry_ucum_units(export_dir: Path) -> None:
    for directory in hl7_hospitals(export_dir):
        for message in read_hl7_messages(directory / "ORU_R01.hl7"):
            for obx in message.segments("OBX"):
                if str(obx[2]) == "NM":
                    loinc = str(obx[3][0][0])
                    assert str(obx[3][0][2]) == "LN"
                    assert str(obx[6][0][0]) == LABS[loinc].unit
                    assert str(obx[6][0][2]) == "UCUM"


def test_notes_name_the_patient_with_id_number_and_phone(export_dir: Path) -> None:
    notes = 0
    for directory in fhir_hospitals(export_dir):
        people = {p["id"]: p for p in read_ndjson(directory / "Patient.ndjson")}
        for doc in read_ndjson(directory / "DocumentReference.ndjson"):
            text = base64.b64decode(doc["content"][0]["attachment"]["data"]).decode()
            patient = people[doc["subject"]["reference"].removeprefix("Patient/")]
            number = next(
                i["value"] for i in patient["identifier"] if i["system"] == RESIDENT_ID_SYSTEM
            )
            assert patient["name"][0]["text"] in text
            assert number in text
            assert patient["telecom"][0]["value"] in text
            notes += 1
    assert notes >= 5


def test_hl7_notes_carry_identifiers_in_escaped_text(export_dir: Path) -> None:
    notes = 0
    for directory in hl7_hospitals(export_dir):
        for message in read_hl7_messages(directory / "ORU_R01.hl7"):
            obx = message.segment("OBX")
            if str(obx[2]) == "TX":
                text = str(obx[5])
                assert str(message["PID.F3.R2.C1"]) in text
                assert "\\.br\\" in text
                notes += 1
    assert notes >= 1


def test_drug_a_responses_are_boolean_observations_about_the_medication(
    export_dir: Path,
) -> None:
    responses = 0
    for directory in fhir_hospitals(export_dir):
        statements = {m["id"]: m for m in read_ndjson(directory / "MedicationStatement.ndjson")}
        for obs in read_ndjson(directory / "Observation.ndjson"):
            if obs["code"]["coding"][0]["code"] != RESPONSE_CODE:
                continue
            statement = statements[
                obs["focus"][0]["reference"].removeprefix("MedicationStatement/")
            ]
            assert statement["subject"] == obs["subject"]
            assert isinstance(obs["valueBoolean"], bool)
            if statement["medicationCodeableConcept"]["coding"][0]["code"] == DRUG_A:
                responses += 1
    assert responses >= 10


def test_no_encounter_starts_after_the_patients_death(export_dir: Path) -> None:
    deaths = 0
    for directory in fhir_hospitals(export_dir):
        dead = {
            p["id"]: p["deceasedDateTime"]
            for p in read_ndjson(directory / "Patient.ndjson")
            if "deceasedDateTime" in p
        }
        deaths += len(dead)
        for enc in read_ndjson(directory / "Encounter.ndjson"):
            died = dead.get(enc["subject"]["reference"].removeprefix("Patient/"))
            if died:
                assert enc["period"]["start"] < died
                assert enc["period"]["end"] <= died
    assert deaths > 10


def test_files_do_not_depend_on_the_process_hash_seed(tmp_path: Path) -> None:
    script = (
        "import sys; from pathlib import Path; from medspace.synth import write_exports; "
        "write_exports(Path(sys.argv[1]), 5, 40, 5)"
    )
    for name, hash_seed in (("one", "1"), ("two", "2")):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        subprocess.run([sys.executable, "-c", script, str(tmp_path / name)], env=env, check=True)
    assert _tree(tmp_path / "one") == _tree(tmp_path / "two")


def test_allergies_are_coded_in_snomed_or_kept_as_the_hospitals_text(export_dir: Path) -> None:
    coded = free_text = 0
    for directory in fhir_hospitals(export_dir):
        for allergy in read_ndjson(directory / "AllergyIntolerance.ndjson"):
            assert allergy["code"]["text"]
            assert allergy["category"][0] in {"medication", "food", "environment"}
            if "coding" in allergy["code"]:
                assert allergy["code"]["coding"][0]["system"] == "http://snomed.info/sct"
                coded += 1
            else:
                free_text += 1
    assert coded > 0 and free_text > 0


def test_hl7_admissions_carry_allergies_and_procedures(export_dir: Path) -> None:
    segments = {"AL1": 0, "PR1": 0}
    for directory in hl7_hospitals(export_dir):
        for message in read_hl7_messages(directory / "ADT_A01.hl7"):
            for segment in message:
                name = str(segment[0])
                if name in segments:
                    segments[name] += 1
    assert all(count > 0 for count in segments.values())
