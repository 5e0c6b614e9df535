"""The clinical schema: the same tables on both engines, and no room for direct identifiers."""

from __future__ import annotations

import re

import pytest

from medspace.store.engine import ClinicalStore
from medspace.store.schema import TABLES, Column

EXPECTED_TABLES = sorted([
    "allergy", "condition", "consent", "death", "drug_exposure", "immunization", "ingest_progress",
    "measurement",
    "observation", "observation_period", "person", "person_key", "procedure", "visit",
])

IDENTIFIER_WORDS = re.compile(
    r"name|phone|mobile|tel|id_number|idcard|ssn|passport|address|street|postcode|zip|mrn|"
    r"email|birth_date|birthdate|dob|note|text|comment|free",
    re.IGNORECASE,
)


def test_schema_creates_every_clinical_table_on_each_engine(store: ClinicalStore) -> None:
    assert store.table_names() == EXPECTED_TABLES
    assert set(store.row_counts().values()) == {0}


def test_creating_the_schema_twice_changes_nothing(store: ClinicalStore) -> None:
    store.create_schema()
    assert store.table_names() == EXPECTED_TABLES


def test_engine_reports_the_same_columns_the_schema_declares(store: ClinicalStore) -> None:
    for table in TABLES:
        assert tuple(store.backend.table(table.name).columns) == table.column_names


def test_no_clinical_column_could_hold_a_name_id_number_or_phone() -> None:
    for table in TABLES:
        for column in table.columns:
            assert not IDENTIFIER_WORDS.search(column.name), f"{table.name}.{column.name}"


def test_birth_is_kept_as_year_and_month_only() -> None:
    person = next(t for t in TABLES if t.name == "person")
    assert [c.name for c in person.columns if "birth" in c.name] == ["birth_year", "birth_month"]
    assert all(c.sql_type != "DATE" for c in person.columns)


def test_every_text_column_is_fenced_by_a_code_pattern() -> None:
    for table in TABLES:
        for column in table.columns:
            if column.sql_type == "TEXT":
                assert column.pattern, f"{table.name}.{column.name}"
                assert not re.fullmatch(column.pattern, "Zhang Wei"), column.name
                assert not re.fullmatch(column.pattern, "138 0013 8000"), column.name


def test_a_free_text_column_cannot_be_declared() -> None:
    with pytest.raises(ValueError, match="pattern"):
        Column("note", "TEXT")
