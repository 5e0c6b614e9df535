"""The hub's work: studies in, signed tasks out over the nodes' own connections, results back.

Nodes never accept connections, so everything the hub has for a node — a study to decide on,
a task, a checkpoint for its witness to cosign — waits in the hub until the node's agent asks
(long-poll). Every step is an audit event in the log, and a task is handed out only with a
receipt proving its dispatch is in the witnessed log, which the node re-checks (DESIGN §3.3).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
from collections import defaultdict
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.concurrency import run_in_threadpool

from medspace.hub.aggregate import combine
from medspace.hub.catalog import CatalogError, check_offer
from medspace.hub.state import FINISHED, HubState
from medspace.ledger.cosignature import parse_cosigner_vkey
from medspace.ledger.events import AuditEvent, EventError, new_event, new_id, parse_event
from medspace.ledger.log import TransparencyLog
from medspace.ledger.publisher import Publisher, Send, WitnessAnswer, WitnessEndpoint
from medspace.ledger.quorum import Policy
from medspace.ledger.receipt import build_receipt
from medspace.wire.messages import (
    TASK_KIND,
    Approval,
    DatasetOffer,
    Receipt,
    StudyRequest,
    Task,
    TaskCore,
    TaskResult,
    Withdrawal,
    digest,
    now_ms,
)
from medspace.wire.signing import WireKey

log = logging.getLogger(__name__)

TASK_LIFETIME_MS = 10 * 60 * 1000
OFFER_CLOCK_SKEW_MS = 120_000
WITNESS_TIMEOUT = 10.0
PUBLISH_INTERVAL = 1.0


class HubError(ValueError):
    """A request the hub refuses, with the reason to send back."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def _node_event(node: str, data: bytes) -> AuditEvent:
    """The audit event ``node`` sent about itself; HubError if it is malformed or another's."""
    try:
        event = parse_event(data)
    except EventError as exc:
        raise HubError(400, f"not an audit event: {exc}") from None
    if event.actor != node or event.org != node:
        raise HubError(403, "a node may only record events about itself")
    return event


@dataclass
class _Mailbox:
    """What waits for one node, and the events that wake its two long-polls."""

    wake_work: asyncio.Event = field(default_factory=asyncio.Event)
    wake_witness: asyncio.Event = field(default_factory=asyncio.Event)
    cosign: dict[str, tuple[bytes, asyncio.Future[WitnessAnswer]]] = field(default_factory=dict)


