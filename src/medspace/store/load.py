"""Bulk loading: a batch of rows for several tables goes in whole or not at all.

A batch is checked before it reaches the engine — known tables and columns only, required
values present, every text value in its declared code form — and then written inside one
transaction with the engine's fastest path: DuckDB scans the Arrow table directly, PostgreSQL
receives it through ``COPY``. If anything fails, the transaction is rolled back, so a crash or a
bad row never leaves half a batch behind (DESIGN §3.6).

A connector loads with ``replace``: each row first removes the stored rows with the same
source (its table's ``replace_key``), so loading a record twice changes nothing and loading a
newer version of it updates it; the observation periods of the persons touched are then derived
again from their rows. :func:`merge_persons` moves everything of one person to another.
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
from medspace.store.tokens import key_id, person_pseudonym

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


class _Keys:
    """A set of key values made visible to SQL as the one-column relation ``medspace_keys``."""

    def __init__(self, con: Any, kind: str) -> None:
        self.con, self.kind = con, kind

    def __call__(self, values: pa.Array) -> _Keys:
        values = pc.unique(values.drop_null())
        if self.kind == "duckdb":
            self.con.register("medspace_keys", pa.table({"k": values}))
            return self
        sql_type = "BIGINT" if pa.types.is_integer(values.type) else "TEXT"
        self.con.execute("DROP TABLE IF EXISTS medspace_keys")
        self.con.execute(f"CREATE TEMP TABLE medspace_keys (k {sql_type}) ON COMMIT DROP")
        with self.con.cursor() as cursor, cursor.copy("COPY medspace_keys (k) FROM STDIN") as copy:
            for value in values.to_pylist():
                copy.write_row((value,))
        return self

    def __enter__(self) -> str:
        return "(SELECT k FROM medspace_keys)"

    def __exit__(self, *_exc: object) -> None:
        if self.kind == "duckdb":
            self.con.unregister("medspace_keys")


#: Tables whose dates make up a person's observation period.
_PERIOD_SOURCES = tuple(
    t for t in TABLES if t.name not in ("person", "person_key", "observation_period", "consent")
)


def _periods_of_batch(prepared: Mapping[str, pa.Table], new: pa.Array) -> pa.Table | None:
    """The observation periods of persons new to the store, from the batch's own dates (their
    rows are all in it), without reading the store."""
    parts = [
        pa.table({"person_id": data.column("person_id"), "d": data.column(c.name)})
        for t in _PERIOD_SOURCES if (data := prepared.get(t.name)) is not None
        for c in t.columns if c.sql_type == "DATE"
    ]
    if not parts or len(new) == 0:
        return None
    dates = pa.concat_tables(parts)
    dates = dates.filter(pc.and_(pc.is_valid(dates.column("d")),
                                 pc.is_in(dates.column("person_id"), value_set=new)))
    spans = dates.group_by("person_id").aggregate([("d", "min"), ("d", "max")])
    return pa.table({"person_id": spans.column("person_id"), "start_date": spans.column("d_min"),
                     "end_date": spans.column("d_max")})


def _derive_periods(con: Any, keys: _Keys, person_ids: pa.Array) -> None:
    dates = " UNION ALL ".join(
        f"SELECT person_id, {c.name} AS d FROM {t.name}"
        for t in _PERIOD_SOURCES
        for c in t.columns
        if c.sql_type == "DATE"
    )
    with keys(person_ids) as persons:
        con.execute(f"DELETE FROM observation_period WHERE person_id IN {persons}")
        con.execute(
            "INSERT INTO observation_period (person_id, start_date, end_date)"
            f" SELECT person_id, MIN(d), MAX(d) FROM ({dates}) AS dates"
            f" WHERE d IS NOT NULL AND person_id IN {persons} GROUP BY person_id"
        )


def _remove_replaced(con: Any, keys: _Keys, prepared: Mapping[str, pa.Table],
                     stored: bool) -> None:
    """Delete the stored rows that the batch's rows replace.

    A person's death row goes with its person row, so a patient no longer recorded as deceased
    loses it; their observation period is derived afresh afterwards. When none of the batch's
    persons is ``stored`` yet, only source keys can have stored rows to replace (a FHIR id now
    naming another person): every other id is scoped by its person.
    """
    persons = prepared["person"].column("person_id") if "person" in prepared else None
    for table in TABLES:
        key = table.replace_key
        if key is None or table.name == "observation_period":
            continue
        if not stored and table.name != "person_key":
            continue
        parts = [prepared[table.name].column(key)] if table.name in prepared else []
        if key == "person_id" and persons is not None and table.name != "person":
            parts.append(persons)
        values = pa.chunked_array(parts).combine_chunks() if parts else None
        if values is None or len(values) == 0:
            continue
        with keys(values) as matching:
            con.execute(f"DELETE FROM {table.name} WHERE {key} IN {matching}")


def _stored_persons(con: Any, keys: _Keys, persons: pa.Array) -> pa.Array:
    """Which of ``persons`` the store holds rows of already (a person row or, after a merge
    moved them, any row naming them)."""
    if len(persons) == 0:
        return pa.array([], pa.string())
    with keys(persons) as matching:
        found = con.execute(
            f"SELECT person_id FROM person WHERE person_id IN {matching}"
            f" UNION SELECT person_id FROM observation_period WHERE person_id IN {matching}"
        ).fetchall()
    return pa.array([row[0] for row in found], pa.string())


def _touched_persons(prepared: Mapping[str, pa.Table]) -> pa.Array:
    return pa.chunked_array(
        [d.column("person_id") for d in prepared.values() if "person_id" in d.column_names],
        type=pa.string(),
    ).combine_chunks()


def _remove_withdrawn(con: Any, keys: _Keys, withdrawn: pa.Array) -> None:
    for table in TABLES:
        if "record_id" in table.column_names:
            with keys(withdrawn) as matching:
                con.execute(f"DELETE FROM {table.name} WHERE record_id IN {matching}")


def load(
    store: ClinicalStore,
    batch: Mapping[str, Rows],
    *,
    replace: bool = False,
    withdrawn: Sequence[tuple[str, str]] = (),
) -> dict[str, int]:
    """Store a batch (table name → rows) atomically; return how many rows each table received.

    With ``replace``, rows replace the stored rows of the same source first, the rows of the
    ``withdrawn`` ``(person_id, record_id)`` pairs are removed, and observation periods are
    derived again (a batch for this mode gives none). Raises :class:`LoadError`
    when the batch is malformed or the engine refuses any row (a duplicate person, a failed
    check); in both cases nothing of the batch is stored.
    """
    prepared = prepare(batch)
    if replace and "observation_period" in prepared:
        raise LoadError("observation_period is derived when loading with replace")
    insert = _insert_duckdb if store.kind == "duckdb" else _insert_postgres
    try:
        with store.transaction() as con:
            keys = _Keys(con, store.kind)
            if replace:
                touched = pc.unique(pa.chunked_array(
                    [_touched_persons(prepared), pa.array([p for p, _ in withdrawn], pa.string())]
                ).combine_chunks())
                stored = _stored_persons(con, keys, touched)
                _remove_replaced(con, keys, prepared, stored=len(stored) > 0)
                if withdrawn:
                    _remove_withdrawn(con, keys, pa.array([r for _, r in withdrawn]))
            for name, data in prepared.items():
                insert(con, name, data)
            if replace:
                new = pc.filter(touched, pc.invert(pc.is_in(touched, value_set=stored)))
                periods = _periods_of_batch(prepared, new)
                if periods is not None:
                    insert(con, "observation_period", periods)
                if len(stored):
                    _derive_periods(con, keys, stored)
    except Exception as exc:
        raise LoadError(f"batch rolled back: {type(exc).__name__}: {exc}") from exc
    return {name: data.num_rows for name, data in prepared.items()}


def merge_persons(store: ClinicalStore, merges: Sequence[tuple[str, str]]) -> None:
    """Move everything of each ``prior`` person to ``survivor`` (an HL7 A40), in order, in one
    transaction; the prior person's row goes, or becomes the survivor's if it has none.

    Keys that named the prior person (``person_key``) name the survivor afterwards, so records
    that still arrive under the retired key reach the right patient.
    """
    tables = [t.name for t in TABLES if "person_id" in t.column_names
              and t.name not in ("person", "death", "observation_period")]
    try:
        with store.transaction() as con:
            keys = _Keys(con, store.kind)
            for prior, survivor in merges:
                if prior == survivor:
                    continue
                mark = "?" if store.kind == "duckdb" else "%s"
                for owned in ("person", "death"):
                    con.execute(f"DELETE FROM {owned} WHERE person_id = {mark} AND EXISTS"
                                f" (SELECT 1 FROM {owned} WHERE person_id = {mark})",
                                [prior, survivor])
                for name in (*tables, "person", "death"):
                    con.execute(f"UPDATE {name} SET person_id = {mark} WHERE person_id = {mark}",
                                [survivor, prior])
                _derive_periods(con, keys, pa.array([prior, survivor]))
    except Exception as exc:
        raise LoadError(f"merge rolled back: {type(exc).__name__}: {exc}") from exc


def persons_of_mrns(store: ClinicalStore, mrns: Sequence[str], node_key: bytes) -> dict[str, str]:
    """The ``person_id`` each MRN names: the survivor for an MRN a merge retired, otherwise the
    MRN's own pseudonym (whether or not the store holds that person yet)."""
    keys = {mrn: key_id("mrn", mrn, node_key) for mrn in mrns}
    retired = store.lookup("person_key", "key_id", "person_id", list(keys.values()))
    return {mrn: retired.get(keys[mrn]) or person_pseudonym(mrn, node_key) for mrn in mrns}
