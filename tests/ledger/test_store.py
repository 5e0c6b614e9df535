from __future__ import annotations

import threading

import pytest

from medspace.ledger import merkle
from medspace.ledger.sequencer import Sequencer, SequencerClosed
from medspace.ledger.store import MAX_ENTRY_BYTES, LogStore, StoreError
from medspace.sqldb import create_engine

ORIGIN = "test.example/log"


def fake_sign(size: int, root: bytes) -> str:
    return f"{ORIGIN}\n{size}\n{root.hex()}\n"


@pytest.fixture
def store(database_url: str):
    engine = create_engine(database_url)
    yield LogStore(engine, ORIGIN)
    engine.dispose()


def entries(n: int, start: int = 0) -> list[bytes]:
    return [f"entry-{i}".encode() for i in range(start, start + n)]


def test_store_root_and_proofs_agree_with_the_reference_tree(store: LogStore) -> None:
    data = entries(37)
    for first in range(0, 37, 5):
        store.append(data[first:first + 5], fake_sign)
    size, root = store.head()
    assert size == 37
    assert root == merkle.root(data)
    for n in (1, 2, 7, 8, 9, 31, 32, 33, 37):
        assert store.root_at(n) == merkle.root(data[:n])
        for index in range(n):
            assert store.inclusion_proof(index, n) == merkle.inclusion_proof(index, data[:n])
        for m in range(1, n + 1):
            assert store.consistency_proof(m, n) == merkle.consistency_proof(m, data[:n])


def test_store_keeps_a_signed_checkpoint_for_every_batch(store: LogStore) -> None:
    store.append(entries(3), fake_sign)
    store.append(entries(2, 3), fake_sign)
    assert [c.size for c in store.checkpoints()] == [3, 5]
    assert store.checkpoint().note == fake_sign(5, merkle.root(entries(5)))
    assert store.latest_cosigned() is None
    store.record_cosigned(3, "cosigned-note")
    cosigned = store.latest_cosigned()
    assert cosigned is not None and cosigned.size == 3 and cosigned.cosigned == "cosigned-note"
    assert store.latest_cosigned(at_least=4) is None


def test_store_reads_back_entries_in_order(store: LogStore) -> None:
    store.append(entries(25), fake_sign)
    assert store.entries(3, 7) == entries(4, 3)
    assert list(store.iter_entries(batch=4)) == entries(25)


def test_store_keeps_entries_of_any_bytes_exactly(store: LogStore) -> None:
    data = [bytes(range(256)), b"\\N", b"tab\tnewline\nbackslash\\", b"\x00", bytes(1000)]
    store.append(data, fake_sign)
    store.append([b"\r\n" * 10], fake_sign)
    assert store.entries(0, 6) == [*data, b"\r\n" * 10]
    assert store.head() == (6, merkle.root([*data, b"\r\n" * 10]))


def test_store_refuses_oversized_entry_and_keeps_nothing_of_the_batch(store: LogStore) -> None:
    store.append(entries(2), fake_sign)
    with pytest.raises(StoreError, match="exceeds"):
        store.append([b"ok", b"x" * (MAX_ENTRY_BYTES + 1)], fake_sign)
    assert store.size == 2


def test_failed_signature_rolls_back_the_whole_batch(store: LogStore) -> None:
    store.append(entries(2), fake_sign)

    def broken_sign(size: int, root: bytes) -> str:
        raise RuntimeError("signing key unavailable")

    with pytest.raises(RuntimeError, match="signing key"):
        store.append(entries(3, 2), broken_sign)
    assert store.head() == (2, merkle.root(entries(2)))
    store.append(entries(3, 2), fake_sign)
    assert store.head() == (5, merkle.root(entries(5)))


def test_store_refuses_proofs_beyond_its_size(store: LogStore) -> None:
    store.append(entries(4), fake_sign)
    with pytest.raises(StoreError):
        store.inclusion_proof(0, 5)
    with pytest.raises(StoreError):
        store.inclusion_proof(4, 4)
    with pytest.raises(StoreError):
        store.consistency_proof(0, 4)
    with pytest.raises(StoreError):
        store.checkpoint(2)


def test_store_refuses_a_database_holding_another_log(database_url: str) -> None:
    engine = create_engine(database_url)
    LogStore(engine, ORIGIN)
    with pytest.raises(StoreError, match="holds the log"):
        LogStore(engine, "other.example/log")
    engine.dispose()


def test_concurrent_appenders_are_group_committed_without_loss(store: LogStore) -> None:
    sequencer = Sequencer(store, fake_sign)
    results: dict[bytes, int] = {}
    lock = threading.Lock()

    def appender(worker: int) -> None:
        for i in range(50):
            data = f"w{worker}-{i}".encode()
            index = sequencer.append(data, timeout=60)
            with lock:
                results[data] = index

    threads = [threading.Thread(target=appender, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sequencer.close()
    assert sorted(results.values()) == list(range(400))
    stored = store.entries(0, 400)
    assert all(stored[index] == data for data, index in results.items())
    assert len(store.checkpoints()) < 400, "concurrent appends should share commits"
    assert store.head()[1] == merkle.root(stored)


def test_sequencer_reports_the_store_error_to_every_waiting_appender(store: LogStore) -> None:
    sequencer = Sequencer(store, fake_sign)
    future = sequencer.submit(b"x" * (MAX_ENTRY_BYTES + 1))
    with pytest.raises(StoreError):
        future.result(timeout=30)
    assert sequencer.append(b"fine", timeout=30) == 0
    sequencer.close()
    with pytest.raises(SequencerClosed):
        sequencer.submit(b"late")


def test_two_stores_on_one_database_append_one_after_the_other(database_url: str) -> None:
    first = LogStore(create_engine(database_url), ORIGIN)
    second = LogStore(create_engine(database_url), ORIGIN)
    errors: list[BaseException] = []

    def run(store: LogStore, tag: str) -> None:
        try:
            for i in range(20):
                store.append([f"{tag}-{i}".encode()], fake_sign)
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(s, t)) for s, t in ((first, "a"), (second, "b"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert first.size == 40
    assert first.head()[1] == merkle.root(first.entries(0, 40))
    first.engine.dispose()
    second.engine.dispose()


def test_coroutines_appending_concurrently_each_get_their_own_durable_index(
    store: LogStore,
) -> None:
    import asyncio

    sequencer = Sequencer(store, fake_sign)

    async def main() -> list[int]:
        return await asyncio.gather(*(sequencer.append_async(f"c{i}".encode())
                                      for i in range(300)))

    indexes = asyncio.run(main())
    sequencer.close()
    assert sorted(indexes) == list(range(300))
    stored = store.entries(0, 300)
    assert all(stored[index] == f"c{i}".encode() for i, index in enumerate(indexes))
