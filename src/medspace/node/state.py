"""What a node remembers about tasks and studies, so that it never answers twice or blindly.

Every task id and nonce the node has seen stays recorded: a replayed task is refused, and a task
the node already answered is answered again with the very same signed result instead of being
computed anew. Study decisions are the hospital's own record of what it allowed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from medspace.sqldb import read_only

metadata = sa.MetaData()
tasks = sa.Table(
    "node_tasks",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("nonce", sa.String(32), nullable=False, unique=True),
    sa.Column("study", sa.String(128), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("received_ms", sa.BigInteger, nullable=False),
    sa.Column("result", sa.Text, nullable=True),
)
decisions = sa.Table(
    "node_decisions",
    metadata,
    sa.Column("study", sa.String(128), primary_key=True),
    sa.Column("decision", sa.String(8), nullable=False),
    sa.Column("decided_by", sa.String(128), nullable=False),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("decided_ms", sa.BigInteger, nullable=False),
    sa.Column("request", sa.Text, nullable=False),
)


cursors = sa.Table(
    "node_cursors",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("position", sa.BigInteger, nullable=False),
)


class Replay(ValueError):
    """A task reuses a nonce of another task."""


@dataclass(frozen=True)
class SeenTask:
    """A task the node has already taken in."""

    status: str
    result: str | None


class NodeState:
    """The node's task and decision records."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._reader = read_only(engine)
        metadata.create_all(engine)

    def take(self, task_id: str, nonce: str, study: str, now_ms: int) -> SeenTask | None:
        """Record a task as being worked on; return its earlier record if it was seen before.

        Raises Replay when the nonce belongs to another task.
        """
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(tasks).where(
                sa.or_(tasks.c.id == task_id, tasks.c.nonce == nonce))).first()
            if row is not None:
                if row.id != task_id or row.nonce != nonce:
                    raise Replay("the task reuses the nonce or id of another task")
                return SeenTask(row.status, row.result)
            conn.execute(tasks.insert().values(id=task_id, nonce=nonce, study=study,
                                               status="working", received_ms=now_ms))
        return None

    def finish(self, task_id: str, status: str, result: str) -> None:
        """Keep the signed answer to a task."""
        with self.engine.begin() as conn:
            conn.execute(tasks.update().where(tasks.c.id == task_id)
                         .values(status=status, result=result))

    def decide(self, study: str, decision: str, decided_by: str, reason: str | None,
               now_ms: int, request: dict[str, Any]) -> None:
        """Record the hospital's decision on a study and the request it decided on (the first
        decision stands)."""
        with self.engine.begin() as conn:
            if conn.execute(sa.select(decisions.c.study)
                            .where(decisions.c.study == study)).first() is None:
                conn.execute(decisions.insert().values(
                    study=study, decision=decision, decided_by=decided_by, reason=reason,
                    decided_ms=now_ms, request=json.dumps(request, sort_keys=True)))

    def decision(self, study: str) -> str | None:
        """``permit``, ``deny``, or None when the hospital has not decided."""
        with self._reader.connect() as conn:
            return conn.execute(sa.select(decisions.c.decision)
                                .where(decisions.c.study == study)).scalar()

    def approved(self, study: str) -> dict[str, Any] | None:
        """The study request this hospital approved, as it was when approved; None unless the
        decision is ``permit``. Tasks are held to it, whatever the hub says the study is."""
        with self._reader.connect() as conn:
            row = conn.execute(sa.select(decisions.c.decision, decisions.c.request)
                               .where(decisions.c.study == study)).first()
        if row is None or row.decision != "permit":
            return None
        request: dict[str, Any] = json.loads(row.request)
        return request

    def cursor(self, name: str) -> int:
        """How far the node has got through something it reads in order (0 at first)."""
        with self._reader.connect() as conn:
            return conn.execute(sa.select(cursors.c.position)
                                .where(cursors.c.name == name)).scalar() or 0

    def advance(self, name: str, position: int) -> None:
        """Remember that the node has got to ``position``."""
        with self.engine.begin() as conn:
            if not conn.execute(cursors.update().where(cursors.c.name == name)
                                .values(position=position)).rowcount:
                conn.execute(cursors.insert().values(name=name, position=position))
