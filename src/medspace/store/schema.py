"""The clinical store's tables: one definition that every engine and every check reads.

The tables follow the OMOP common data model in shape (person, observation_period, visit,
condition, drug_exposure, measurement, observation, allergy, procedure, death, immunization)
but keep codes as their source values (ICD-10, ATC, LOINC) instead of mapping them to OMOP
concepts, because the hospitals' exports carry those codes and the studies ask for them.
``consent`` holds each patient's decisions per purpose; ``person_key`` and ``ingest_progress``
are the connector's bookkeeping (keyed hashes of source patient keys; committed batches).

No table has a column that could hold a direct identifier: names, ID numbers, phone numbers,
addresses, medical record numbers and full birth dates live only in the encrypted identity vault.
``person_id`` is a keyed pseudonym, the person's birth is kept as year and month only, and a
row's ``record_id`` is a keyed hash of its source record's id.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from medspace.store.codes import (
    ATC_PATTERN,
    CODE_PATTERN,
    ICD10_PATTERN,
    LOINC_PATTERN,
    UNIT_PATTERN,
)
from medspace.store.tokens import KEY_ID_PATTERN, PSEUDONYM_PATTERN, RECORD_ID_PATTERN

#: The portable SQL types a column may have, with their Arrow equivalents.
_ARROW_TYPES: dict[str, pa.DataType] = {
    "TEXT": pa.string(),
    "INTEGER": pa.int32(),
    "BIGINT": pa.int64(),
    "DOUBLE PRECISION": pa.float64(),
    "DATE": pa.date32(),
}

SEXES: tuple[str, ...] = ("female", "male", "other", "unknown")
VISIT_TYPES: tuple[str, ...] = ("inpatient", "outpatient", "emergency")
SEVERITIES: tuple[str, ...] = ("mild", "moderate", "severe")
#: An export's fingerprint (its files, sizes and times): which of its batches are committed.
EXPORT_ID_PATTERN = r"^ex:[0-9a-f]{32}$"
CONSENT_PURPOSES: tuple[str, ...] = ("research", "commercial", "emergency", "public-health")
CONSENT_DECISIONS: tuple[str, ...] = ("permit", "deny")


@dataclass(frozen=True)
class Column:
    """One column: its name, portable SQL type, whether it may be empty and, for text, its form.

    Every text column must declare the regular expression its values match: the store holds
    codes, never free text, so there is nowhere a name or a note could slip in.
    """

    name: str
    sql_type: str
    nullable: bool = False
    pattern: str | None = None
    allowed: tuple[str, ...] | None = None
    """The only values the column takes, when it is an enumeration (checked by the engine)."""

    def __post_init__(self) -> None:
        if self.sql_type not in _ARROW_TYPES:
            raise ValueError(f"column {self.name}: unsupported type {self.sql_type}")
        if (self.sql_type == "TEXT") != (self.pattern is not None):
            raise ValueError(f"column {self.name}: text columns, and only they, need a pattern")


@dataclass(frozen=True)
class Table:
    """One table: its columns, primary key and row checks (fixed SQL, never user input)."""

    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] = ()
    checks: tuple[str, ...] = ()
    replace_key: str | None = None
    """The column that identifies a row's source: a row loaded with ``replace`` removes the
    stored rows with the same value first (see :func:`medspace.store.load.load`)."""

    @property
    def column_names(self) -> tuple[str, ...]:
        """The column names in table order."""
        return tuple(c.name for c in self.columns)

    def arrow_schema(self) -> pa.Schema:
        """The Arrow types a batch for this table is cast to before loading.

        Every field is nullable here: the loader counts empty required values itself, to say
        which column is at fault, and the engine's ``NOT NULL`` stands behind it.
        """
        return pa.schema([pa.field(c.name, _ARROW_TYPES[c.sql_type]) for c in self.columns])

    def ddl(self) -> str:
        """``CREATE TABLE`` in the SQL subset that DuckDB and PostgreSQL both accept."""
        parts = [f"{c.name} {c.sql_type}{'' if c.nullable else ' NOT NULL'}" for c in self.columns]
        if self.primary_key:
            parts.append(f"PRIMARY KEY ({', '.join(self.primary_key)})")
        parts.extend(f"CHECK ({_in(c.name, c.allowed)})" for c in self.columns if c.allowed)
        parts.extend(f"CHECK ({check})" for check in self.checks)
        return f"CREATE TABLE IF NOT EXISTS {self.name} ({', '.join(parts)})"


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _code(name: str, pattern: str = CODE_PATTERN, nullable: bool = False) -> Column:
    return Column(name, "TEXT", nullable=nullable, pattern=pattern)


def _one_of(name: str, allowed: tuple[str, ...], nullable: bool = False) -> Column:
    return Column(name, "TEXT", nullable=nullable, pattern=CODE_PATTERN, allowed=allowed)


_PERSON = _code("person_id", PSEUDONYM_PATTERN)
_VISIT = Column("visit_id", "BIGINT", nullable=True)
#: The keyed id of the source record a row came from (a FHIR resource, an HL7 segment).
_RECORD = _code("record_id", RECORD_ID_PATTERN, nullable=True)

TABLES: tuple[Table, ...] = (
    Table(
        "person",
        (
            _PERSON,
            _one_of("sex", SEXES),
            Column("birth_year", "INTEGER"),
            Column("birth_month", "INTEGER", nullable=True),
        ),
        primary_key=("person_id",),
        checks=(
            "birth_year BETWEEN 1850 AND 2200",
            "birth_month BETWEEN 1 AND 12",
        ),
        replace_key="person_id",
    ),
    Table(
        "person_key",
        (_code("key_id", KEY_ID_PATTERN), _PERSON),
        primary_key=("key_id",),
        replace_key="key_id",
    ),
    Table(
        "observation_period",
        (_PERSON, Column("start_date", "DATE"), Column("end_date", "DATE")),
        checks=("end_date >= start_date",),
        replace_key="person_id",
    ),
    Table(
        "visit",
        (
            Column("visit_id", "BIGINT"),
            _PERSON,
            _one_of("visit_type", VISIT_TYPES),
            Column("start_date", "DATE"),
            Column("end_date", "DATE", nullable=True),
            _RECORD,
        ),
        primary_key=("visit_id",),
        checks=("end_date >= start_date",),
        replace_key="visit_id",
    ),
    Table(
        "condition",
        (
            _PERSON,
            _VISIT,
            _code("condition_source_value", ICD10_PATTERN),
            Column("start_date", "DATE"),
            Column("end_date", "DATE", nullable=True),
            _RECORD,
        ),
        replace_key="record_id",
    ),
    Table(
        "drug_exposure",
        (
            _PERSON,
            _VISIT,
            _code("drug_source_value", ATC_PATTERN),
            Column("start_date", "DATE"),
            Column("end_date", "DATE", nullable=True),
            _RECORD,
        ),
        replace_key="record_id",
    ),
    Table(
        "measurement",
        (
            _PERSON,
            _VISIT,
            _code("measurement_source_value", LOINC_PATTERN),
            Column("value_as_number", "DOUBLE PRECISION", nullable=True),
            _code("unit_source_value", UNIT_PATTERN, nullable=True),
            Column("measurement_date", "DATE"),
            _RECORD,
        ),
        replace_key="record_id",
    ),
    Table(
        "observation",
        (
            _PERSON,
            _VISIT,
            _code("observation_source_value"),
            _code("value_as_concept", nullable=True),
            Column("value_as_number", "DOUBLE PRECISION", nullable=True),
            Column("observation_date", "DATE"),
            _RECORD,
        ),
        replace_key="record_id",
    ),
    Table(
        "allergy",
        (
            _PERSON,
            _code("allergy_source_value"),
            _code("reaction_source_value", nullable=True),
            _one_of("severity", SEVERITIES, nullable=True),
            Column("recorded_date", "DATE"),
            _RECORD,
        ),
        replace_key="record_id",
    ),
    Table(
        "procedure",
        (
            _PERSON,
            _VISIT,
            _code("procedure_source_value"),
            Column("procedure_date", "DATE"),
            _RECORD,
        ),
        replace_key="record_id",
    ),
    Table(
        "death",
        (
            _PERSON,
            Column("death_date", "DATE"),
            _code("cause_source_value", ICD10_PATTERN, nullable=True),
        ),
        primary_key=("person_id",),
        replace_key="person_id",
    ),
    Table(
        "ingest_progress",
        (_code("export_id", EXPORT_ID_PATTERN), Column("batch", "INTEGER")),
        primary_key=("export_id", "batch"),
    ),
    Table(
        "immunization",
        (
            _PERSON,
            _VISIT,
            _code("vaccine_source_value"),
            Column("immunization_date", "DATE"),
            _RECORD,
        ),
        replace_key="record_id",
    ),
    Table(
        "consent",
        (
            _PERSON,
            _one_of("purpose", CONSENT_PURPOSES),
            _one_of("decision", CONSENT_DECISIONS),
            Column("start_date", "DATE"),
            Column("end_date", "DATE", nullable=True),
            _RECORD,
            Column("recorded_ms", "BIGINT", nullable=True),
        ),
        checks=("end_date >= start_date",),
        replace_key="record_id",
    ),
)

TABLES_BY_NAME: dict[str, Table] = {t.name: t for t in TABLES}