class Hub:
    """Registry, study workflow, task broker and audit log of one data space."""

    def __init__(
        self,
        state: HubState,
        audit: TransparencyLog,
        key: WireKey,
        policy: Policy,
        listening_witnesses: list[WitnessEndpoint],
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.state = state
        self.audit = audit
        self.key = key
        self.policy = policy
        self.client = client
        self._mail: dict[str, _Mailbox] = defaultdict(_Mailbox)
        self._wanted = asyncio.Event()
        self._finished = asyncio.Condition()
        self._tasks: set[asyncio.Task[None]] = set()
        self.last_seen: dict[str, int] = {}
        node_witnesses = [
            WitnessEndpoint(parse_cosigner_vkey(w.key), self._node_sender(w.name))
            for w in policy.witnesses
            if w.name not in {e.name for e in listening_witnesses}
        ]
        self.publisher = Publisher(audit.store, listening_witnesses + node_witnesses, policy)

    # -- the audit log -------------------------------------------------------------------

    async def record(self, actor: str | None = None, role: str = "hub", **fields: Any) -> int:
        """Append an audit event (the hub's own unless ``actor`` says whose)."""
        actor = actor or self.key.participant
        return await self.audit.record_async(
            new_event(actor=actor, org=actor, role=role, **fields)
        )

    async def record_from(self, node: str, data: bytes) -> int:
        """Append an audit event a node wrote about itself (a refusal of an unreadable task)."""
        return await self.audit.record_async(_node_event(node, data))

    async def witnessed(self, index: int) -> Receipt:
        """The receipt of entry ``index`` once a quorum has cosigned a checkpoint covering it."""
        self._wanted.set()
        if not await self.publisher.wait_witnessed(index + 1, WITNESS_TIMEOUT):
            raise HubError(503, "the witnesses did not cosign in time; try again")
        receipt = await run_in_threadpool(build_receipt, self.audit.store, index)
        return Receipt.model_validate(receipt)

    async def run(self, stop: asyncio.Event) -> None:
        """Publish checkpoints and close studies at their deadline until ``stop`` is set."""
        try:
            self._background(self._resume())
            await asyncio.gather(
                self.publisher.run(stop, interval=PUBLISH_INTERVAL, wake=self._wanted),
                self._deadlines(stop),
            )
        finally:
            if self.client is not None:
                await self.client.aclose()

    async def _resume(self) -> None:
        """Dispatch the tasks a stopped hub owed: approvals it recorded but never acted on."""
        for study_id in await run_in_threadpool(self.state.open_studies):
            study = await run_in_threadpool(self.state.study, study_id)
            decisions = await run_in_threadpool(self.state.approvals, study_id)
            dispatched = await run_in_threadpool(self.state.task_results, study_id)
            for node, decision in decisions.items():
                if study is not None and decision == "permit" and node not in dispatched:
                    await self._dispatch(study, node)

    # -- witnesses behind a node's firewall ----------------------------------------------

    def _node_sender(self, node: str) -> Send:
        async def send(body: bytes) -> WitnessAnswer:
            future: asyncio.Future[WitnessAnswer] = asyncio.get_running_loop().create_future()
            request_id = new_id()
            mailbox = self._mail[node]
            mailbox.cosign[request_id] = (body, future)
            mailbox.wake_witness.set()
            try:
                return await asyncio.wait_for(future, WITNESS_TIMEOUT)
            finally:
                mailbox.cosign.pop(request_id, None)

        return send

    def cosigned(self, node: str, request_id: str, answer: WitnessAnswer) -> None:
        """A node's witness answered a cosigning request."""
        pending = self._mail[node].cosign.get(request_id)
        if pending is not None and not pending[1].done():
            pending[1].set_result(answer)

    # -- the long-poll -------------------------------------------------------------------

    async def poll(self, node: str, channel: str, wait: float) -> dict[str, Any]:
        """What waits for ``node`` on ``channel``, waiting up to ``wait`` seconds for something."""
        self.last_seen[node] = now_ms()
        mailbox = self._mail[node]
        wake = mailbox.wake_witness if channel == "witness" else mailbox.wake_work
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while True:
            wake.clear()
            if channel == "witness":
                waiting = {"cosign": [
                    {"id": rid, "body": base64.b64encode(body).decode("ascii")}
                    for rid, (body, future) in list(mailbox.cosign.items()) if not future.done()
                ]}
            else:
                waiting = await run_in_threadpool(self._work_for, node)
            if any(waiting.values()) or loop.time() >= deadline:
                return waiting
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), deadline - loop.time())

    def _work_for(self, node: str) -> dict[str, Any]:
        undecided, pending = self.state.work_for(node)
        studies = [study for study in undecided
                   if study["request"].get("nodes") is None or node in study["request"]["nodes"]]
        return {"studies": studies, "tasks": [json.loads(m) for m in pending]}

    def _wake(self, node: str) -> None:
        self._mail[node].wake_work.set()

    # -- the catalog ---------------------------------------------------------------------

    async def publish(self, offer: DatasetOffer) -> dict[str, Any]:
        """Log a node's dataset offer and its policy, then show it in the catalog.

        The offer must be fresh (its time within the clock skew of the hub's, and newer than
        the dataset's current offer), so that a replayed old offer cannot roll the catalog
        back; the dataset must be the node's own (see :func:`medspace.hub.catalog.check_offer`).
        """
        received = now_ms()
        if abs(received - offer.published_at) > OFFER_CLOCK_SKEW_MS:
            raise HubError(400, "the offer is stale or from the future; check the node's clock "
                                "and publish again")
        existing = await run_in_threadpool(self.state.offer, offer.dataset)
        try:
            check_offer(offer, existing)
        except CatalogError as exc:
            raise HubError(exc.status, exc.reason) from None
        body = offer.model_dump(mode="json")
        payload_digest = digest(body)
        index = await self.record(actor=offer.node, role="hospital", action="dataset.published",
                                  subject=offer.dataset, decision="info",
                                  payload_digest=payload_digest)
        await self.record(actor=offer.node, role="hospital", action="policy.published",
                          subject=offer.dataset, decision="info",
                          payload_digest=digest(offer.policy))
        if not await run_in_threadpool(self.state.put_offer, offer.dataset, offer.node,
                                       offer.published_at, json.dumps(body), payload_digest):
            raise HubError(409, f"{offer.dataset} received a newer offer meanwhile; it stands")
        return {"dataset": offer.dataset, "payload_digest": payload_digest, "index": index}

    # -- studies -------------------------------------------------------------------------

    async def submit(self, researcher: str, request: StudyRequest) -> str:
        """Open a study and tell the hospitals it concerns."""
        hospitals = [p.id for p in self.state.participants("hospital")]
        targets = request.nodes if request.nodes is not None else hospitals
        unknown = sorted(set(targets) - set(hospitals))
        if unknown:
            raise HubError(400, f"unknown hospitals: {', '.join(unknown)}")
        study_id = f"study-{new_id(12)}"
        body = request.model_dump()
        await self.record(action="study.submitted", subject=f"study:{study_id}",
                          purpose=request.purpose, decision="info", payload_digest=digest(body))
        created = now_ms()
        await run_in_threadpool(self.state.add_study, study_id, researcher, body, created,
                                created + int(request.deadline_seconds * 1000))
        for node in targets:
            self._wake(node)
        return study_id

    async def study(self, study_id: str, wait: float = 0.0) -> dict[str, Any] | None:
        """A study's row, once it has finished or after ``wait`` seconds, whichever is first.

        A study finished by this hub wakes its waiters at once; one finished by another hub
        worker on the same database is seen within a second.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while True:
            found = await run_in_threadpool(self.state.study, study_id)
            left = deadline - loop.time()
            if found is None or found["status"] in FINISHED or left <= 0:
                return found
            async with self._finished:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._finished.wait(), min(left, 1.0))

    async def decide(self, approval: Approval, message: str) -> None:
        """Keep a hospital's decision on a study; dispatch its task when it permits."""
        study = await run_in_threadpool(self.state.study, approval.study)
        if study is None or study["status"] not in ("open", "running"):
            raise HubError(404, f"no open study {approval.study}")
        await self.record(
            actor=approval.node, role="hospital",
            action="study.approved" if approval.decision == "permit" else "study.refused",
            subject=f"study:{approval.study}", purpose="research", decision=approval.decision,
            reason=approval.reason, payload_digest=digest(approval.model_dump()),
        )
        await run_in_threadpool(self.state.record_approval, approval.study, approval.node,
                                approval.decision, message)
        if approval.decision == "permit":
            self._background(self._dispatch(study, approval.node))
        else:
            await self._maybe_finish(approval.study)

    def _background(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` after the request that caused it has been answered."""
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background work failed", exc_info=task.exception())

    async def _dispatch(self, study: dict[str, Any], node: str) -> None:
        issued = now_ms()
        core = TaskCore(id=new_id(), kind=study["request"]["kind"], study=study["id"], node=node,
                        issued_at=issued, expires_at=min(issued + TASK_LIFETIME_MS,
                                                         study["deadline_ms"]),
                        nonce=new_id(), query=study["request"]["query"])
        index = await self.record(action="task.dispatched", subject=f"task:{core.id}",
                                  purpose="research", decision="permit",
                                  payload_digest=digest(core.model_dump()))
        receipt = await self.witnessed(index)
        signed = self.key.sign(TASK_KIND, Task(core=core, authorization=receipt).model_dump())
        await run_in_threadpool(self.state.add_task, core.id, study["id"], node,
                                signed.model_dump_json())
        await run_in_threadpool(self.state.set_study, study["id"], "running")
        self._wake(node)

    async def result(self, result: TaskResult) -> None:
        """Log a node's answer, keep it, and finish the study once every hospital has answered.
        """
        task = await run_in_threadpool(self.state.task, result.task)
        if task is None or task.node != result.node:
            raise HubError(404, f"no task {result.task} for {result.node}")
        if task.status != "pending":
            return
        try:
            data = base64.b64decode(result.event, validate=True)
        except ValueError:
            raise HubError(400, "the result's audit event is not base64") from None
        event = _node_event(result.node, data)
        action = "result.released" if result.status == "released" else "task.refused"
        if (event.subject, event.action) != (f"task:{result.task}", action) or (
                event.payload_digest != result.payload_digest):
            raise HubError(400, f"the result's audit event is not the {action} of this task")
        await self.audit.record_async(event)
        await run_in_threadpool(self.state.finish_task, result.task, result.status,
                                result.model_dump(exclude={"event"}))
        await self._maybe_finish(task.study)

    async def withdraw(self, researcher: str, withdrawal: Withdrawal) -> None:
        """End a researcher's own unfinished study: its pending tasks expire, nodes get no
        more of them, and the log says who withdrew it and why."""
        study = await run_in_threadpool(self.state.study, withdrawal.study)
        if study is None:
            raise HubError(404, f"no study {withdrawal.study}")
        if study["researcher"] != researcher:
            reason = "only the researcher who submitted a study may withdraw it"
            await self.record(actor=researcher, role="researcher", action="access.denied",
                              subject=f"study:{withdrawal.study}", decision="deny",
                              reason=reason)
            raise HubError(403, reason)
        outcome = {"status": "withdrawn", "reason": withdrawal.reason}
        if not await run_in_threadpool(self.state.set_study, withdrawal.study, "withdrawn",
                                       outcome):
            raise HubError(409, f"{withdrawal.study} has already finished ({study['status']})")
        await run_in_threadpool(self.state.expire_tasks, withdrawal.study)
        await self.record(actor=researcher, role="researcher", action="study.revoked",
                          subject=f"study:{withdrawal.study}",
                          purpose=study["request"].get("purpose", "research"), decision="deny",
                          reason=withdrawal.reason, payload_digest=digest(withdrawal.model_dump()))
        async with self._finished:
            self._finished.notify_all()

    async def _maybe_finish(self, study_id: str, deadline_passed: bool = False) -> None:
        study = await run_in_threadpool(self.state.study, study_id)
        if study is None or study["status"] not in ("open", "running"):
            return
        hospitals = [p.id for p in self.state.participants("hospital")]
        targets = study["request"].get("nodes") or hospitals
        decisions = await run_in_threadpool(self.state.approvals, study_id)
        answers = await run_in_threadpool(self.state.task_results, study_id)
        settled = {n for n in targets if decisions.get(n) == "deny" or answers.get(n)}
        if settled != set(targets) and not deadline_passed:
            return
        released = {n: a for n, a in answers.items() if a and a["status"] == "released"}
        missing = sorted(set(targets) - settled)
        request = StudyRequest.model_validate(study["request"])
        if (missing and request.on_missing == "fail") or len(released) < request.min_nodes:
            outcome = {"status": "failed", "missing": missing,
                       "reason": f"{len(released)} of {len(targets)} hospitals released results"}
            status = "failed"
        else:
            outcome = {"status": "done", "missing": missing,
                       "result": combine(request.kind, {n: a["payload"]
                                                        for n, a in released.items()}),
                       "refused": {n: a["reason"] for n, a in answers.items()
                                   if a and a["status"] == "refused"},
                       "denied": sorted(n for n, d in decisions.items() if d == "deny")}
            status = "done"
        if not await run_in_threadpool(self.state.set_study, study_id, status, outcome):
            return
        async with self._finished:
            self._finished.notify_all()
        await run_in_threadpool(self.state.expire_tasks, study_id)
        await self.record(action="result.released", subject=f"study:{study_id}",
                          purpose="research", decision="permit" if status == "done" else "deny",
                          payload_digest=digest(outcome))

    async def _deadlines(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            now = now_ms()
            for study_id in await run_in_threadpool(self.state.open_studies):
                study = await run_in_threadpool(self.state.study, study_id)
                if study is not None and study["deadline_ms"] <= now:
                    await self._maybe_finish(study_id, deadline_passed=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5)

