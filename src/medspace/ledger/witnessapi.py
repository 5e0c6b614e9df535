"""A witness over HTTP: the tlog-witness ``add-checkpoint`` call and a read of its state.

The regulator runs this as ``medspace witness``; every hospital node mounts the same router.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, HTTPException, Query, Request
from fastapi.responses import PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from medspace.ledger.witness import MAX_REQUEST_BYTES, Witness, WitnessRefusal


def witness_router(witness: Witness) -> APIRouter:
    """Routes for ``witness``: ``POST /add-checkpoint`` and ``GET /witness/v1/…``."""
    router = APIRouter(tags=["witness"])

    @router.post("/add-checkpoint", response_class=PlainTextResponse)
    async def add_checkpoint(request: Request) -> Response:
        """Cosign a checkpoint given a consistency proof from the one the witness holds."""
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_REQUEST_BYTES:
                return PlainTextResponse("request too large\n", status_code=413)
        try:
            lines = await run_in_threadpool(witness.add_checkpoint, body)
        except WitnessRefusal as refusal:
            if refusal.status == 409 and refusal.size is not None:
                return Response(
                    f"{refusal.size}\n", status_code=409, media_type="text/x.tlog.size"
                )
            return PlainTextResponse(refusal.reason + "\n", status_code=refusal.status)
        return PlainTextResponse(lines)

    @router.get("/witness/v1/checkpoint", response_class=PlainTextResponse)
    def checkpoint(origin: str = Query(..., max_length=255)) -> str:
        """The newest checkpoint this witness cosigned for the log ``origin``."""
        state = witness.state(origin)
        if state is None:
            raise HTTPException(404, f"this witness holds no checkpoint of {origin!r}")
        return state.note

    @router.get("/witness/v1/key", response_class=PlainTextResponse)
    def key() -> str:
        """This witness's public key in vkey form."""
        return witness.cosigner.vkey + "\n"

    return router



def witness_app(witness: Witness) -> FastAPI:
    """A stand-alone witness service, as ``medspace witness`` runs it."""
    app = FastAPI(title=f"medspace witness {witness.name}", version="1")
    app.include_router(witness_router(witness))
    return app
