"""The hub's HTTP API. Every write is a message signed by a registered participant.

Mutual TLS keeps strangers out of the connection; the signatures say which participant is
speaking and are what the audit log records. Nodes reach the hub only through their own
outbound requests: ``/v1/poll`` to collect what waits for them, the other routes to answer.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, HTTPException, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool

from medspace.hub.catalog import CatalogError, dataset_document, search
from medspace.hub.service import Hub, HubError
from medspace.hub.state import Participant
from medspace.ledger.events import EventError
from medspace.ledger.logapi import log_router
from medspace.ledger.publisher import WitnessAnswer
from medspace.wire.messages import (
    APPROVAL_KIND,
    COSIGNATURE_KIND,
    DATASET_KIND,
    EVENT_KIND,
    POLL_KIND,
    RESULT_KIND,
    WITHDRAWAL_KIND,
    Approval,
    DatasetOffer,
    Poll,
    PollRequest,
    StudyRequest,
    TaskResult,
    Withdrawal,
    now_ms,
)
from medspace.wire.signing import SignatureError, SignedMessage, verify_message

MAX_CLOCK_SKEW_MS = 120_000
MAX_POLL_SECONDS = 25.0


class CosignAnswer(BaseModel):
    """A node's witness's answer to a cosigning request, relayed by its agent."""

    id: str
    status: int
    content_type: str
    text: str


class NodeEvent(BaseModel):
    """An audit event a node recorded about itself, base64 of its canonical bytes."""

    event: str


async def _denied(hub: Hub, participant: Participant | None, kind: str, reason: str) -> None:
    """Log a refused call as ``access.denied``: by the participant when it is registered, by
    the hub (naming no one) when the signer is not."""
    fields = {"action": "access.denied", "subject": f"api:{kind}", "decision": "deny"}
    if participant is None:
        await hub.record(reason="a signer the registry does not hold", **fields)
        return
    try:
        await hub.record(actor=participant.id, role=participant.role, reason=reason[:500],
                         **fields)
    except EventError:
        await hub.record(actor=participant.id, role=participant.role, **fields)


async def _opened(hub: Hub, message: SignedMessage, kind: str,
                  roles: set[str]) -> dict[str, Any]:
    """The body of a message signed by a registered participant in one of ``roles``; anything
    else is refused (403) and the refusal logged."""
    participant = hub.state.participant(message.signer)
    if participant is None or participant.role not in roles:
        reason = f"{message.signer!r} is not a registered {' or '.join(sorted(roles))}"
        await _denied(hub, participant, kind, reason)
        raise HTTPException(403, reason)
    try:
        return verify_message(message, kind, base64.b64decode(participant.sign_key))
    except SignatureError as exc:
        await _denied(hub, participant, kind, str(exc))
        raise HTTPException(403, str(exc)) from None


def _model(model: type[BaseModel], body: dict[str, Any]) -> Any:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise HTTPException(422, f"malformed {model.__name__}: {exc.errors()[:3]}") from None


def create_app(hub: Hub) -> FastAPI:
    """The hub's app; its lifespan runs the publisher and the study deadlines."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        stop = asyncio.Event()
        runner = asyncio.create_task(hub.run(stop))
        try:
            yield
        finally:
            stop.set()
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner
            await run_in_threadpool(hub.audit.close)

    app = FastAPI(title="medspace hub", version="1", lifespan=lifespan)
    app.include_router(log_router(hub.audit.store))

    @app.exception_handler(HubError)
    async def _hub_error(_: Any, exc: HubError) -> JSONResponse:
        return JSONResponse({"detail": exc.reason}, status_code=exc.status)

    async def take_cosignature(message: SignedMessage) -> dict[str, str]:
        """A node's witness answers a cosigning request."""
        answer = _model(CosignAnswer,
                        await _opened(hub, message, COSIGNATURE_KIND, {"hospital"}))
        hub.cosigned(message.signer, answer.id,
                     WitnessAnswer(answer.status, answer.content_type, answer.text))
        return {"status": "received"}

    async def take_approval(message: SignedMessage) -> dict[str, str]:
        """A hospital's decision on a study."""
        approval = _model(Approval, await _opened(hub, message, APPROVAL_KIND, {"hospital"}))
        if approval.node != message.signer:
            raise HTTPException(403, "a hospital may only decide for itself")
        await hub.decide(approval, message.model_dump_json())
        return {"status": "recorded"}

    async def take_result(message: SignedMessage) -> dict[str, str]:
        """A node's signed answer to a task, with the audit event of its release or refusal."""
        result = _model(TaskResult, await _opened(hub, message, RESULT_KIND, {"hospital"}))
        if result.node != message.signer:
            raise HTTPException(403, "a node may only answer its own tasks")
        await hub.result(result)
        return {"status": "received"}

    async def take_event(message: SignedMessage) -> dict[str, int]:
        """A node records an audit event about itself (a refusal of an unreadable task)."""
        body = _model(NodeEvent, await _opened(hub, message, EVENT_KIND, {"hospital"}))
        try:
            data = base64.b64decode(body.event, validate=True)
        except ValueError:
            raise HTTPException(400, "event is not base64") from None
        return {"index": await hub.record_from(message.signer, data)}

    takers = {COSIGNATURE_KIND: take_cosignature, APPROVAL_KIND: take_approval,
              RESULT_KIND: take_result, EVENT_KIND: take_event}

    async def take(message: SignedMessage) -> str | None:
        """Handle one message a node sent with its poll; why it was refused, or None."""
        taker = takers.get(message.kind)
        if taker is None:
            return f"unknown message kind {message.kind!r}"
        try:
            await taker(message)
        except HTTPException as exc:
            return f"{message.kind} refused ({exc.status_code}): {exc.detail}"
        except HubError as exc:
            return f"{message.kind} refused ({exc.status}): {exc.reason}"
        return None

    @app.post("/v1/poll")
    async def poll(request: PollRequest,
                   wait: float = Query(MAX_POLL_SECONDS, ge=0, le=MAX_POLL_SECONDS)
                   ) -> dict[str, Any]:
        """A node hands over what it has for the hub, then collects its cosigning requests,
        studies to decide on and tasks. Refusals of what it handed over come back at once."""
        signed = request.poll
        asked = _model(Poll, await _opened(hub, signed, POLL_KIND, {"hospital"}))
        if asked.node != signed.signer:
            raise HTTPException(403, "a node may only poll for itself")
        if abs(now_ms() - asked.sent_at) > MAX_CLOCK_SKEW_MS:
            raise HTTPException(400, "poll is stale or from the future; check the node's clock")
        if any(message.signer != signed.signer for message in request.outbox):
            raise HTTPException(403, "a node may only hand over its own messages")
        refused = [reason for message in request.outbox
                   if (reason := await take(message)) is not None]
        if refused:
            return {"refused": refused}
        return await hub.poll(asked.node, asked.channel, wait)

    app.post("/v1/cosignatures")(take_cosignature)
    app.post("/v1/approvals")(take_approval)
    app.post("/v1/events")(take_event)
    app.post("/v1/results")(take_result)

    @app.post("/v1/studies")
    async def submit(message: SignedMessage) -> dict[str, str]:
        """A researcher submits a study."""
        request = _model(StudyRequest, await _opened(hub, message, "study", {"researcher"}))
        return {"study": await hub.submit(message.signer, request)}

    @app.post("/v1/studies/{study_id}/withdraw")
    async def withdraw(study_id: str, message: SignedMessage) -> dict[str, str]:
        """The researcher who submitted a study withdraws it."""
        withdrawal = _model(Withdrawal,
                            await _opened(hub, message, WITHDRAWAL_KIND, {"researcher"}))
        if withdrawal.study != study_id:
            raise HTTPException(400, "the signed withdrawal names another study")
        await hub.withdraw(message.signer, withdrawal)
        return {"study": study_id, "status": "withdrawn"}

    @app.post("/v1/catalog")
    async def publish(message: SignedMessage) -> dict[str, Any]:
        """A hospital's node publishes its dataset offer; the hub logs it and its policy."""
        offer = _model(DatasetOffer, await _opened(hub, message, DATASET_KIND, {"hospital"}))
        if offer.node != message.signer:
            raise HTTPException(403, "a node may only publish its own dataset offer")
        return await hub.publish(offer)

    @app.get("/v1/catalog")
    def catalog(
        hospital: str | None = Query(None, max_length=128,
                                     description="Only this hospital's datasets."),
        code: str | None = Query(None, max_length=32,
                                 description="An ICD-10 or ATC code or prefix (C34.1, L01)."),
        purpose: str | None = Query(None, max_length=64,
                                    description="Only datasets a researcher may aggregate for "
                                                "this purpose now."),
    ) -> dict[str, Any]:
        """The catalog as DCAT / Dataspace Protocol JSON-LD, for every enrolled participant."""
        try:
            return search(hub.state.offers(hospital), code=code, purpose=purpose)
        except CatalogError as exc:
            raise HTTPException(exc.status, exc.reason) from None

    @app.get("/v1/catalog/{dataset_id}")
    def catalog_dataset(dataset_id: str) -> dict[str, Any]:
        """One dataset of the catalog as a JSON-LD ``dcat:Dataset``."""
        row = hub.state.offer(dataset_id)
        if row is None:
            raise HTTPException(404, f"no dataset {dataset_id} in the catalog")
        try:
            return dataset_document(row)
        except CatalogError as exc:
            raise HTTPException(exc.status, exc.reason) from None

    @app.get("/v1/registry")
    def registry() -> list[dict[str, Any]]:
        """Every participant's role and public keys: signing, key agreement and witness."""
        return [{"id": p.id, "role": p.role, "org": p.org, "sign_key": p.sign_key,
                 "kx_key": p.kx_key, "witness_vkey": p.witness_vkey}
                for p in hub.state.participants()]

    @app.get("/v1/nodes")
    def nodes() -> list[dict[str, Any]]:
        """Each hospital and when its node last called in (None: not since the hub started)."""
        return [{"id": p.id, "org": p.org, "last_seen_ms": hub.last_seen.get(p.id)}
                for p in hub.state.participants("hospital")]

    @app.get("/v1/studies/{study_id}")
    async def study(study_id: str,
                    wait: float = Query(0, ge=0, le=MAX_POLL_SECONDS)) -> dict[str, Any]:
        """A study's status and, once finished, its result; ``wait`` seconds for it to finish.
        ``approvals`` holds each hospital's signed decision, with the agreement it made."""
        found = await hub.study(study_id, wait)
        if found is None:
            raise HTTPException(404, f"no study {study_id}")
        found["approvals"] = await run_in_threadpool(hub.state.approval_messages, study_id)
        return found

    return app
