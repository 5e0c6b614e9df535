"""Generated identities look real and agree with themselves everywhere they appear."""

from __future__ import annotations

import re
from pathlib import Path

from medspace.synth.divisions import BY_CODE, CITIES, DIVISIONS, PROVINCES
from medspace.synth.fhir import DIVISION_CODE_EXTENSION, RESIDENT_ID_SYSTEM
from medspace.synth.identities import MOBILE_PREFIXES
from medspace.synth.resident_id import parse_resident_id
from tests.synth.helpers import fhir_hospitals, hl7_hospitals, read_hl7_messages, read_ndjson


def _patients(root: Path) -> list[dict]:
    return [p for d in fhir_hospitals(root) for p in read_ndjson(d / "Patient.ndjson")]


def _resident_id(patient: dict) -> str:
    return next(i["value"] for i in patient["identifier"] if i["system"] == RESIDENT_ID_SYSTEM)


def test_division_table_holds_at_least_60_real_districts_in_several_provinces() -> None:
    assert len(DIVISIONS) >= 60
    assert len({d.province_code for d in DIVISIONS}) >= 8
    assert len(BY_CODE) == len(DIVISIONS)
    for d in DIVISIONS:
        assert re.fullmatch(r"\d{6}", d.code)
        assert PROVINCES[d.code[:2]] == d.province
        assert CITIES[d.code[:4]] == d.city
        assert d.district.endswith("区")


def test_fhir_id_numbers_are_valid_and_agree_with_birth_date_sex_and_address(
    export_dir: Path,
) -> None:
    patients = _patients(export_dir)
    assert len(patients) > 500
    for patient in patients:
        parsed = parse_resident_id(_resident_id(patient))
        assert parsed.birth_date.isoformat() == patient["birthDate"]
        assert parsed.male == (patient["gender"] == "male")
        address = patient["address"][0]
        code = address["extension"][0]
        assert code["url"] == DIVISION_CODE_EXTENSION
        assert parsed.area_code == code["valueCode"]


def test_hl7_id_numbers_are_valid_and_agree_with_birth_date_sex_and_address(
    export_dir: Path,
) -> None:
    for directory in hl7_hospitals(export_dir):
        for message in read_hl7_messages(directory / "ADT_A01.hl7")[:200]:
            parsed = parse_resident_id(str(message["PID.F3.R2.C1"]))
            assert f"{parsed.birth_date:%Y%m%d}" == str(message["PID.F7"])
            assert ("M" if parsed.male else "F") == str(message["PID.F8"])
            assert parsed.area_code == str(message["PID.F11.R1.C9"])
            assert str(message["PID.F3.R2.C5"]) == "NNCHN"


def test_address_province_city_and_district_belong_together(export_dir: Path) -> None:
    for patient in _patients(export_dir):
        address = patient["address"][0]
        division = BY_CODE[address["extension"][0]["valueCode"]]
        assert (address["state"], address["city"], address["district"]) == (
            division.province,
            division.city,
            division.district,
        )
        assert address["text"].startswith(division.province)
        assert division.district + address["line"][0] in address["text"]


def test_phones_are_mainland_mobile_numbers(export_dir: Path) -> None:
    for patient in _patients(export_dir):
        phone = patient["telecom"][0]["value"]
        assert re.fullmatch(r"1\d{10}", phone)
        assert phone[:3] in MOBILE_PREFIXES


def test_names_are_a_surname_and_a_one_or_two_character_given_name(export_dir: Path) -> None:
    surnames = set()
    for patient in _patients(export_dir):
        name = patient["name"][0]
        assert 1 <= len(name["family"]) <= 2
        assert 1 <= len(name["given"][0]) <= 2
        assert name["text"] == name["family"] + name["given"][0]
        assert all("\u4e00" <= ch <= "\u9fff" for ch in name["text"])
        surnames.add(name["family"])
    assert len(surnames) > 20


def test_id_numbers_are_unique_except_for_people_treated_at_several_hospitals(
    export_dir: Path,
) -> None:
    for directory in fhir_hospitals(export_dir):
        numbers = [_resident_id(p) for p in read_ndjson(directory / "Patient.ndjson")]
        assert len(numbers) == len(set(numbers))
