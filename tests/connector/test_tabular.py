"""CSV and Excel exports with a mapping file: the file is checked whole when loaded, rows are
routed to their patients and mapped, and every row that cannot be is quarantined with a reason.

The reader is driven directly (``route`` then ``TabularMapper.add``), as the ingest does.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import shutil
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medspace.connector.ingest import IngestError
from medspace.connector.mapping import PatientRows
from medspace.connector.quarantine import Quarantine, Rejected, read_quarantine
from medspace.connector.tabular import TabularMapper, route, sniff_delimiter
from medspace.connector.tabular_mapping import (
    TARGETS,
    ColumnRule,
    MappingFileError,
    TabularMapping,
    load_mapping,
    parse_mapping,
    read_value,
)
from tests.connector.conftest import open_node
from tests.connector.data.tabular.make_xlsx import write_registry

DATA = Path(__file__).parent / "data" / "tabular"
EXAMPLE = Path(__file__).parents[2] / "docs" / "examples" / "lis-mapping.yaml"
LAB_HEADER = "结果ID;病历号;患者姓名;就诊号;检验代码;检验项目;结果;单位;报告时间"
GOOD_LAB = "R0001;100001;张伟;V1001;GLU;葡萄糖;6.8;mmol/L;2024-01-06 08:30"


class Ingest:
    """One run of the reader over an export: routed rows, patients, quarantine, skipped."""

    def __init__(self, export: Path, mapping: TabularMapping, scratch: Path,
                 patients: dict[str, PatientRows] | None = None) -> None:
        quarantine = Quarantine(scratch / "q.ndjson")
        self.skipped: Counter[str] = Counter()
        self.routed = list(route(export, quarantine, self.skipped, mapping))
        self.patients = patients if patients is not None else {}
        mapper = TabularMapper(quarantine, mapping)
        for key, origin, raw in self.routed:
            mapper.add(self.patients, key, origin, raw)
        quarantine.close()
        self.quarantine = read_quarantine(quarantine.path)

    def records(self, mrn: str) -> dict[str, Any]:
        """The patient's facts by record id, one fact each."""
        out = {}
        for record, facts in self.patients[mrn].records.items():
            assert len(facts) == 1
            out[record] = facts[0]
        return out

    def reasons(self) -> dict[tuple[str, int], tuple[str, str]]:
        return {(e["source"], e["position"]): (e["reason"], e["detail"]) for e in self.quarantine}


@pytest.fixture(scope="module")
def mapping() -> TabularMapping:
    return load_mapping(EXAMPLE)


