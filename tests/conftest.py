"""Shared fixtures: every SQL test runs on SQLite and on the real PostgreSQL server.

The server's URL comes from MEDSPACE_TEST_PG (``make test`` sets the local default). When it is
unset or the server does not answer, the PostgreSQL variants are skipped and the run says so
loudly at the end.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from medspace.sqldb import create_engine, sqlite_url
from tests.consortium import consortium  # noqa: F401  (a fixture the test packages share)

_PG_SKIPS: list[str] = []


def _postgres_url() -> str:
    url = os.environ.get("MEDSPACE_TEST_PG")
    if not url:
        reason = "MEDSPACE_TEST_PG is not set; PostgreSQL tests skipped"
        _PG_SKIPS.append(reason)
        pytest.skip(reason)
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
    except sa.exc.OperationalError as exc:
        reason = f"PostgreSQL at MEDSPACE_TEST_PG does not answer ({exc.orig}); tests skipped"
        _PG_SKIPS.append(reason)
        pytest.skip(reason)
    finally:
        engine.dispose()
    return url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: a SQLite file, or a new schema on the PostgreSQL server."""
    if request.param == "sqlite":
        yield sqlite_url(tmp_path / "state.db")
        return
    base = _postgres_url()
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = sa.make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _PG_SKIPS:
        terminalreporter.section("PostgreSQL NOT TESTED", sep="!", red=True, bold=True)
        terminalreporter.write_line(f"{len(_PG_SKIPS)} PostgreSQL tests skipped: {_PG_SKIPS[0]}")

