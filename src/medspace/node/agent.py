"""The node's agent: the only thing that talks to the hub, and only by calling out.

It long-polls the hub and handles what comes back: a checkpoint for the hospital's witness to
cosign, a study for the hospital to decide on, a task to check and answer. Nothing is released
before the checks of ``checks`` pass, the task's authorisation is consistent with what this
hospital's own witness has seen, the answer passed disclosure control, and the release is in
the node's own journal and in the hub's log (DESIGN §3.2, §3.3). A hub that is down is retried
with back-off; a restarted node resumes where its records say it was.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import httpx
from starlette.concurrency import run_in_threadpool

from medspace.analytics.counting import DisclosureRules, Refusal
from medspace.deid.egress import EgressBlocked, EgressFilter, Screen
from medspace.ledger import merkle
from medspace.ledger.events import Action, new_event, new_id, parse_event
from medspace.ledger.log import TransparencyLog
from medspace.ledger.note import decode_base64
from medspace.ledger.trust import Trust, TrustError
from medspace.ledger.witness import Witness, WitnessRefusal, format_add_checkpoint
from medspace.node.checks import TaskRefused, check_authorization, open_task
from medspace.node.governance import Governance, NotAllowed
from medspace.node.review import ReviewError, decide_study
from medspace.node.state import NodeState, Replay
from medspace.policy.odrl import PolicyError, parse_jsonld
from medspace.store.consent import ConsentRule
from medspace.store.engine import ClinicalStore
from medspace.wire.messages import (
    APPROVAL_KIND,
    COSIGNATURE_KIND,
    EVENT_KIND,
    MAX_OUTBOX,
    POLL_KIND,
    RESULT_KIND,
    Approval,
    Poll,
    PollRequest,
    Task,
    TaskResult,
    digest,
    now_ms,
)
from medspace.wire.signing import SignedMessage, WireKey

log = logging.getLogger(__name__)

JOURNAL_CURSOR = "journal.forwarded"
FORWARDED = frozenset({Action.CONSENT_GRANTED, Action.CONSENT_REVOKED, Action.STUDY_REVOKED})
"""Journal events the node sends the hub's log on their own; releases, refusals and decisions
travel with the messages they concern."""

@dataclass
class Node:
    """Everything a hospital node holds, as the agent uses it."""

    id: str
    key: WireKey
    hub_key: bytes
    trust: Trust
    state: NodeState
    journal: TransparencyLog
    witness: Witness
    store: ClinicalStore
    rules: DisclosureRules = field(default_factory=DisclosureRules)
    governance: Governance = field(default_factory=Governance)
    """The hospital's rules: allowed analyses, usage policy, standing approval, consent."""
    egress: Screen = field(default_factory=lambda: EgressFilter(()))
    """The identifiers of this node's patients, which nothing the node sends may carry."""


class HubUnavailable(RuntimeError):
    """The hub could not be reached or refused a request."""


