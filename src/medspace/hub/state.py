"""The hub's durable state: participants, studies, approvals, tasks and the catalog, in SQL.

The hub keeps nothing that matters only in memory: a restarted hub finds every study and every
undelivered or unanswered task where it left them, so nodes resume and studies finish.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from medspace.sqldb import read_only

REGISTRY_SECONDS = 2.0
metadata = sa.MetaData()

participants = sa.Table(
    "hub_participants",
    metadata,
    sa.Column("id", sa.String(128), primary_key=True),
    sa.Column("role", sa.String(32), nullable=False),
    sa.Column("org", sa.String(128), nullable=False),
    sa.Column("sign_key", sa.String(64), nullable=False),
    sa.Column("kx_key", sa.String(64), nullable=True),
    sa.Column("witness_url", sa.String(255), nullable=True),
    sa.Column("witness_vkey", sa.String(255), nullable=True),
)
FINISHED = ("done", "failed", "withdrawn")
"""The statuses a study ends in: answered, failed, or withdrawn by its researcher."""

studies = sa.Table(
    "hub_studies",
    metadata,
    sa.Column("id", sa.String(128), primary_key=True),
    sa.Column("researcher", sa.String(128), nullable=False),
    sa.Column("request", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.Column("deadline_ms", sa.BigInteger, nullable=False),
    sa.Column("finished_ms", sa.BigInteger, nullable=True),
    sa.Column("result", sa.Text, nullable=True),
)
approvals = sa.Table(
    "hub_approvals",
    metadata,
    sa.Column("study", sa.String(128), primary_key=True),
    sa.Column("node", sa.String(128), primary_key=True),
    sa.Column("decision", sa.String(8), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
)
tasks = sa.Table(
    "hub_tasks",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("study", sa.String(128), nullable=False, index=True),
    sa.Column("node", sa.String(128), nullable=False, index=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("result", sa.Text, nullable=True),
)

catalog = sa.Table(
    "hub_catalog",
    metadata,
    sa.Column("dataset", sa.String(128), primary_key=True),
    sa.Column("node", sa.String(128), nullable=False, index=True),
    sa.Column("first_published_ms", sa.BigInteger, nullable=False),
    sa.Column("published_ms", sa.BigInteger, nullable=False),
    sa.Column("offer", sa.Text, nullable=False),
    sa.Column("payload_digest", sa.String(80), nullable=False),
)


@dataclass(frozen=True)
class Participant:
    """A registered member of the data space and the key it signs with."""

    id: str
    role: str
    org: str
    sign_key: str
    kx_key: str | None = None
    witness_url: str | None = None
    witness_vkey: str | None = None


@dataclass(frozen=True)
class TaskRow:
    """Where a task stands."""

    node: str
    study: str
    status: str


@dataclass(frozen=True)
class CatalogRow:
    """A dataset's latest offer as the hub keeps it: the offer's JSON and when it came."""

    dataset: str
    node: str
    first_published_ms: int
    published_ms: int
    offer: str
    payload_digest: str


class HubState:
    """Typed reads and writes of the hub's tables."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._reader = read_only(engine)
        self._registry: dict[str, Participant] = {}
        self._registry_read = float("-inf")
        metadata.create_all(engine)

    def register(self, participant: Participant) -> None:
        """Add or update a participant in the registry."""
        values = participant.__dict__
        with self.engine.begin() as conn:
            existing = conn.execute(
                sa.select(participants.c.id).where(participants.c.id == participant.id)
            ).first()
            if existing is None:
                conn.execute(participants.insert().values(**values))
            else:
                conn.execute(participants.update().where(participants.c.id == participant.id)
                             .values(**values))
        self._registry_read = float("-inf")

    def _registry_now(self) -> dict[str, Participant]:
        """The registry, read at most once every ``REGISTRY_SECONDS``: every signed request
        asks it. A change made through this object is seen at once."""
        now = time.monotonic()
        if now - self._registry_read > REGISTRY_SECONDS:
            with self._reader.connect() as conn:
                rows = conn.execute(sa.select(participants).order_by(participants.c.id)).all()
            self._registry = {row.id: Participant(**row._mapping) for row in rows}
            self._registry_read = now
        return self._registry

    def participant(self, participant_id: str) -> Participant | None:
        """The registered participant with this id."""
        return self._registry_now().get(participant_id)

    def participants(self, role: str | None = None) -> list[Participant]:
        """Every participant, or those of one role, by id."""
        return [p for p in self._registry_now().values() if role is None or p.role == role]

    def add_study(self, study_id: str, researcher: str, request: dict[str, Any],
                  created_ms: int, deadline_ms: int) -> None:
        """Record a submitted study."""
        with self.engine.begin() as conn:
            conn.execute(studies.insert().values(
                id=study_id, researcher=researcher, request=json.dumps(request),
                status="open", created_ms=created_ms, deadline_ms=deadline_ms))

    def study(self, study_id: str) -> dict[str, Any] | None:
        """A study's row, with its request and result decoded."""
        with self._reader.connect() as conn:
            row = conn.execute(sa.select(studies).where(studies.c.id == study_id)).first()
        if row is None:
            return None
        out = dict(row._mapping)
        out["request"] = json.loads(out["request"])
        out["result"] = None if out["result"] is None else json.loads(out["result"])
        return out

    def open_studies(self) -> list[str]:
        """Studies not yet finished: a restarted hub resumes these."""
        with self._reader.connect() as conn:
            return list(conn.execute(
                sa.select(studies.c.id).where(studies.c.status.in_(["open", "running"]))
            ).scalars())

    def work_for(self, node: str) -> tuple[list[dict[str, Any]], list[str]]:
        """What waits for ``node``: open studies it has not decided on, and its pending tasks.

        Asked on every long-poll, so it is two queries whatever the number of open studies.
        """
        decided = sa.select(approvals.c.study).where(approvals.c.study == studies.c.id,
                                                     approvals.c.node == node)
        with self._reader.connect() as conn:
            undecided = conn.execute(
                sa.select(studies.c.id, studies.c.researcher, studies.c.request)
                .where(studies.c.status.in_(["open", "running"]), ~decided.exists())
                .order_by(studies.c.created_ms)
            ).all()
            pending = list(conn.execute(
                sa.select(tasks.c.message).where(tasks.c.node == node,
                                                 tasks.c.status == "pending")
                .order_by(tasks.c.id)
            ).scalars())
        return ([{"id": row.id, "researcher": row.researcher,
                  "request": json.loads(row.request)} for row in undecided], pending)

    def set_study(self, study_id: str, status: str, result: dict[str, Any] | None = None) -> bool:
        """Move an unfinished study on, keeping its result; False if it had already finished.

        The check and the change are one statement, so of two concurrent attempts to finish a
        study exactly one succeeds.
        """
        values: dict[str, Any] = {"status": status}
        if result is not None:
            values["result"] = json.dumps(result)
        if status in FINISHED:
            values["finished_ms"] = time.time_ns() // 1_000_000
        with self.engine.begin() as conn:
            changed = conn.execute(
                studies.update()
                .where(studies.c.id == study_id, studies.c.status.in_(["open", "running"]))
                .values(**values)
            ).rowcount
        return changed == 1

    def record_approval(self, study: str, node: str, decision: str, message: str) -> None:
        """Keep a node's signed decision on a study (the first one stands)."""
        with self.engine.begin() as conn:
            exists = conn.execute(sa.select(approvals.c.node).where(
                approvals.c.study == study, approvals.c.node == node)).first()
            if exists is None:
                conn.execute(approvals.insert().values(study=study, node=node,
                                                       decision=decision, message=message))

    def approvals(self, study: str) -> dict[str, str]:
        """Each node's decision on ``study``."""
        with self._reader.connect() as conn:
            rows = conn.execute(sa.select(approvals.c.node, approvals.c.decision)
                                .where(approvals.c.study == study))
            return {row.node: row.decision for row in rows}

    def approval_messages(self, study: str) -> list[dict[str, Any]]:
        """The nodes' signed decisions on ``study``, as they sent them: anyone can check each
        hospital's signature and the agreement it made, without trusting the hub."""
        with self._reader.connect() as conn:
            messages = conn.execute(sa.select(approvals.c.message)
                                    .where(approvals.c.study == study)
                                    .order_by(approvals.c.node)).scalars()
            return [json.loads(m) for m in messages]

    def add_task(self, task_id: str, study: str, node: str, message: str) -> None:
        """Queue a signed task for a node."""
        with self.engine.begin() as conn:
            conn.execute(tasks.insert().values(id=task_id, study=study, node=node,
                                               status="pending", message=message))

    def task(self, task_id: str) -> TaskRow | None:
        """Whose a task is, for which study, and where it stands."""
        with self._reader.connect() as conn:
            row = conn.execute(sa.select(tasks.c.node, tasks.c.study, tasks.c.status)
                               .where(tasks.c.id == task_id)).first()
        return None if row is None else TaskRow(row.node, row.study, row.status)

    def finish_task(self, task_id: str, status: str, result: dict[str, Any]) -> None:
        """Keep a node's answer to a task."""
        with self.engine.begin() as conn:
            conn.execute(tasks.update().where(tasks.c.id == task_id)
                         .values(status=status, result=json.dumps(result)))

    def task_results(self, study: str) -> dict[str, dict[str, Any] | None]:
        """Each node's answer for ``study`` so far (None where it has not answered)."""
        with self._reader.connect() as conn:
            rows = conn.execute(sa.select(tasks.c.node, tasks.c.result)
                                .where(tasks.c.study == study))
            return {row.node: None if row.result is None else json.loads(row.result)
                    for row in rows}

    def expire_tasks(self, study: str) -> None:
        """Stop offering a finished study's unanswered tasks."""
        with self.engine.begin() as conn:
            conn.execute(tasks.update().where(tasks.c.study == study,
                                              tasks.c.status == "pending")
                         .values(status="expired"))

    def put_offer(self, dataset: str, node: str, published_ms: int, offer: str,
                  payload_digest: str) -> bool:
        """Keep ``offer`` (JSON) as the dataset's offer unless the dataset is another node's or
        already has an offer at least as new; False if it was not kept.

        The check and the change are one statement, so of two concurrent offers the newer
        stands; the first publication's time is kept.
        """
        values = {"node": node, "published_ms": published_ms, "offer": offer,
                  "payload_digest": payload_digest}
        try:
            with self.engine.begin() as conn:
                changed = conn.execute(
                    catalog.update()
                    .where(catalog.c.dataset == dataset, catalog.c.node == node,
                           catalog.c.published_ms < published_ms)
                    .values(**values)
                ).rowcount
                if changed:
                    return True
                exists = conn.execute(sa.select(catalog.c.dataset)
                                      .where(catalog.c.dataset == dataset)).first()
                if exists is not None:
                    return False
                conn.execute(catalog.insert().values(
                    dataset=dataset, first_published_ms=published_ms, **values))
        except sa.exc.IntegrityError:
            return False
        return True

    def offer(self, dataset: str) -> CatalogRow | None:
        """The latest offer of ``dataset``."""
        with self._reader.connect() as conn:
            row = conn.execute(sa.select(catalog).where(catalog.c.dataset == dataset)).first()
        return None if row is None else CatalogRow(**row._mapping)

    def offers(self, node: str | None = None) -> list[CatalogRow]:
        """Every dataset's latest offer, or those of one node, by dataset id."""
        query = sa.select(catalog).order_by(catalog.c.dataset)
        if node is not None:
            query = query.where(catalog.c.node == node)
        with self._reader.connect() as conn:
            return [CatalogRow(**row._mapping) for row in conn.execute(query)]