@pytest.fixture
def export(tmp_path: Path) -> Path:
    """The example export: three CSV files and the registry workbook."""
    folder = tmp_path / "export"
    shutil.copytree(DATA, folder, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    write_registry(folder / "registry_2024.xlsx")
    return folder


@pytest.fixture
def example(export: Path, mapping: TabularMapping, tmp_path: Path) -> Ingest:
    return Ingest(export, mapping, tmp_path)


def _lab_file(export: Path, *rows: str, header: str = LAB_HEADER) -> None:
    text = "\r\n".join([header, *rows]) + "\r\n"
    (export / "lab_results_2024.csv").write_text(text, encoding="utf-8")


def _refusal(text: str) -> str:
    with pytest.raises(MappingFileError) as caught:
        parse_mapping(text, "test.yaml")
    return str(caught.value)


# --- the mapping file ---------------------------------------------------------------------


def test_the_example_mapping_file_loads(mapping: TabularMapping) -> None:
    by_name = {fm.name: fm for fm in mapping.files}
    assert list(by_name) == ["patients", "visits", "lis", "registry-diagnoses", "registry-drugs"]
    assert by_name["patients"].columns["sex"].values == {"男": "male", "女": "female",
                                                         "未知": "unknown"}
    assert by_name["lis"].delimiter == ";"
    assert by_name["registry-drugs"].columns["start_date"].date_format == ("excel",)
    assert by_name["visits"].columns["start_date"] == ColumnRule(column="入院日期",
                                                                 date_format=("%Y/%m/%d",))


def test_an_identifier_routed_into_a_clinical_column_is_refused_naming_the_field() -> None:
    text = EXAMPLE.read_text(encoding="utf-8").replace("value_as_number: 结果",
                                                       "value_as_number: 身份证号")
    line = next(n for n, t in enumerate(text.splitlines(), 1) if "身份证号" in t and "value" in t)
    message = _refusal(text)
    assert f"line {line}, files[2].columns.value_as_number.column" in message
    assert "'身份证号' holds a direct identifier (the id_number of 'patients')" in message
    assert "never into measurement.value_as_number" in message


@pytest.mark.parametrize(("column", "why"), [
    ("患者姓名", "listed in the identifiers of 'lis'"),
    ("病历号", "the MRN of"),
    ("Phone", "a well-known identifier column"),
    ("date_of_birth", "a well-known identifier column"),
])  # fmt: skip
def test_identifier_columns_are_known_from_the_mapping_and_by_their_usual_names(
    column: str, why: str
) -> None:
    text = EXAMPLE.read_text(encoding="utf-8").replace("unit_source_value: 单位",
                                                       f"unit_source_value: {column}")
    message = _refusal(text)
    assert "files[2].columns.unit_source_value.column" in message
    assert why in message


@pytest.mark.parametrize(("change", "expected"), [
    (("table: measurement", "table: lab_results"), "files[2].table: Input should be 'person'"),
    (("value_as_number: 结果", "result_value: 结果"),
     "files[2].columns.result_value: measurement has no column 'result_value'"),
    (("value_as_number: 结果", "phone: 结果"),
     "files[2].columns.phone: phone is a direct identifier: only a person mapping reads it"),
    (("      start_date: 诊断日期\n", ""),
     "files[3].columns: condition needs a mapping for start_date"),
    (("男: male", "男: man"), "files[0].columns.sex.values.男: invalid code: person.sex='man'"),
    (('"%Y/%m/%d"}', '"%Y/%m"}'), "files[1].columns.start_date.date_format: '%Y/%m' does not"),
    (("code_system: icd10", "code_system: atc"),
     "files[3].columns.condition_source_value.code_system: the store keeps"),
    (("    delimiter: \";\"", "    delimiter: \";\"\n    delimter: \";\""),
     "files[2].delimter: Extra inputs are not permitted"),
    (("name: lis", "name: LIS"), "files[2].name: String should match pattern"),
    (("name: lis", "name: visits"), "files[2].name: the name 'visits' is used twice"),
    (("    visit: 就诊号\n    record_id: 就诊号\n", "    record_id: 就诊号\n"),
     "files[1].visit: a visit mapping needs the column of the visit id"),
    (("pattern: \"visits*.csv\"", "pattern: \"../visits*.csv\""),
     "files[1].pattern: the pattern must name files inside the export folder"),
    (("header_row: 2\n    table: condition", "header_row: 0\n    table: condition"),
     "files[3].header_row: Input should be greater than or equal to 1"),
    (("unit_source_value: 单位", "unit_source_value: {column: 单位, constant: mmol/L}"),
     "files[2].columns.unit_source_value: give exactly one of 'column' and 'constant'"),
])  # fmt: skip
def test_a_wrong_mapping_file_is_refused_naming_the_field(
    change: tuple[str, str], expected: str
) -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    assert change[0] in text
    assert expected in _refusal(text.replace(change[0], change[1], 1))


def test_yaml_problems_are_refused_with_their_line(tmp_path: Path) -> None:
    assert "line 3: 'name' is given twice" in _refusal("files:\n  - name: a\n    name: b\n")
    assert "line 2, column 1" in _refusal("files: [\n")
    assert "the file is empty" in _refusal("")
    path = tmp_path / "hospital-mapping.yaml"
    path.write_text("files: []\n", encoding="utf-8")
    with pytest.raises(MappingFileError, match=r"(?s)^hospital-mapping\.yaml: .*names no files"):
        load_mapping(path)


def test_yaml_scalars_stay_text_so_value_maps_match_cells() -> None:
    mapping = parse_mapping("""
files:
  - name: response
    pattern: "*.csv"
    table: observation
    mrn: MRN
    columns:
      observation_source_value: {constant: treatment-response}
      value_as_concept: {column: answer, values: {Y: Y, N: N, yes: Y, 01: Y, 00: N}}
      observation_date: {column: date, values: {2024-01-01: 2024-01-01}}
""", "inline.yaml")
    columns = mapping.files[0].columns
    assert columns["value_as_concept"].values == {"Y": "Y", "N": "N", "yes": "Y", "01": "Y",
                                                  "00": "N"}
    assert columns["observation_date"].values == {"2024-01-01": "2024-01-01"}


# --- routing and mapping the example export ----------------------------------------------


def test_every_row_of_the_example_export_is_routed_person_files_first(example: Ingest) -> None:
    assert example.quarantine == []
    kinds = [origin.kind for _, origin, _ in example.routed]
    assert kinds[:5] == ["person"] * 5 and "person" not in kinds[5:]
    assert Counter(kinds) == {"person": 5, "visit": 4, "measurement": 5, "condition": 3,
                              "drug_exposure": 2}
    assert example.skipped == {"registry-drugs: rows without 治疗药物": 1}
    first_lab = next(r for r in example.routed if r[1].kind == "measurement")
    assert first_lab[0] == "100001"
    assert (first_lab[1].source, first_lab[1].position) == ("lab_results_2024.csv", 2)
    for _, _, raw in example.routed:
        assert "\n" not in raw and "\r" not in raw
        routed = json.loads(raw)
        if routed["file"] != "patients":
            assert {"患者姓名", "姓名", "检验项目"}.isdisjoint(routed["row"])


def test_person_rows_give_the_identity_and_the_person_row(example: Ingest) -> None:
    zhang = example.patients["100001"]
    assert zhang.person is not None and zhang.person_origin is not None
    assert (zhang.person.sex, zhang.person.birth_date) == ("male", dt.date(1965, 3, 12))
    identity = zhang.person.identity
    assert (identity.name, identity.mrn, identity.phone) == ("张伟", "100001", "13800000001")
    assert identity.id_number == "110101196503120018"
    assert identity.address == "北京市东城区和平里一巷1号"
    assert zhang.person_origin.source == "patients.csv"
    wang = example.patients["100003"].person
    assert wang is not None and wang.death_date == dt.date(2023, 10, 2) and wang.sex == "female"
    zhao = example.patients["100004"].person
    assert zhao is not None and zhao.birth_date == dt.date(1990, 2, 20)
    chen = example.patients["100005"].person
    assert chen is not None and chen.sex == "unknown" and chen.identity.id_number is None


def test_no_identifier_reaches_a_clinical_row(example: Ingest) -> None:
    identifiers = set()
    for rows in example.patients.values():
        assert rows.person is not None
        ident = rows.person.identity
        identifiers |= {ident.name, ident.mrn, ident.id_number, ident.phone, ident.address}
    identifiers.discard(None)
    for rows in example.patients.values():
        facts = [f for fs in rows.records.values() for f in fs] + list(rows.visits.values())
        for fact in facts:
            assert not identifiers & {str(v) for v in fact.row.values()}, fact


def test_lab_results_become_measurements_with_loinc_codes_units_and_visits(
    example: Ingest,
) -> None:
    records = example.records("100001")
    glucose = records["lis/R0001"]
    assert glucose.table == "measurement" and glucose.visit_ref == "V1001"
    assert glucose.row == {"measurement_source_value": "2345-7", "value_as_number": 6.8,
                           "unit_source_value": "mmol/L", "measurement_date": dt.date(2024, 1, 6)}
    assert records["lis/R0002"].row["measurement_source_value"] == "718-7"
    assert example.records("100004")["lis/R0005"].visit_ref is None


def test_visit_rows_become_visits(example: Ingest) -> None:
    visits = example.patients["100001"].visits
    assert set(visits) == {"V1001", "V1002"}
    assert visits["V1001"].row == {"visit_type": "inpatient", "start_date": dt.date(2024, 1, 5),
                                   "end_date": dt.date(2024, 1, 12)}
    assert visits["V1001"].record == "visits/V1001"
    assert visits["V1002"].row["end_date"] is None
    assert example.patients["100002"].visits["V2001"].row["visit_type"] == "emergency"


def test_the_registry_workbook_gives_conditions_and_drugs(example: Ingest) -> None:
    zhang = example.records("100001")
    assert zhang["registry-diagnoses/T001"].row == {"condition_source_value": "C34.1",
                                                    "start_date": dt.date(2024, 1, 8)}
    assert zhang["registry-drugs/T001"].row == {"drug_source_value": "L01XE03",
                                                "start_date": dt.date(2024, 1, 9)}
    wang = example.records("100003")
    assert wang["registry-diagnoses/T002"].row["condition_source_value"] == "C50.9"
    assert "registry-drugs/T002" not in wang
    chen = example.records("100005")
    assert chen["registry-diagnoses/T003"].row["start_date"] == dt.date(2024, 2, 20)
    assert chen["registry-drugs/T003"].row["start_date"] == dt.date(2024, 2, 28)
    positions = {o.position for _, o, _ in example.routed if o.source == "registry_2024.xlsx"}
    assert positions == {3, 4, 5}


def test_a_corrected_result_replaces_the_earlier_one(
    export: Path, mapping: TabularMapping, tmp_path: Path
) -> None:
    _lab_file(export, GOOD_LAB, GOOD_LAB.replace(";6.8;", ";7.1;"))
    result = Ingest(export, mapping, tmp_path)
    assert result.records("100001")["lis/R0001"].row["value_as_number"] == 7.1


def test_without_a_record_id_a_row_is_identified_by_its_content(
    export: Path, tmp_path: Path
) -> None:
    text = EXAMPLE.read_text(encoding="utf-8").replace("    record_id: 结果ID\n", "")
    mapping = parse_mapping(text, "no-ids.yaml")
    _lab_file(export, GOOD_LAB, GOOD_LAB.replace("R0001", "R0009"),
              GOOD_LAB.replace(";6.8;", ";7.1;"))
    result = Ingest(export, mapping, tmp_path)
    facts = [f for f in result.patients["100001"].records.values() if f[0].table == "measurement"]
    assert sorted(f[0].row["value_as_number"] for f in facts) == [6.8, 7.1]
    assert all(f[0].record is None for f in facts)


def test_rows_attach_to_a_patient_already_in_the_store(
    export: Path, mapping: TabularMapping, tmp_path: Path
) -> None:
    (export / "patients.csv").unlink()
    known = {"100001": PatientRows("100001", person_id="ps:" + "0" * 32)}
    result = Ingest(export, mapping, tmp_path, patients=known)
    assert "lis/R0001" in result.records("100001")
    assert {e["reason"] for e in result.quarantine} == {"unknown patient"}


# --- quarantine -----------------------------------------------------------------------------


@pytest.mark.parametrize(("row", "reason", "detail"), [
    ("R0002;;张伟;V1001;GLU;葡萄糖;6.8;mmol/L;2024-01-06", "missing required field",
     "病历号 (MRN)"),
    ("R0002;100001;张伟;V1001;GLU;葡萄糖;6.8;mmol/L", "wrong column count",
     "8 fields where the header has 9"),
    ("R0002;100001;张伟;V1001;GLU;葡萄糖;6.8;mmol/L;2024-01-06;x", "wrong column count", "10"),
    ("R0002;100001;张伟;V1001;GLU;葡萄糖;阴性;mmol/L;2024-01-06", "invalid value",
     "结果 (measurement.value_as_number)='阴性' is not a number"),
    ("R0002;100001;张伟;V1001;GLU;葡萄糖;nan;mmol/L;2024-01-06", "invalid value", "'nan'"),
    ("R0002;100001;张伟;V1001;LDL;葡萄糖;6.8;mmol/L;2024-01-06", "unmapped value",
     "检验代码 (measurement.measurement_source_value)='LDL' is not in the value map"),
    ("R0002;100001;张伟;V1001;GLU;葡萄糖;6.8;mmol/L;2024-13-06", "invalid date",
     "报告时间 (measurement.measurement_date)='2024-13-06'"),
    ("R0002;100001;张伟;V1001;GLU;葡萄糖;6.8;mmol/L;", "missing required field",
     "报告时间 (measurement.measurement_date)"),
    ("R0002;100001;张伟;V1001;GLU;葡萄糖;6.8;mmol/LL;2024-01-06", "invalid unit",
     "unknown unit 'LL'"),
    (";100001;张伟;V1001;GLU;葡萄糖;6.8;mmol/L;2024-01-06", "missing required field", "结果ID"),
    ("R0002;999999;某人;V1001;GLU;葡萄糖;6.8;mmol/L;2024-01-06", "unknown patient", "病历号"),
    ("R0002;100\t001;张伟;V1001;GLU;葡萄糖;6.8;mmol/L;2024-01-06", "invalid value",
     "病历号 (MRN) is not a plain identifier"),
])  # fmt: skip
def test_a_bad_lab_row_is_quarantined_with_its_reason_and_the_rest_loads(
    export: Path, mapping: TabularMapping, tmp_path: Path, row: str, reason: str, detail: str
) -> None:
    _lab_file(export, GOOD_LAB, row)
    result = Ingest(export, mapping, tmp_path)
    assert "lis/R0001" in result.records("100001")
    [entry] = result.quarantine
    assert (entry["source"], entry["position"], entry["kind"]) == (
        "lab_results_2024.csv", 3, "measurement")
    assert entry["reason"] == reason and detail in entry["detail"]
    assert ";V1001;" in entry["record"] or json.loads(entry["record"])["file"] == "lis"


def test_undecodable_bytes_are_quarantined_with_the_bytes_shown(
    export: Path, mapping: TabularMapping, tmp_path: Path
) -> None:
    good = (LAB_HEADER + "\r\n" + GOOD_LAB + "\r\n").encode()
    bad = b"R0003;100001;\xff\xfe;V1001;GLU;x;6.8;mmol/L;2024-01-06\r\n"
    (export / "lab_results_2024.csv").write_bytes(good + bad)
    result = Ingest(export, mapping, tmp_path)
    assert result.reasons() == {("lab_results_2024.csv", 3): (
        "not decodable", "line 3 is not UTF-8 or GB 18030")}
    assert "\\xff\\xfe" in result.quarantine[0]["record"]
    assert "lis/R0001" in result.records("100001")


def test_a_declared_encoding_is_held_to(
    export: Path, mapping: TabularMapping, tmp_path: Path
) -> None:
    text = EXAMPLE.read_text(encoding="utf-8").replace(
        "    table: person\n", "    table: person\n    encoding: utf-8\n")
    result = Ingest(export, parse_mapping(text, "utf8.yaml"), tmp_path)
    reasons = {why for (source, _), why in result.reasons().items() if source == "patients.csv"}
    assert reasons == {("unreadable header", "not decodable: line 1 is not utf-8")}


def test_a_header_without_a_mapped_column_quarantines_every_row(
    export: Path, mapping: TabularMapping, tmp_path: Path
) -> None:
    _lab_file(export, GOOD_LAB, GOOD_LAB.replace("R0001", "R0002"),
              header=LAB_HEADER.replace("报告时间", "时间"))
    result = Ingest(export, mapping, tmp_path)
    lab = [e for e in result.quarantine if e["source"] == "lab_results_2024.csv"]
    assert [e["position"] for e in lab] == [2, 3]
    assert {(e["reason"], e["detail"]) for e in lab} == {
        ("missing mapped column", "报告时间 not in the header of lab_results_2024.csv (9 columns)")}


def test_a_rejected_person_takes_their_records_with_them(
    export: Path, mapping: TabularMapping, tmp_path: Path
) -> None:
    patients = (export / "patients.csv").read_bytes().replace(b"19650312", b"18000312")
    (export / "patients.csv").write_bytes(patients)
    result = Ingest(export, mapping, tmp_path)
    reasons = result.reasons()
    assert reasons[("patients.csv", 2)] == ("invalid date", "birth year 1800")
    assert reasons[("lab_results_2024.csv", 2)][0] == "patient rejected"
    assert reasons[("visits.csv", 2)][0] == "patient rejected"
    assert reasons[("registry_2024.xlsx", 3)][0] == "patient rejected"


def test_value_maps_are_exhaustive(
    export: Path, mapping: TabularMapping, tmp_path: Path
) -> None:
    patients = (export / "patients.csv").read_bytes().replace("男".encode("gb18030"), b"M", 1)
    (export / "patients.csv").write_bytes(patients)
    result = Ingest(export, mapping, tmp_path)
    assert result.reasons()[("patients.csv", 2)] == (
        "unmapped value", "性别 (person.sex)='M' is not in the value map")


def test_unreadable_files_and_sheets_are_quarantined(
    export: Path, mapping: TabularMapping, tmp_path: Path
) -> None:
    (export / "registry_2024.xlsx").write_bytes(b"PK\x03\x04 not really a workbook")
    (export / "registry_2023.xls").write_bytes(b"\xd0\xcf\x11\xe0")
    (export / "registry_2022.xlsx").write_bytes(b"")
    (export / "notes.csv").write_text("anything\n", encoding="utf-8")
    result = Ingest(export, mapping, tmp_path)
    by_source = {e["source"]: e for e in result.quarantine}
    assert by_source["registry_2024.xlsx"]["reason"] == "unreadable workbook"
    assert by_source["registry_2022.xlsx"]["reason"] == "unreadable workbook"
    assert result.skipped["file without a mapping"] == 1  # notes.csv
    text = EXAMPLE.read_text(encoding="utf-8").replace("registry_*.xlsx", "registry_*")
    result = Ingest(export, parse_mapping(text, "any.yaml"), tmp_path / "again")
    assert {e["source"]: e["reason"] for e in result.quarantine}["registry_2023.xls"] == (
        "unsupported file")


def test_a_missing_sheet_and_an_empty_file_are_quarantined(
    export: Path, mapping: TabularMapping, tmp_path: Path
) -> None:
    text = EXAMPLE.read_text(encoding="utf-8").replace("sheet: 肿瘤登记", "sheet: 随访")
    (export / "lab_results_2024.csv").write_bytes(b"")
    result = Ingest(export, parse_mapping(text, "sheet.yaml"), tmp_path)
    assert result.reasons()[("registry_2024.xlsx", 0)] == (
        "missing sheet", "no sheet '随访' in registry_2024.xlsx")
    assert result.reasons()[("lab_results_2024.csv", 0)][0] == "missing header"


# --- values, dates, delimiters ----------------------------------------------------------


@pytest.mark.parametrize(("cell", "formats", "expected"), [
    ("2024-03-01", None, dt.date(2024, 3, 1)),
    ("2024/03/01", None, dt.date(2024, 3, 1)),
    ("20240301", None, dt.date(2024, 3, 1)),
    ("2024-03-01 08:30:00", None, dt.date(2024, 3, 1)),
    ("2024-03-01T08:30", None, dt.date(2024, 3, 1)),
    (20240301, None, dt.date(2024, 3, 1)),
    ("01/03/2024", ("%d/%m/%Y",), dt.date(2024, 3, 1)),
    ("2024年3月1日", ("%Y年%m月%d日",), dt.date(2024, 3, 1)),
    ("45352", ("excel",), dt.date(2024, 3, 1)),
    (45352, ("excel",), dt.date(2024, 3, 1)),
    (45352.75, ("excel",), dt.date(2024, 3, 1)),
    ({"date": "2024-03-01"}, ("%d/%m/%Y",), dt.date(2024, 3, 1)),
    ("", None, None),
])  # fmt: skip
def test_dates_are_read_in_the_declared_formats(
    cell: Any, formats: tuple[str, ...] | None, expected: dt.date | None
) -> None:
    rule = ColumnRule(column="date", date_format=formats)
    assert read_value(TARGETS["condition"]["start_date"], rule, cell, "date") == expected


@pytest.mark.parametrize(("cell", "formats"), [
    ("01/03/2024", None),
    ("45352", None),
    (45352, ("%Y-%m-%d",)),
    ("12", ("excel",)),
    ("3000000", ("excel",)),
    ("2024-02-30", None),
    ("2024016", ("%Y%m%d",)),
])  # fmt: skip
def test_a_date_outside_the_declared_formats_is_refused(
    cell: Any, formats: tuple[str, ...] | None
) -> None:
    rule = ColumnRule(column="date", date_format=formats)
    with pytest.raises(Rejected, match=r"^invalid date: date="):
        read_value(TARGETS["condition"]["start_date"], rule, cell, "date")


def test_numbers_and_codes_are_read_strictly() -> None:
    value = TARGETS["measurement"]["value_as_number"]
    assert read_value(value, ColumnRule(column="v"), " 1.5e2 ", "v") == 150.0
    assert read_value(value, ColumnRule(column="v"), 7, "v") == 7.0
    for bad in ("1,5", "<0.5", "inf", "1_000"):
        with pytest.raises(Rejected, match="invalid value"):
            read_value(value, ColumnRule(column="v"), bad, "v")
    code = TARGETS["condition"]["condition_source_value"]
    assert read_value(code, ColumnRule(column="c"), " c341 ", "c") == "C34.1"
    with pytest.raises(Rejected, match="invalid ICD-10 code"):
        read_value(code, ColumnRule(column="c"), "肺癌", "c")
    unit = TARGETS["measurement"]["unit_source_value"]
    assert read_value(unit, ColumnRule(constant="mmol/L"), "ignored", "u") == "mmol/L"


@pytest.mark.parametrize(("line", "expected"), [
    ("a,b,c", ","), ("a;b;c", ";"), ("a\tb\tc", "\t"), ("a|b|c", "|"), ("single", ","),
    ('"x,y,z";b;c', ";"), ("病历号；姓名", ","), ("a;b,c", ","),
])  # fmt: skip
def test_the_delimiter_is_sniffed_from_the_header(line: str, expected: str) -> None:
    assert sniff_delimiter(line) == expected


def test_a_tab_delimited_gb18030_file_with_title_rows_is_read(tmp_path: Path) -> None:
    mapping = parse_mapping("""
files:
  - name: his
    pattern: "*.txt"
    table: person
    header_row: 3
    mrn: 住院号
    columns:
      birth_date: 生日
      sex: {column: 性别, values: {"1": male, "2": female}}
""", "tab.yaml")
    export = tmp_path / "export"
    export.mkdir()
    rows = ["病人信息导出", "", "住院号\t生日\t性别", "Z1\t1970-01-02\t1", "", "Z2\t1980-05-06\t2"]
    text = "\r\n".join(rows) + "\r\n"
    (export / "people.txt").write_bytes(text.encode("gb18030"))
    result = Ingest(export, mapping, tmp_path)
    assert result.quarantine == []
    assert [(o.position, k) for k, o, _ in result.routed] == [(4, "Z1"), (6, "Z2")]
    assert result.patients["Z2"].person is not None
    assert result.patients["Z2"].person.sex == "female"


def test_a_quoted_multi_line_field_is_one_row(export: Path, mapping: TabularMapping,
                                              tmp_path: Path) -> None:
    _lab_file(export, GOOD_LAB.replace("葡萄糖", '"葡萄糖\r\n空腹"'),
              GOOD_LAB.replace("R0001", "R0002"))
    result = Ingest(export, mapping, tmp_path)
    assert result.quarantine == []
    assert [o.position for _, o, _ in result.routed if o.kind == "measurement"] == [2, 4]


@pytest.mark.parametrize("newline", ["\n", "\r", "\r\n"])
def test_an_overlong_line_is_quarantined_and_the_lines_after_it_still_load(
    export: Path, mapping: TabularMapping, tmp_path: Path, newline: str
) -> None:
    overlong = GOOD_LAB.replace("R0001", "R0002").replace("张伟", "张" * 600_000)
    rows = [LAB_HEADER, GOOD_LAB, overlong, GOOD_LAB.replace("R0001", "R0003")]
    (export / "lab_results_2024.csv").write_bytes((newline.join(rows) + newline).encode())
    result = Ingest(export, mapping, tmp_path)
    assert set(result.records("100001")) >= {"lis/R0001", "lis/R0003"}
    [entry] = result.quarantine
    assert (entry["position"], entry["reason"]) == (3, "row too long")
    assert len(entry["record"]) < 70_000


# --- hostile files --------------------------------------------------------------------------


def _run_lab_bytes(data: bytes, mapping: TabularMapping) -> Ingest:
    with tempfile.TemporaryDirectory() as scratch:
        export = Path(scratch) / "export"
        shutil.copytree(DATA, export, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
        (export / "lab_results_2024.csv").write_bytes(data)
        return Ingest(export, mapping, Path(scratch))


def _check_invariants(result: Ingest) -> None:
    for key, origin, raw in result.routed:
        assert key and "\t" not in key and "\n" not in raw
        assert json.loads(raw)["file"] in ("patients", "visits", "lis")
        assert origin.position >= 1
    for entry in result.quarantine:
        assert entry["reason"] and entry["detail"] and entry["source"]
        assert isinstance(entry["record"], str) and isinstance(entry["position"], int)


def _mutations() -> st.SearchStrategy[bytes]:
    good = (DATA / "lab_results_2024.csv").read_bytes()
    blob = st.binary(min_size=1, max_size=80)
    at = st.integers(0, len(good))
    return st.one_of(
        st.binary(max_size=400),
        at.map(lambda n: good[:n]),
        st.tuples(at, blob).map(lambda t: good[: t[0]] + t[1] + good[t[0]:]),
        st.sampled_from([b",", b"\t", b"|", b'"', b"\r", b"\n", b""]).map(
            lambda d: good.replace(b";", d)),
        st.tuples(at, st.sampled_from([b'"', b"\x00", b"\xff", b";;", b"\r\n\r\n"])).map(
            lambda t: good[: t[0]] + t[1] + good[t[0]:]),
        st.just(good.replace(b"\r\n", b"\r")),
        st.just(good[:60] + b'"' + b"x" * 300_000 + good[60:]),
        st.just(good[:60] + b"y" * (1 << 21) + good[60:]),
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=_mutations())
def test_hostile_csv_bytes_never_crash_and_every_rejection_has_a_reason(data: bytes) -> None:
    result = _run_lab_bytes(data, load_mapping(EXAMPLE))
    _check_invariants(result)
    assert {"patients.csv", "visits.csv"}.isdisjoint(e["source"] for e in result.quarantine)


_CELLS = st.one_of(st.sampled_from(["6.8", "abc", "", "1e400", " 7 ", "-0.5"]),
                   st.text(max_size=6))
_CODES = st.sampled_from(["GLU", "HGB", "LDL", "", "glu"])
_DATES = st.sampled_from(["2024-01-06", "2024-01-06 08:30", "2024/01/06", "20240106",
                          "2024-02-30", "", "昨天"])  # fmt: skip
_MRNS = st.sampled_from(["100001", "100002", "999999", "", " 100003 "])
_UNITS = st.sampled_from(["mmol/L", "g/L", "μmol/L", "", "10*9/L"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(st.tuples(_MRNS, _CODES, _CELLS, _UNITS, _DATES), max_size=12),
       delimiter=st.sampled_from([",", ";", "\t", "|"]),
       encoding=st.sampled_from(["utf-8", "gb18030", "utf-8-sig"]))
def test_every_lab_row_is_loaded_or_quarantined_with_a_reason(
    rows: list[tuple[str, str, str, str, str]], delimiter: str, encoding: str
) -> None:
    text = EXAMPLE.read_text(encoding="utf-8").replace('    delimiter: ";"\n', "")
    mapping = parse_mapping(text, "auto.yaml")
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(LAB_HEADER.split(";"))
    for n, (mrn, code, value, unit, date) in enumerate(rows):
        writer.writerow([f"R{n}", mrn, "某人", "", code, "项目", value, unit, date])
    data = out.getvalue().encode(encoding, errors="replace")
    result = _run_lab_bytes(data, mapping)
    _check_invariants(result)
    loaded = {record for p in result.patients.values() for record in p.records
              if record.startswith("lis/")}
    quarantined = [e for e in result.quarantine if e["source"] == "lab_results_2024.csv"]
    assert len(loaded) + len(quarantined) == len(rows)
    for n, (mrn, code, value, unit, date) in enumerate(rows):
        clean = (mrn.strip() in ("100001", "100002") and code in ("GLU", "HGB")
                 and unit in ("mmol/L", "g/L", "10*9/L") and date.startswith("2024-01-06")
                 and (value.strip() in ("", "6.8", "7", "-0.5")))
        if clean:
            assert f"lis/R{n}" in loaded


def test_the_example_export_loads_through_load_export_and_a_rerun_changes_nothing(
    export: Path, tmp_path: Path
) -> None:
    node = open_node(tmp_path / "node")
    try:
        report = node.load(export, mapping=EXAMPLE)
        assert report.export_format == "tabular"
        assert report.patients > 0
        counts = node.store.row_counts()
        assert counts["person"] == report.patients
        assert counts["measurement"] > 0 and counts["condition"] > 0
        assert all(reason for reason in report.quarantined_by_reason)
        for path in export.iterdir():
            path.touch()
        again = node.load(export, mapping=EXAMPLE)
        assert (again.patients, again.patients_updated) == (0, report.patients)
        after = node.store.row_counts()
        assert after.pop("ingest_progress") > counts.pop("ingest_progress")
        assert after == counts
    finally:
        node.store.close()


def test_a_bad_mapping_file_stops_the_ingest_before_any_row(
    export: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("files:\n  - name: labs\n    pattern: '*.csv'\n    table: teleport\n")
    node = open_node(tmp_path / "node")
    try:
        with pytest.raises(IngestError, match=r"bad\.yaml"):
            node.load(export, mapping=bad)
        assert "person" not in node.store.table_names()
    finally:
        node.store.close()
