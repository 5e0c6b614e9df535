"""The log's read API over HTTP: checkpoints, entries, proofs and receipts for anyone to check.

Everything here is public by design (DESIGN §3.4): entries hold only pseudonyms and digests,
and a verifier needs nothing but these answers and the public keys. The handlers are plain
functions, so FastAPI runs the blocking store reads in its thread pool.
"""

from __future__ import annotations

import base64

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import PlainTextResponse

from medspace.ledger.receipt import build_receipt
from medspace.ledger.store import LogStore, StoreError

MAX_PAGE = 1000


def _b64(items: list[bytes]) -> list[str]:
    return [base64.b64encode(item).decode("ascii") for item in items]


def log_router(store: LogStore) -> APIRouter:
    """Routes under ``/log/v1`` that serve ``store`` read-only."""
    router = APIRouter(prefix="/log/v1", tags=["audit log"])

    @router.get("/checkpoint", response_class=PlainTextResponse)
    def checkpoint() -> str:
        """The newest checkpoint with a quorum of witness cosignatures."""
        cosigned = store.latest_cosigned()
        if cosigned is None or cosigned.cosigned is None:
            raise HTTPException(404, "no checkpoint has been witnessed yet")
        return cosigned.cosigned

    @router.get("/checkpoint/signed", response_class=PlainTextResponse)
    def signed_checkpoint() -> str:
        """The newest checkpoint the log signed, witnessed or not."""
        try:
            return store.checkpoint().note
        except StoreError as exc:
            raise HTTPException(404, str(exc)) from None

    @router.get("/checkpoints")
    def checkpoints(
        after: int = Query(0, ge=0, description="only checkpoints larger than this size"),
        limit: int = Query(MAX_PAGE, ge=1, le=MAX_PAGE),
    ) -> dict[str, object]:
        """Every checkpoint the log signed, oldest first, with cosigned forms where present."""
        rows = store.checkpoints(after=after, limit=limit)
        return {
            "checkpoints": [
                {"size": c.size, "note": c.note, "cosigned": c.cosigned} for c in rows
            ]
        }

    @router.get("/entries")
    def entries(
        start: int = Query(..., ge=0), end: int = Query(..., ge=0)
    ) -> dict[str, object]:
        """Raw entries ``[start, end)``, base64, at most 1000 at a time."""
        if end < start or end - start > MAX_PAGE:
            raise HTTPException(400, f"ask for 1 to {MAX_PAGE} entries with start <= end")
        return {"start": start, "entries": _b64(store.entries(start, end))}

    @router.get("/proof/inclusion")
    def inclusion(index: int = Query(..., ge=0), size: int = Query(..., ge=1)) -> dict[str, object]:
        """The RFC 9162 inclusion proof of entry ``index`` in the tree of ``size``."""
        try:
            proof = store.inclusion_proof(index, size)
        except StoreError as exc:
            raise HTTPException(400, str(exc)) from None
        return {"index": index, "size": size, "proof": _b64(proof)}

    @router.get("/proof/consistency")
    def consistency(
        first: int = Query(..., ge=1), second: int = Query(..., ge=1)
    ) -> dict[str, object]:
        """The RFC 9162 consistency proof from tree size ``first`` to ``second``."""
        try:
            proof = store.consistency_proof(first, second)
        except StoreError as exc:
            raise HTTPException(400, str(exc)) from None
        return {"first": first, "second": second, "proof": _b64(proof)}

    @router.get("/receipt")
    def receipt(index: int = Query(..., ge=0)) -> dict[str, object]:
        """A portable, offline-checkable proof that entry ``index`` is in the witnessed log."""
        try:
            return build_receipt(store, index)
        except StoreError as exc:
            raise HTTPException(404, str(exc)) from None

    return router