class Agent:
    """Long-polls the hub for ``node`` and answers what it finds."""

    def __init__(self, node: Node, hub_url: str, client: httpx.AsyncClient,
                 poll_seconds: float = 20.0) -> None:
        self.node = node
        self.hub_url = hub_url.rstrip("/")
        self.client = client
        self.poll_seconds = poll_seconds
        self._stop = asyncio.Event()
        self._outbox: dict[str, list[SignedMessage]] = {"work": [], "witness": []}

    async def run(self, stop: asyncio.Event) -> None:
        """Serve both channels until ``stop`` is set, then hand over what is left to send."""
        self._stop = stop
        await asyncio.gather(self._loop(stop, self.witness_step), self._loop(stop, self.work_step))
        try:
            await self.flush()
        except (httpx.HTTPError, HubUnavailable) as exc:
            log.warning("stopping with answers the hub has not taken (%s); the hub offers "
                        "their tasks again and this node resends them when it restarts", exc)

    async def _loop(self, stop: asyncio.Event, step: Callable[[], Awaitable[None]]) -> None:
        """Repeat ``step``; back off while the hub is unreachable."""
        backoff = 0.2
        while not stop.is_set():
            try:
                await step()
                backoff = 0.2
            except (httpx.HTTPError, HubUnavailable) as exc:
                log.warning("hub unavailable (%s); retrying in %.1f s", exc, backoff)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), backoff)
                backoff = min(backoff * 2, 10.0)

    async def _poll(self, channel: str, wait: float | None = None) -> dict[str, Any]:
        """Hand over what waits in ``channel``'s outbox, then collect what the hub has there;
        nothing if the agent is told to stop meanwhile.

        Only the wait is cut short (a poll that does not wait is not cut at all): work the poll
        brought is always finished, so a stopping node never leaves a release half journalled.
        What the poll carried goes back to the outbox unless the hub took it.
        """
        wait = self.poll_seconds if wait is None else wait
        waiting = self._outbox[channel]
        outbox, self._outbox[channel] = waiting[:MAX_OUTBOX], waiting[MAX_OUTBOX:]
        poll = Poll(node=self.node.id, channel=channel, sent_at=now_ms(), nonce=new_id())
        body = PollRequest(poll=self.node.key.sign(POLL_KIND, poll.model_dump()), outbox=outbox)
        request = asyncio.ensure_future(self.client.post(
            self.hub_url + "/v1/poll", json=body.model_dump(), params={"wait": wait},
            timeout=wait + 10))
        racing = {request, asyncio.ensure_future(self._stop.wait())} if wait else {request}
        try:
            done, _ = await asyncio.wait(racing, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for future in racing:
                if not future.done():
                    future.cancel()
        try:
            if request not in done:
                self._outbox[channel][:0] = outbox
                return {}
            response = request.result()
            if response.status_code != 200:
                raise HubUnavailable(f"/v1/poll answered {response.status_code}: "
                                     f"{response.text[:200]}")
        except BaseException:
            self._outbox[channel][:0] = outbox
            raise
        answer: dict[str, Any] = response.json()
        for reason in answer.get("refused", []):
            log.warning("the hub refused what this node sent: %s", reason)
        return answer

    def queue(self, channel: str, message: SignedMessage) -> None:
        """Send ``message`` with the next poll on ``channel``."""
        self._outbox[channel].append(message)

    def unsent(self, channel: str) -> list[SignedMessage]:
        """What waits to go out on ``channel``."""
        return list(self._outbox[channel])

    async def flush(self) -> None:
        """Hand over whatever waits in the outboxes now, without waiting for work."""
        for channel, waiting in self._outbox.items():
            while waiting:
                await self._poll(channel, wait=0)
                waiting = self._outbox[channel]

    async def witness_step(self) -> None:
        """One poll of the witness channel: cosign what the hub brings."""
        for request in (await self._poll("witness")).get("cosign", []):
            await self._cosign(request)

    async def work_step(self) -> None:
        """One poll of the work channel: pass on journalled consent changes, decide on
        studies, answer tasks."""
        await self.forward_journal()
        waiting = await self._poll("work")
        for study in waiting.get("studies", []):
            await self._decide(study)
        for message in waiting.get("tasks", []):
            await self.handle_task(SignedMessage.model_validate(message))

    async def forward_journal(self) -> None:
        """Send the hub's log the events of the node's journal it must witness too (consent
        changes, written by whatever process recorded them), once each, in journal order."""
        journal = self.node.journal.store
        start = await run_in_threadpool(self.node.state.cursor, JOURNAL_CURSOR)
        end = await run_in_threadpool(lambda: journal.size)
        for offset, entry in enumerate(await run_in_threadpool(journal.entries, start, end)):
            if parse_event(entry).action in FORWARDED:
                await self._post("/v1/events", EVENT_KIND,
                                 {"event": base64.b64encode(entry).decode("ascii")})
            await run_in_threadpool(self.node.state.advance, JOURNAL_CURSOR, start + offset + 1)

    async def _post(self, path: str, kind: str, body: dict[str, Any],
                    params: dict[str, Any] | None = None, timeout: float = 30.0) -> Any:
        signed = await self._sign(kind, body)
        response = await self.client.post(self.hub_url + path, json=signed.model_dump(),
                                          params=params, timeout=timeout)
        if response.status_code != 200:
            raise HubUnavailable(f"{path} answered {response.status_code}: {response.text[:200]}")
        return response.json()

    async def _cosign(self, request: dict[str, Any]) -> None:
        body = base64.b64decode(request["body"])
        try:
            lines = await run_in_threadpool(self.node.witness.add_checkpoint, body)
            answer = {"status": 200, "content_type": "text/plain", "text": lines}
        except WitnessRefusal as refusal:
            size_reply = refusal.status == 409 and refusal.size is not None
            answer = {"status": refusal.status,
                      "content_type": "text/x.tlog.size" if size_reply else "text/plain",
                      "text": f"{refusal.size}\n" if size_reply else refusal.reason}
        self.queue("witness", await self._sign(COSIGNATURE_KIND, {"id": request["id"], **answer}))

    async def _decide(self, study: dict[str, Any]) -> None:
        """Keep the offered study; answer it once decided, by the hospital's standing rule or
        by a person (``medspace node studies approve|deny``)."""
        state = self.node.state
        await run_in_threadpool(state.offer, study["id"], str(study.get("researcher", "")),
                                study["request"], now_ms())
        record = await run_in_threadpool(state.study, study["id"])
        if record is not None and record.decision is None:
            verdict = self.node.governance.auto_decision(record.as_offered(),
                                                         dt.datetime.now(dt.UTC))
            if verdict is None:
                return
            with contextlib.suppress(ReviewError):  # a person decided first: theirs stands
                await run_in_threadpool(partial(
                    decide_study, state, self.node.journal, self.node.governance,
                    study=study["id"], decision="permit", decided_by="auto-approval",
                    reason="the hospital's standing approval rule",
                    now=dt.datetime.now(dt.UTC)))
            record = await run_in_threadpool(state.study, study["id"])
        if record is None or record.decision is None or record.decided_by is None:
            return
        approval = Approval(study=record.id, node=self.node.id, decision=record.decision,
                            decided_by=record.decided_by, reason=record.reason,
                            agreement=record.agreement)
        self.queue("work", await self._sign(APPROVAL_KIND, approval.model_dump()))

    async def handle_task(self, message: SignedMessage) -> TaskResult | None:
        """Check, compute, journal and release — or refuse with a logged reason."""
        now = now_ms()
        try:
            task = open_task(message, self.node.hub_key, self.node.id, now)
        except TaskRefused as refused:
            return await self._refuse(refused.task_id, refused.reason)
        core = task.core
        try:
            seen = await run_in_threadpool(self.node.state.take, core.id, core.nonce,
                                           core.study, now)
        except Replay as replay:
            return await self._refuse(core.id, f"replayed task: {replay}")
        if seen is not None and seen.result is not None:
            resent = SignedMessage.model_validate_json(seen.result)
            self.queue("work", resent)
            return TaskResult.model_validate(resent.body)
        try:
            payload = await self._checked_compute(task)
        except TaskRefused as refused:
            return await self._refuse(core.id, refused.reason)
        return await self._release(task, payload)

    async def _checked_compute(self, task: Task) -> dict[str, Any]:
        core = task.core
        rules = self.node.governance
        try:
            analysis = rules.analysis(core.kind)
        except NotAllowed as exc:
            raise TaskRefused(str(exc), core.id) from None
        approved = await run_in_threadpool(self.node.state.study, core.study)
        if approved is not None and approved.status == "revoked":
            raise TaskRefused(f"this hospital revoked {core.study}", core.id)
        if (approved is None or approved.status != "agreed" or approved.decided_ms is None
                or approved.agreement is None):
            raise TaskRefused(f"this hospital has not approved {core.study}", core.id)
        if (core.kind, core.query) != (approved.request.get("kind"),
                                       approved.request.get("query")):
            raise TaskRefused(f"the task asks for something other than the study {core.study} "
                              "this hospital approved", core.id)
        now = dt.datetime.now(dt.UTC)
        released = await run_in_threadpool(self.node.state.released, core.study)
        try:
            rules.check_task(analysis, approved.as_offered(), parse_jsonld(approved.agreement),
                             now, queries=released,
                             approved_at=dt.datetime.fromtimestamp(approved.decided_ms / 1000,
                                                                   dt.UTC))
        except (NotAllowed, PolicyError) as exc:
            raise TaskRefused(str(exc), core.id) from None
        purpose = approved.request.get("purpose", "research")
        if purpose not in rules.consent_defaults:
            raise TaskRefused(f"the study's purpose {purpose!r} has no consent rule here",
                              core.id)
        consent = ConsentRule(purpose, now.date(), rules.consent_defaults[purpose])
        try:
            await run_in_threadpool(check_authorization, task, self.node.trust)
        except TrustError as exc:
            raise TaskRefused(f"the task's checkpoint is not witnessed: {exc}", core.id) from None
        await self._consistent_with_own_witness(task.authorization.checkpoint, core.id)
        try:
            payload = await run_in_threadpool(analysis.compute, self.node.store, core.query,
                                              self.node.rules, consent)
        except Refusal as refusal:
            raise TaskRefused(str(refusal), core.id) from None
        try:
            await self._screen(payload)
        except EgressBlocked as blocked:
            log.error("egress filter, task %s: %s", core.id, blocked)
            raise TaskRefused(f"egress filter: {blocked}", core.id) from None
        return payload

    async def _consistent_with_own_witness(self, note: str, task_id: str) -> None:
        """Refuse unless the task's checkpoint extends, or is extended by, what we witnessed."""
        checkpoint = self.node.trust.check_signed(note)
        held = await run_in_threadpool(self.node.witness.state, checkpoint.origin)
        if held is None or held.size < checkpoint.size:
            old = 0 if held is None else held.size
            proof = await self._consistency_proof(old, checkpoint.size) if old else []
            try:
                await run_in_threadpool(self.node.witness.add_checkpoint,
                                        format_add_checkpoint(old, proof, note))
            except WitnessRefusal as refusal:
                if refusal.status != 409 or refusal.held_note is not None:
                    raise TaskRefused("the task's checkpoint is not consistent with what this "
                                      f"hospital witnessed: {refusal.reason}", task_id) from None
            return
        if held.size == checkpoint.size:
            if held.root != checkpoint.root:
                raise TaskRefused("fork: the log showed this hospital another tree of the same "
                                  "size", task_id)
            return
        proof = await self._consistency_proof(checkpoint.size, held.size)
        try:
            merkle.verify_consistency(checkpoint.size, held.size, proof, checkpoint.root,
                                      held.root)
        except merkle.ProofError as exc:
            raise TaskRefused(f"the task's checkpoint is not consistent with what this "
                              f"hospital witnessed: {exc}", task_id) from None

    async def _consistency_proof(self, first: int, second: int) -> list[bytes]:
        response = await self.client.get(self.hub_url + "/log/v1/proof/consistency",
                                         params={"first": first, "second": second})
        if response.status_code != 200:
            raise HubUnavailable(f"no consistency proof: {response.text[:200]}")
        return [decode_base64(h) for h in response.json()["proof"]]

    async def _journal(self, action: str, subject: str, decision: str,
                       reason: str | None = None,
                       payload_digest: str | None = None) -> tuple[int, str]:
        """Record an event in the node's own journal; its index and its bytes for the hub's log.
        """
        event = new_event(actor=self.node.id, org=self.node.id, role="hospital", action=action,
                          subject=subject, purpose="research", decision=decision,
                          reason=reason, payload_digest=payload_digest)
        index = await self.node.journal.record_async(event)
        return index, base64.b64encode(event.to_bytes()).decode("ascii")

    async def _release(self, task: Task, payload: dict[str, Any]) -> TaskResult:
        payload_digest = digest(payload)
        index, event = await self._journal("result.released", f"task:{task.core.id}", "permit",
                                           payload_digest=payload_digest)
        result = TaskResult(task=task.core.id, node=self.node.id, status="released",
                            payload=payload, payload_digest=payload_digest, journal_index=index,
                            event=event)
        await self._finish(result)
        return result

    async def _refuse(self, task_id: str | None, reason: str) -> TaskResult | None:
        try:
            await self._screen(reason)
        except EgressBlocked as blocked:
            log.error("egress filter, refusal of task %s: %s", task_id, blocked)
            reason = f"refused; the reason was withheld, egress filter: {blocked}"
        index, event = await self._journal("task.refused", f"task:{task_id or 'unreadable'}",
                                           "deny", reason=reason[:500])
        log.warning("refused task %s: %s", task_id, reason)
        if task_id is None:
            await self._post("/v1/events", EVENT_KIND, {"event": event})
            return None
        result = TaskResult(task=task_id, node=self.node.id, status="refused",
                            reason=reason[:500], journal_index=index, event=event)
        await self._finish(result)
        return result

    async def _screen(self, content: object) -> None:
        """Raise :class:`EgressBlocked` if ``content`` holds one of this node's identifiers."""
        text = content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)
        await run_in_threadpool(self.node.egress.check, text)

    async def _sign(self, kind: str, body: dict[str, Any]) -> SignedMessage:
        """Sign a message for the hub: the one way out of the node, so every message sent is
        screened by the egress filter first, the journal event it carries decoded, and a
        blocked one is never signed."""
        await self._screen(body)
        if isinstance(body.get("event"), str):
            await self._screen(base64.b64decode(body["event"]).decode("utf-8", "replace"))
        return self.node.key.sign(kind, body)

    async def _finish(self, result: TaskResult) -> None:
        signed = await self._sign(RESULT_KIND, result.model_dump())
        await run_in_threadpool(self.node.state.finish, result.task, result.status,
                                signed.model_dump_json())
        self.queue("work", signed)
