"""Gets the log's newest checkpoint cosigned by its witnesses, until the quorum holds.

The publisher sends each witness the newest checkpoint with a consistency proof from the one
that witness last cosigned (tlog-witness ``add-checkpoint``), all witnesses at once. It keeps
only cosignatures that verify under the witness keys it trusts, and stores the cosigned
checkpoint as soon as they satisfy the quorum policy: a checkpoint counts only with a quorum
(DESIGN §3.4), and waiting for more than a quorum would let one slow or offline witness hold
everyone up. Witnesses left behind catch up next round with a longer consistency proof.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx
from starlette.concurrency import run_in_threadpool

from medspace.ledger.cosignature import CosignatureError, CosignerVerifier, verify_cosignature
from medspace.ledger.note import NoteError, parse_note, parse_signature
from medspace.ledger.quorum import Policy
from medspace.ledger.store import LogStore, StoredCheckpoint, StoreError
from medspace.ledger.witness import format_add_checkpoint

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WitnessAnswer:
    """A witness's answer to ``add-checkpoint``: HTTP status, content type and body."""

    status: int
    content_type: str
    text: str


Send = Callable[[bytes], Awaitable[WitnessAnswer]]
"""Delivers an ``add-checkpoint`` body to one witness and returns its answer."""


@dataclass(frozen=True)
class WitnessEndpoint:
    """How to reach a witness, and the key its cosignatures must verify under.

    A witness that listens (the regulator's) is reached over HTTP with ``http_sender``; one
    that may not accept connections (a hospital node behind its firewall) is reached through
    the node's own outbound channel, with a ``send`` that queues the request for it.
    """

    key: CosignerVerifier
    send: Send

    @property
    def name(self) -> str:
        """The witness's name, as in the quorum policy."""
        return self.key.name


def http_sender(client: httpx.AsyncClient, url: str) -> Send:
    """A ``Send`` that POSTs to ``<url>/add-checkpoint``."""

    async def send(body: bytes) -> WitnessAnswer:
        response = await client.post(url.rstrip("/") + "/add-checkpoint", content=body)
        return WitnessAnswer(response.status_code,
                             response.headers.get("content-type", ""), response.text)

    return send


@dataclass(frozen=True)
class Outcome:
    """What one publishing round achieved."""

    size: int
    cosigned_by: tuple[str, ...]
    failures: dict[str, str]
    witnessed: bool


class Publisher:
    """Collects witness cosignatures on the log's checkpoints."""

    def __init__(
        self,
        store: LogStore,
        witnesses: list[WitnessEndpoint],
        policy: Policy,
    ) -> None:
        self.store = store
        self.witnesses = witnesses
        self.policy = policy
        self._held: dict[str, int] = {}
        cosigned = store.latest_cosigned()
        self.witnessed_size = 0 if cosigned is None else cosigned.size
        self._advanced = asyncio.Condition()

    async def wait_witnessed(self, size: int, timeout: float) -> bool:
        """Wait until a quorum has cosigned a checkpoint of at least ``size`` entries.

        Returns False after ``timeout`` seconds. Waiters are woken by the round that stores
        the cosigned checkpoint, so waiting costs nothing while no round succeeds.
        """
        async with self._advanced:
            try:
                await asyncio.wait_for(
                    self._advanced.wait_for(lambda: self.witnessed_size >= size), timeout
                )
            except TimeoutError:
                return False
        return True

    async def publish(self) -> Outcome | None:
        """Try once to get the newest checkpoint witnessed; None if there is nothing to do."""
        try:
            latest = await run_in_threadpool(self.store.checkpoint)
        except StoreError:
            return None
        if latest.cosigned is not None:
            return None
        text = parse_note(latest.note).text
        pending = {asyncio.ensure_future(self._ask(w, latest, text)): w for w in self.witnesses}
        lines: list[str] = []
        cosigned_by: list[str] = []
        failures: dict[str, str] = {}
        while pending and not self.policy.satisfied(set(cosigned_by)):
            done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for future in done:
                witness = pending.pop(future)
                try:
                    lines.append(future.result())
                    cosigned_by.append(witness.name)
                except Exception as exc:  # each witness's failure is reported, not raised
                    failures[witness.name] = str(exc) or type(exc).__name__
        for future in pending:
            future.cancel()
        witnessed = self.policy.satisfied(set(cosigned_by))
        if witnessed:
            await run_in_threadpool(
                self.store.record_cosigned, latest.size, latest.note + "".join(lines)
            )
            async with self._advanced:
                self.witnessed_size = max(self.witnessed_size, latest.size)
                self._advanced.notify_all()
        else:
            log.warning(
                "checkpoint %d not witnessed: %s (%s)",
                latest.size,
                self.policy.explain(set(cosigned_by)),
                "; ".join(f"{k}: {v}" for k, v in failures.items()),
            )
        return Outcome(latest.size, tuple(cosigned_by), failures, witnessed)

    async def run(
        self, stop: asyncio.Event, interval: float = 0.05, wake: asyncio.Event | None = None
    ) -> None:
        """Publish every new checkpoint until ``stop`` is set.

        A round runs every ``interval`` seconds, or at once when ``wake`` is set: the log owner
        sets it when someone waits for an entry to be witnessed, so that entry does not wait a
        tick, while the entries no one waits for are witnessed together, a round per interval.
        """
        wake = wake or asyncio.Event()
        while not stop.is_set():
            wake.clear()
            try:
                await self.publish()
            except Exception:  # a round that fails is retried; the loop must not die
                log.exception("publishing the checkpoint failed")
            waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())]
            await asyncio.wait(waiters, timeout=interval, return_when=asyncio.FIRST_COMPLETED)
            for waiter in waiters:
                waiter.cancel()

    async def _ask(self, witness: WitnessEndpoint, latest: StoredCheckpoint, text: str) -> str:
        """One witness's cosignature line on ``latest``, or an exception saying why not."""
        old = self._held.get(witness.name, 0)
        for _ in range(2):
            if old > latest.size:
                raise RuntimeError(f"witness holds size {old}, beyond the log's {latest.size}")
            proof = (
                await run_in_threadpool(self.store.consistency_proof, old, latest.size)
                if 0 < old < latest.size
                else []
            )
            response = await witness.send(format_add_checkpoint(old, proof, latest.note))
            if response.status == 409 and response.content_type.startswith("text/x.tlog.size"):
                held = int(response.text.strip())
                if held == old:
                    raise RuntimeError(f"refused (409): fork at size {held}")
                old = held
                continue
            if response.status != 200:
                raise RuntimeError(f"refused ({response.status}): {response.text.strip()}")
            line = _own_cosignature(response.text, text, witness.key)
            self._held[witness.name] = latest.size
            return line
        raise RuntimeError("witness state kept changing; try again")


def _own_cosignature(body: str, text: str, key: CosignerVerifier) -> str:
    """The line of ``body`` that is ``key``'s valid cosignature of ``text``."""
    for raw in body.splitlines(keepends=True):
        try:
            signature = parse_signature(raw)
        except NoteError:
            continue
        if (signature.name, signature.key_id) != (key.name, key.key_id):
            continue
        try:
            verify_cosignature(text, signature, key)
        except CosignatureError as exc:
            raise RuntimeError(f"bad cosignature: {exc}") from None
        return raw
    raise RuntimeError("the answer holds no cosignature by the expected key")
