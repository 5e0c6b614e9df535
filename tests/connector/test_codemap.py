"""The hospital's code map: read strictly, offered next to the original code, never instead."""

from __future__ import annotations

from pathlib import Path

import pytest

from medspace.connector.codemap import ATC_URL, ICD10_URL, CodeMap, CodeMapError

HEADER = "source_system,source_code,target_system,target_code\n"


def _map(tmp_path: Path, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / "codes.csv"
    path.write_bytes(text.encode(encoding))
    return path


def test_a_coding_the_map_knows_gets_its_target_added_beside_it(tmp_path: Path) -> None:
    codes = CodeMap.load(_map(tmp_path, HEADER + "http://snomed.info/sct,44054006,icd-10,E11.9\n"))
    concept = {"coding": [{"system": "http://snomed.info/sct", "code": "44054006"}]}
    extended = codes.extend({"resourceType": "Condition", "code": concept})
    assert extended["code"]["coding"] == [concept["coding"][0],
                                          {"system": ICD10_URL, "code": "E11.9"}]
    assert concept["coding"] == [{"system": "http://snomed.info/sct", "code": "44054006"}]


def test_hl7_names_are_answered_with_hl7_names(tmp_path: Path) -> None:
    codes = CodeMap.load(_map(tmp_path, HEADER + "RXN,860975,atc,A10BA02\n"))
    assert codes.hl7("RXN", "860975") == ("WHOATC", "A10BA02")
    assert codes.hl7("RXN", "1") is None
    assert codes.extend({"coding": [{"system": "RXN", "code": "860975"}]})["coding"][1] == {
        "system": ATC_URL, "code": "A10BA02"}


def test_a_map_in_gb18030_with_a_bom_free_header_loads(tmp_path: Path) -> None:
    codes = CodeMap.load(_map(tmp_path, HEADER + "院内检验,葡萄糖,loinc,2345-7\n", "gb18030"))
    assert codes.hl7("院内检验", "葡萄糖") == ("LN", "2345-7")


@pytest.mark.parametrize(("text", "message"), [
    ("source_system,source_code,target_code\n", "lacks target_system"),
    (HEADER + "SCT,1,snomed,2\n", "2: target_system 'snomed' is not icd-10, atc or loinc"),
    (HEADER + "SCT,1,icd-10,\n", "2: every column needs a value"),
    (HEADER + "SCT,1,icd-10,E11.9\nSCT,1,icd-10,E10.9\n", "3: SCT 1 is mapped twice"),
])
def test_a_bad_map_is_refused_naming_its_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(CodeMapError, match=message):
        CodeMap.load(_map(tmp_path, text))


def test_a_missing_map_file_is_refused_with_the_reason(tmp_path: Path) -> None:
    with pytest.raises(CodeMapError, match=r"codes\.csv"):
        CodeMap.load(tmp_path / "codes.csv")
