"""The audit log as the data space runs it: audit events in; signed checkpoints, proofs out.

A ``TransparencyLog`` puts a group-committing sequencer and the log's signing key in front of a
``LogStore``. Only audit events that passed their schema and personal-data screening go in, so
the log never holds anything but pseudonyms and digests (DESIGN §3.5).
"""

from __future__ import annotations

from medspace.ledger.checkpoint import Checkpoint, sign_checkpoint
from medspace.ledger.events import AuditEvent
from medspace.ledger.note import Signer
from medspace.ledger.sequencer import Sequencer
from medspace.ledger.store import LogStore


class TransparencyLog:
    """An append-only, signed audit log over a durable store."""

    def __init__(self, store: LogStore, signer: Signer, max_batch: int = 4096) -> None:
        if signer.name != store.origin:
            raise ValueError(
                f"the log key is named {signer.name!r} but the log's origin is {store.origin!r}"
            )
        self.store = store
        self.signer = signer
        self.sequencer = Sequencer(store, self._sign, max_batch=max_batch)

    @property
    def origin(self) -> str:
        """The log's origin line, which names it in every checkpoint."""
        return self.store.origin

    def _sign(self, size: int, root: bytes) -> str:
        return sign_checkpoint(Checkpoint(self.origin, size, root), self.signer)

    def record(self, event: AuditEvent) -> int:
        """Append an audit event; return its index once it is durable."""
        return self.sequencer.append(event.to_bytes())

    async def record_async(self, event: AuditEvent) -> int:
        """``record`` for async callers: waits without blocking the event loop."""
        return await self.sequencer.append_async(event.to_bytes())

    def close(self) -> None:
        """Finish the queued appends and stop taking new ones."""
        self.sequencer.close()
