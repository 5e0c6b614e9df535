"""One way to open the SQL databases that hold the data space's state.

SQLite is the default and PostgreSQL the production choice. Both are used the same way through
SQLAlchemy Core; this module makes SQLite behave as a durable, concurrent store: write-ahead
logging, a full sync on every commit (an acknowledged write survives a crash or power loss),
a busy timeout instead of instant lock errors, and ``BEGIN IMMEDIATE`` so that a writer takes
the lock at the start of its transaction rather than failing halfway through it. Readers use
``read_only(engine)``, whose transactions take no lock at all.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine

_READ_ONLY = "medspace_read_only"


def sqlite_url(path: str | Path) -> str:
    """The SQLAlchemy URL of the SQLite database file at ``path``."""
    return f"sqlite:///{Path(path).resolve()}"


def create_engine(url: str) -> Engine:
    """Open ``url`` (``sqlite:///…`` or ``postgresql://…``) with the data space's settings."""
    url_obj = sa.make_url(url)
    if url_obj.drivername == "postgresql":
        url_obj = url_obj.set(drivername="postgresql+psycopg")
    if url_obj.get_backend_name() != "sqlite":
        return sa.create_engine(url_obj, pool_pre_ping=True)
    if url_obj.database and url_obj.database != ":memory:":
        Path(url_obj.database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url_obj, connect_args={"timeout": 30, "isolation_level": None})

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: sa.Connection) -> None:
        if not connection.get_execution_options().get(_READ_ONLY, False):
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def read_only(engine: Engine) -> Engine:
    """The same database, for transactions that only read.

    On SQLite each of their statements runs on its own, under no lock but WAL's snapshot of
    the last commit, so readers never hold up a writer; on PostgreSQL nothing changes.
    """
    return engine.execution_options(**{_READ_ONLY: True})
