"""The witness's check-and-store is atomic, on SQLite and on PostgreSQL."""

from __future__ import annotations

import threading

from medspace.ledger import merkle
from medspace.ledger.checkpoint import Checkpoint, sign_checkpoint
from medspace.ledger.cosignature import Cosigner
from medspace.ledger.note import Signer
from medspace.ledger.witness import Witness, WitnessRefusal, format_add_checkpoint
from medspace.sqldb import create_engine

ORIGIN = "race.example/log"


def test_concurrent_requests_from_one_size_cannot_roll_the_witness_back(
    database_url: str,
) -> None:
    signer = Signer.generate(ORIGIN)
    witness = Witness(create_engine(database_url), Cosigner.generate("w"), [signer.verifier()])
    leaves = [f"e{i}".encode() for i in range(12)]

    def note(size: int) -> str:
        return sign_checkpoint(Checkpoint(ORIGIN, size, merkle.root(leaves[:size])), signer)

    witness.add_checkpoint(format_add_checkpoint(0, [], note(2)))
    outcomes: dict[int, str] = {}

    def submit(size: int) -> None:
        body = format_add_checkpoint(2, merkle.consistency_proof(2, leaves[:size]), note(size))
        try:
            witness.add_checkpoint(body)
            outcomes[size] = "cosigned"
        except WitnessRefusal as refusal:
            outcomes[size] = f"refused {refusal.status}"

    threads = [threading.Thread(target=submit, args=(size,)) for size in range(3, 12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [size for size, outcome in outcomes.items() if outcome == "cosigned"]
    assert len(winners) == 1, outcomes
    assert all(o == "refused 409" for s, o in outcomes.items() if s != winners[0])
    held = witness.state(ORIGIN)
    assert held is not None and held.size == winners[0]
    witness.engine.dispose()
