"""What a node remembers about tasks and studies, so that it never answers twice or blindly.

Every task id and nonce the node has seen stays recorded: a replayed task is refused, and a task
the node already answered is answered again with the very same signed result instead of being
computed anew. Every study the hub offered is kept as it was offered, with the hospital's
decision once made: the hospital's own record of what it allowed, which tasks are held to.
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
studies = sa.Table(
    "node_studies",
    metadata,
    sa.Column("id", sa.String(128), primary_key=True),
    sa.Column("researcher", sa.String(128), nullable=False),
    sa.Column("request", sa.Text, nullable=False),
    sa.Column("offered_ms", sa.BigInteger, nullable=False),
    sa.Column("decision", sa.String(8), nullable=True),
    sa.Column("decided_by", sa.String(128), nullable=True),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("decided_ms", sa.BigInteger, nullable=True),
    sa.Column("agreement", sa.Text, nullable=True),
    sa.Column("revoked_ms", sa.BigInteger, nullable=True),
    sa.Column("revoked_by", sa.String(128), nullable=True),
    sa.Column("revoke_reason", sa.Text, nullable=True),
)
cursors = sa.Table(
    "node_cursors",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("position", sa.BigInteger, nullable=False),
)


budgets = sa.Table(
    "node_budgets",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("spent", sa.Float, nullable=False),
)


class BudgetExhausted(ValueError):
    """Spending would take a privacy budget past its cap; nothing was spent."""

    def __init__(self, name: str, spent: float, cap: float) -> None:
        super().__init__(f"the {name} budget has ε {spent:g} of {cap:g} spent")
        self.spent = spent
        self.cap = cap


class Replay(ValueError):
    """A task reuses a nonce of another task."""


@dataclass(frozen=True)
class StudyRecord:
    """A study as the hub offered it, and the hospital's decision (None while undecided)."""

    id: str
    researcher: str
    request: dict[str, Any]
    offered_ms: int
    decision: str | None
    decided_by: str | None
    reason: str | None
    decided_ms: int | None
    agreement: dict[str, Any] | None = None
    """The ODRL Agreement (JSON-LD) the hospital made when it approved."""
    revoked_ms: int | None = None
    revoked_by: str | None = None

    @property
    def status(self) -> str:
        """offered, agreed, refused or revoked (an agreed study's expiry is its agreement's)."""
        if self.revoked_ms is not None:
            return "revoked"
        return {"permit": "agreed", "deny": "refused"}.get(self.decision or "", "offered")

    def as_offered(self) -> dict[str, Any]:
        """The study in the form the hub offers it."""
        return {"id": self.id, "researcher": self.researcher, "request": self.request}


def _record(row: sa.Row) -> StudyRecord:
    return StudyRecord(row.id, row.researcher, json.loads(row.request), row.offered_ms,
                       row.decision, row.decided_by, row.reason, row.decided_ms,
                       None if row.agreement is None else json.loads(row.agreement),
                       row.revoked_ms, row.revoked_by)


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

    def offer(self, study: str, researcher: str, request: dict[str, Any], now_ms: int) -> None:
        """Keep a study the hub offers, as first offered (a later offer changes nothing)."""
        with self.engine.begin() as conn:
            if conn.execute(sa.select(studies.c.id).where(studies.c.id == study)).first() is None:
                conn.execute(studies.insert().values(
                    id=study, researcher=researcher, request=json.dumps(request, sort_keys=True),
                    offered_ms=now_ms))

    def decide(self, study: str, decision: str, decided_by: str, reason: str | None,
               now_ms: int, agreement: dict[str, Any] | None = None) -> bool:
        """Record the hospital's decision on an offered study, with the agreement an approval
        makes; False if it was already decided (the first decision stands). Raises LookupError
        for a study never offered."""
        with self.engine.begin() as conn:
            if conn.execute(sa.select(studies.c.id).where(studies.c.id == study)).first() is None:
                raise LookupError(f"no study {study} has been offered to this hospital")
            changed = conn.execute(
                studies.update().where(studies.c.id == study, studies.c.decision.is_(None))
                .values(decision=decision, decided_by=decided_by, reason=reason,
                        decided_ms=now_ms,
                        agreement=None if agreement is None else json.dumps(agreement))).rowcount
        return bool(changed)

    def study(self, study: str) -> StudyRecord | None:
        """The offered study and the decision on it, if it was offered."""
        with self._reader.connect() as conn:
            row = conn.execute(sa.select(studies).where(studies.c.id == study)).first()
        return None if row is None else _record(row)

    def studies(self, undecided: bool = False) -> list[StudyRecord]:
        """Every offered study (or only those awaiting a decision), oldest first."""
        query = sa.select(studies).order_by(studies.c.offered_ms, studies.c.id)
        if undecided:
            query = query.where(studies.c.decision.is_(None))
        with self._reader.connect() as conn:
            return [_record(row) for row in conn.execute(query)]

    def revoke(self, study: str, revoked_by: str, reason: str, now_ms: int) -> bool:
        """End an agreed study; False unless it was agreed and not yet revoked."""
        with self.engine.begin() as conn:
            changed = conn.execute(
                studies.update().where(studies.c.id == study, studies.c.decision == "permit",
                                       studies.c.revoked_ms.is_(None))
                .values(revoked_ms=now_ms, revoked_by=revoked_by, revoke_reason=reason)
            ).rowcount
        return bool(changed)

    def released(self, study: str) -> int:
        """How many of the study's tasks this node has answered with a release."""
        with self._reader.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(tasks).where(
                tasks.c.study == study, tasks.c.status == "released")).scalar_one()

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

    def spend(self, name: str, epsilon: float, cap: float) -> float:
        """Charge ``epsilon`` to the privacy budget ``name`` and return what it has spent now;
        BudgetExhausted, charging nothing, if that would pass ``cap``. The check and the charge
        are one transaction, so two processes cannot both take the last of a budget."""
        with self.engine.begin() as conn:
            spent = conn.execute(sa.select(budgets.c.spent)
                                 .where(budgets.c.name == name)).scalar() or 0.0
            if spent + epsilon > cap * (1 + 1e-12):
                raise BudgetExhausted(name, spent, cap)
            if not conn.execute(budgets.update().where(budgets.c.name == name)
                                .values(spent=spent + epsilon)).rowcount:
                conn.execute(budgets.insert().values(name=name, spent=spent + epsilon))
        return spent + epsilon
