"""Kill -9 an appending process mid-batch: every acknowledged entry survives, the tree holds."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

from medspace.ledger import merkle
from medspace.ledger.store import LogStore
from medspace.sqldb import create_engine

ORIGIN = "crash.example/log"

APPENDER = textwrap.dedent(
    """
    import sys, threading
    from medspace.ledger.sequencer import Sequencer
    from medspace.ledger.store import LogStore
    from medspace.sqldb import create_engine

    store = LogStore(create_engine(sys.argv[1]), sys.argv[2])
    sequencer = Sequencer(store, lambda size, root: f"{size} {root.hex()}")
    lock = threading.Lock()

    def work(worker):
        i = 0
        while True:
            data = f"w{worker}-{i}-".encode() + bytes(200)
            index = sequencer.append(data)
            with lock:
                sys.stdout.write(f"{index} {data.hex()}\\n")
                sys.stdout.flush()
            i += 1

    for w in range(6):
        threading.Thread(target=work, args=(w,), daemon=True).start()
    threading.Event().wait()
    """
)


def test_kill_during_appends_loses_no_acknowledged_entry(database_url: str) -> None:
    LogStore(create_engine(database_url), ORIGIN).engine.dispose()
    child = subprocess.Popen(
        [sys.executable, "-c", APPENDER, database_url, ORIGIN],
        stdout=subprocess.PIPE,
        text=True,
    )
    acknowledged: dict[int, bytes] = {}
    assert child.stdout is not None
    for line in child.stdout:
        index, data = line.split()
        acknowledged[int(index)] = bytes.fromhex(data)
        if len(acknowledged) >= 1500:
            break
    os.kill(child.pid, signal.SIGKILL)
    child.wait()

    engine = create_engine(database_url)
    store = LogStore(engine, ORIGIN)
    size, root = store.head()
    assert size >= len(acknowledged)
    stored = store.entries(0, size)
    assert len(stored) == size
    for index, data in acknowledged.items():
        assert stored[index] == data
    assert root == merkle.root(stored)
    assert store.checkpoint().size == size
    for checkpoint in store.checkpoints():
        assert checkpoint.note == f"{checkpoint.size} {merkle.root(stored[:checkpoint.size]).hex()}"
    store.append([b"after restart"], lambda s, r: f"{s} {r.hex()}")
    assert store.head()[1] == merkle.root([*stored, b"after restart"])
    engine.dispose()
