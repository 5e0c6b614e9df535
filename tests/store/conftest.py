"""The clinical store fixture: every store test runs on a DuckDB file and on PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from medspace.sqldb import create_engine
from medspace.store.engine import ClinicalStore
from tests.conftest import _postgres_url


def postgres_store(schema_holder: list[tuple[str, str]]) -> ClinicalStore:
    """A store in a fresh PostgreSQL schema (skips loudly when there is no server)."""
    base = _postgres_url()
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()
    schema_holder.append((base, schema))
    url = sa.make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    return ClinicalStore.open(url.render_as_string(hide_password=False))


def drop_schemas(schemas: list[tuple[str, str]]) -> None:
    """Remove the schemas made by :func:`postgres_store`."""
    for base, schema in schemas:
        admin = create_engine(base)
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ClinicalStore]:
    """A fresh clinical store with its schema created."""
    schemas: list[tuple[str, str]] = []
    if request.param == "duckdb":
        opened = ClinicalStore.open(tmp_path / "clinical.duckdb")
    else:
        opened = postgres_store(schemas)
    opened.create_schema()
    try:
        yield opened
    finally:
        opened.close()
        drop_schemas(schemas)
