"""A profile applied to a table: each column through its field's operator."""

from __future__ import annotations

import pandas as pd
import pytest

from medspace.deid.apply import ApplyError, apply_profile
from medspace.deid.profiles import load_profile

KEY = b"K" * 32
ROWS = pd.DataFrame({
    "姓名": ["王芳", "李娜", "王芳"],
    "id_number": ["11010519491231002X", "440524188001010014", "11010519491231002X"],
    "phone": ["13812345678", "13987654321", "13812345678"],
    "birth_date": ["1949-12-31", "1980-01-01", "1949-12-31"],
    "admission_date": ["2024-03-01", "2024-05-10", "2024-03-20"],
    "discharge_date": ["2024-03-05", "2024-05-12", "2024-03-28"],
    "age": ["92", "44", "92"],
    "diagnosis": ["C34.9", "I10", "C34.9"],
    "sex": ["female", "female", "female"],
})


def test_safe_harbor_drops_identifiers_keeps_years_and_tops_ages() -> None:
    out = apply_profile(ROWS, load_profile("hipaa-safe-harbor"), KEY, fields={"姓名": "name"})
    assert list(out.columns) == ["birth_date", "admission_date", "discharge_date", "age", "sex"]
    assert list(out["birth_date"]) == ["1949", "1980", "1949"]
    assert list(out["age"]) == ["90+", 44, "90+"]


def test_cn_health_masks_phones_and_pseudonymises_id_numbers_consistently() -> None:
    out = apply_profile(ROWS, load_profile("cn-health"), KEY, fields={"姓名": "name"})
    assert "姓名" not in out.columns
    assert out.loc[0, "phone"] == "138****5678"
    assert out.loc[0, "id_number"] == out.loc[2, "id_number"] != out.loc[1, "id_number"]
    assert not any("110105" in str(v) for v in out["id_number"])


def test_gdpr_shifts_each_patients_dates_together() -> None:
    out = apply_profile(ROWS, load_profile("gdpr-pseudonymisation"), KEY,
                        fields={"姓名": "name"}, patient="id_number")
    stays = [(pd.Timestamp(d) - pd.Timestamp(a)).days
             for a, d in zip(out["admission_date"], out["discharge_date"], strict=True)]
    assert stays == [4, 2, 8]
    moved = [(pd.Timestamp(s) - pd.Timestamp(o)).days
             for s, o in zip(out["admission_date"], ROWS["admission_date"], strict=True)]
    assert moved[0] == moved[2] != 0
    assert out.loc[0, "id_number"].startswith("enc:")


def test_shifting_without_a_patient_column_says_what_is_missing() -> None:
    with pytest.raises(ApplyError, match="needs the patient column"):
        apply_profile(ROWS, load_profile("gdpr-pseudonymisation"), KEY, fields={"姓名": "name"})


def test_notes_leave_scrubbed_of_names_and_numbers_by_every_built_in_profile() -> None:
    notes = pd.DataFrame({"notes": ["患者王建国，电话13812345678，于2023-04-18入院。", None],
                          "patient": ["p1", "p2"]})
    for name in ("hipaa-safe-harbor", "cn-health", "gdpr-pseudonymisation"):
        out = apply_profile(notes, load_profile(name), KEY, patient="patient")
        scrubbed = out.loc[0, "notes"]
        assert "王建国" not in scrubbed and "13812345678" not in scrubbed
        assert "[PHONE]" in scrubbed and "入院" in scrubbed
        assert pd.isna(out.loc[1, "notes"])
