"""Group commit: many concurrent appenders, one durable transaction per batch.

An fsync costs the same for one entry as for a thousand, so appenders do not each commit.
They queue their entry and wait; a single writer thread takes everything queued, appends it in
one transaction and only then answers each appender with its index. While a batch is being
written the next one gathers, so batches grow with load and a lone appender waits for one
commit only.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from medspace.ledger.store import CheckpointSigner, LogStore

_STOP = object()


class SequencerClosed(RuntimeError):
    """The sequencer no longer takes entries."""


class Sequencer:
    """Appends entries to a ``LogStore`` in group commits, from a writer thread."""

    def __init__(self, store: LogStore, sign: CheckpointSigner, max_batch: int = 4096) -> None:
        self.store = store
        self._sign = sign
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="ledger-sequencer", daemon=True)
        self._thread.start()

    def submit(self, data: bytes) -> Future[int]:
        """Queue ``data``; the future resolves to its index once it is durable."""
        if self._closed:
            raise SequencerClosed("the log is shutting down; the entry was not appended")
        future: Future[int] = Future()
        self._queue.put((data, future))
        return future

    async def append_async(self, data: bytes) -> int:
        """Append ``data`` from a coroutine; resume with its index once it is durable.

        The writer wakes each event loop once per batch, not once per entry: waking a loop
        from another thread costs a system call, which at thousands of appends a second would
        cost more than the commit itself.
        """
        if self._closed:
            raise SequencerClosed("the log is shutting down; the entry was not appended")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int] = loop.create_future()
        self._queue.put((data, _LoopWaiter(loop, future)))
        return await future

    def append(self, data: bytes, timeout: float | None = None) -> int:
        """Append ``data`` and return its index once it is durable."""
        return self.submit(data).result(timeout)

    def close(self) -> None:
        """Write what is queued, then stop the writer."""
        if not self._closed:
            self._closed = True
            self._queue.put(_STOP)
            self._thread.join()

    def _run(self) -> None:
        stopping = False
        while not stopping:
            batch: list[tuple[bytes, Future[int] | _LoopWaiter]] = []
            item = self._queue.get()
            while True:
                if item is _STOP:
                    stopping = True
                else:
                    batch.append(item)  # type: ignore[arg-type]
                if len(batch) >= self._max_batch:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if batch:
                self._write(batch)

    def _write(self, batch: list[tuple[bytes, Future[int] | _LoopWaiter]]) -> None:
        outcomes: list[int | BaseException]
        try:
            first = self.store.append([data for data, _ in batch], self._sign)
            outcomes = [first + offset for offset in range(len(batch))]
        except Exception as exc:  # every waiting appender must learn why its entry failed
            outcomes = [exc] * len(batch)
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[int], Any]]] = {}
        for (_, waiter), outcome in zip(batch, outcomes, strict=True):
            if isinstance(waiter, _LoopWaiter):
                by_loop.setdefault(waiter.loop, []).append((waiter.future, outcome))
            elif isinstance(outcome, BaseException):
                waiter.set_exception(outcome)
            else:
                waiter.set_result(outcome)
        for loop, results in by_loop.items():
            with contextlib.suppress(RuntimeError):  # the loop closed; no one is waiting
                loop.call_soon_threadsafe(_settle, results)


@dataclass(frozen=True)
class _LoopWaiter:
    """An appender waiting in a coroutine on ``loop``."""

    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[int]


def _settle(results: list[tuple[asyncio.Future[int], Any]]) -> None:
    """On the waiters' loop: hand each its index or its error."""
    for future, outcome in results:
        if future.done():
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)
