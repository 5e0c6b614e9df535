"""Bulk loading: a batch of rows for several tables goes in whole or not at all.

A batch is checked before it reaches the engine — known tables and columns only, required
values present, every text value in its declared code form — and then written inside one
transaction with the engine's fastest path: DuckDB scans the Arrow table directly, PostgreSQL
receives it through ``COPY``. If anything fails, the transaction is rolled back, so a crash or a
bad row never leaves half a batch behind (DESIGN §3.6).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from medspace.store.engine import ClinicalStore
from medspace.store.schema import TABLES, TABLES_BY_NAME, Table

#: What a batch may give for one table: an Arrow table, a pandas DataFrame or a list of dicts.
Rows = pa.Table | pd.DataFrame | Sequence[Mapping[str, Any]]
_COPY_CHUNK_ROWS = 200_000


class LoadError(ValueError):
    """A batch that was refused or rolled back; nothing of it was stored."""


def _as_arrow(table: Table, rows: Rows) -> pa.Table:
    if isinstance(rows, pa.Table):
        return rows
    if isinstance(rows, pd.DataFrame):
        return pa.Table.from_pandas(rows, preserve_index=False)
    records = list(rows)
    keys = set().union(*(r.keys() for r in records)) if records else set()
    unknown = keys - set(table.column_names)
    if unknown:
        raise LoadError(f"{table.name}: unknown columns {sorted(unknown)}")
    return pa.Table.from_pylist(records, schema=table.arrow_schema())


def _cast(table: Table, data: pa.Table) -> pa.Table:
    unknown = set(data.column_names) - set(table.column_names)
    if unknown:
        raise LoadError(f"{table.name}: unknown columns {sorted(unknown)}")
    missing = [c.name for c in table.columns if not c.nullable and c.name not in data.column_names]
    if missing:
        raise LoadError(f"{table.name}: missing columns {missing}")
    for column in table.columns:
        if column.name not in data.column_names:
            data = data.append_column(column.name, pa.nulls(data.num_rows))
    return data.select(list(table.column_names)).cast(table.arrow_schema())


def _to_arrow(table: Table, rows: Rows) -> pa.Table:
    try:
        return _cast(table, _as_arrow(table, rows))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
        raise LoadError(f"{table.name}: values of the wrong type ({exc})") from None


def _check(table: Table, data: pa.Table) -> None:
    for column in table.columns:
        values = data.column(column.name)
        if not column.nullable and values.null_count:
            raise LoadError(f"{table.name}.{column.name}: {values.null_count} empty values")
        if column.pattern is None or values.null_count == len(values):
            continue
        matches = pc.match_substring_regex(values, column.pattern)
        bad = len(values) - values.null_count - pc.sum(matches).as_py()
        if bad:
            raise LoadError(
                f"{table.name}.{column.name}: {bad} values not in the required form"
                f" {column.pattern}"
            )


def prepare(batch: Mapping[str, Rows]) -> dict[str, pa.Table]:
    """Check a batch and cast it to the store's Arrow schemas, in table (dependency) order."""
    unknown = set(batch) - set(TABLES_BY_NAME)
    if unknown:
        raise LoadError(f"unknown tables {sorted(unknown)}")
    prepared: dict[str, pa.Table] = {}
    for table in TABLES:
        if table.name in batch:
            data = _to_arrow(table, batch[table.name])
            _check(table, data)
            prepared[table.name] = data
    return prepared


def _insert_duckdb(con: Any, name: str, data: pa.Table) -> None:
    columns = ", ".join(data.column_names)
    con.register("medspace_batch", data)
    try:
        con.execute(f"INSERT INTO {name} ({columns}) SELECT {columns} FROM medspace_batch")
    finally:
        con.unregister("medspace_batch")


def _insert_postgres(con: Any, name: str, data: pa.Table) -> None:
    columns = ", ".join(data.column_names)
    options = pacsv.WriteOptions(include_header=False)
    with (
        con.cursor() as cursor,
        cursor.copy(f"COPY {name} ({columns}) FROM STDIN (FORMAT csv)") as copy,
    ):
        for start in range(0, data.num_rows, _COPY_CHUNK_ROWS):
            buffer = io.BytesIO()
            pacsv.write_csv(data.slice(start, _COPY_CHUNK_ROWS), buffer, options)
            copy.write(buffer.getvalue())


def load(store: ClinicalStore, batch: Mapping[str, Rows]) -> dict[str, int]:
    """Store a batch (table name → rows) atomically; return how many rows each table received.

    Raises :class:`LoadError` when the batch is malformed or the engine refuses any row (a
    duplicate person, a failed check); in both cases nothing of the batch is stored.
    """
    prepared = prepare(batch)
    insert = _insert_duckdb if store.kind == "duckdb" else _insert_postgres
    try:
        with store.transaction() as con:
            for name, data in prepared.items():
                insert(con, name, data)
    except Exception as exc:
        raise LoadError(f"batch rolled back: {type(exc).__name__}: {exc}") from exc
    return {name: data.num_rows for name, data in prepared.items()}
