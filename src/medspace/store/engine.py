"""Where the clinical store lives: an embedded DuckDB file by default, or PostgreSQL.

Both are opened as Ibis backends, so the cohort queries are written once as Ibis expressions
and compiled to each engine's SQL; a large site can point the same code at its PostgreSQL (and,
through Ibis, at Spark or Trino) without a second query layer. Loading goes below Ibis to each
engine's fastest transactional path (DuckDB's Arrow scan, PostgreSQL's ``COPY``).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import ibis
import ibis.expr.types as ir
import sqlalchemy as sa
from ibis.backends.duckdb import Backend as DuckDBBackend
from ibis.backends.postgres import Backend as PostgresBackend

from medspace.store.schema import TABLES, TABLES_BY_NAME

EngineKind = Literal["duckdb", "postgres"]
COMPILED_QUERIES = 256


class ClinicalStore:
    """An open clinical store: the Ibis backend plus which engine it is."""

    def __init__(self, backend: DuckDBBackend | PostgresBackend, kind: EngineKind) -> None:
        self.backend = backend
        self.kind: EngineKind = kind
        self._compiled: OrderedDict[Hashable, str] = OrderedDict()
        self._compiled_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ClinicalStore({self.kind})"

    @classmethod
    def open_duckdb(cls, path: str | Path) -> ClinicalStore:
        """Open (or create) the embedded DuckDB file at ``path``."""
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return cls(ibis.duckdb.connect(str(path)), "duckdb")

    @classmethod
    def open_postgres(cls, url: str) -> ClinicalStore:
        """Open the PostgreSQL database at ``url`` (``postgresql://…``; ``?options=`` honoured).

        The URL is parsed with SQLAlchemy's rules so that the same URLs work here as for the
        node's other state.
        """
        parsed = sa.make_url(url)
        if parsed.get_backend_name() != "postgresql":
            raise ValueError("open_postgres needs a postgresql:// URL")
        extra: dict[str, Any] = dict(parsed.query)
        backend = ibis.postgres.connect(
            host=parsed.host,
            port=parsed.port or 5432,
            user=parsed.username,
            password=parsed.password,
            database=parsed.database,
            **extra,
        )
        return cls(backend, "postgres")

    @classmethod
    def open(cls, location: str | Path) -> ClinicalStore:
        """Open a ``postgresql://`` URL, or else treat ``location`` as a DuckDB file path."""
        text = str(location)
        if text.startswith(("postgresql://", "postgresql+psycopg://", "postgres://")):
            return cls.open_postgres(text.replace("postgres://", "postgresql://", 1))
        return cls.open_duckdb(location)

    def create_schema(self) -> None:
        """Create every clinical table that does not exist yet, and add the optional columns a
        store made by an earlier version lacks (idempotent)."""
        with self.transaction() as con:
            for table in TABLES:
                con.execute(table.ddl())
            present = {
                tuple(row)
                for row in con.execute(
                    "SELECT table_name, column_name FROM information_schema.columns"
                    " WHERE table_schema = current_schema()"
                ).fetchall()
            }
            for table in TABLES:
                for column in table.columns:
                    if column.nullable and (table.name, column.name) not in present:
                        con.execute(f"ALTER TABLE {table.name} ADD COLUMN"
                                    f" {column.name} {column.sql_type}")

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """The engine's own connection inside one transaction: all of it commits, or none.

        Yields the DB-API connection (DuckDB's or psycopg's); both accept ``execute``.
        """
        con = self.backend.con
        if self.kind == "postgres":
            with con.transaction():
                yield con
            return
        con.execute("BEGIN TRANSACTION")
        try:
            yield con
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")

    def rows(self, key: Hashable, build: Callable[[], ir.Expr]) -> list[tuple[Any, ...]]:
        """The rows of the query that ``build`` makes, compiled by Ibis once per ``key``.

        Building and compiling an Ibis expression costs tens of milliseconds, more than running
        it on a hospital's store; a query asked again (a study re-run, the whole-population
        count behind every count study) runs its cached SQL straight on the engine. ``key``
        must determine the query entirely: values are compiled into the SQL as typed literals.
        """
        with self._compiled_lock:
            sql = self._compiled.get(key)
            if sql is not None:
                self._compiled.move_to_end(key)
        if sql is None:
            sql = str(self.backend.compile(build()))
            with self._compiled_lock:
                self._compiled[key] = sql
                while len(self._compiled) > COMPILED_QUERIES:
                    self._compiled.popitem(last=False)
        if self.kind == "postgres":
            with self.backend.con.cursor() as cursor:
                cursor.execute(sql)
                return cursor.fetchall()
        cursor = self.backend.con.cursor()
        try:
            return cursor.execute(sql).fetchall()
        finally:
            cursor.close()

    def lookup(self, table: str, key: str, value: str, keys: Sequence[Any]) -> dict[Any, Any]:
        """``{key: value}`` for the rows of ``table`` whose ``key`` column is among ``keys``.

        The keys travel as one array parameter, not as SQL text, so a batch's thousands of
        keys cost one cheap query instead of a large compiled ``IN`` list.
        """
        columns = TABLES_BY_NAME[table].column_names
        if key not in columns or value not in columns:
            raise ValueError(f"{table} has no column {key!r} or {value!r}")
        if not keys:
            return {}
        sql = f"SELECT {key}, {value} FROM {table} WHERE {key} = ANY({{}})"
        if self.kind == "postgres":
            with self.backend.con.cursor() as cursor:
                cursor.execute(sql.format("%s"), [list(keys)])
                return dict(cursor.fetchall())
        cursor = self.backend.con.cursor()
        try:
            return dict(cursor.execute(sql.format("?"), [list(keys)]).fetchall())
        finally:
            cursor.close()

    def table_names(self) -> list[str]:
        """The names of the tables in the store."""
        return sorted(self.backend.list_tables())

    def row_counts(self) -> dict[str, int]:
        """How many rows each clinical table holds (for data-quality reports and tests)."""
        return {t.name: self.backend.table(t.name).count().to_pyarrow().as_py() for t in TABLES}

    def close(self) -> None:
        """Release the connection."""
        self.backend.disconnect()

    def __enter__(self) -> ClinicalStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
