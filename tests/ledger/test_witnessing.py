from __future__ import annotations

import pytest

from medspace.ledger import merkle
from medspace.ledger.checkpoint import Checkpoint, sign_checkpoint
from medspace.ledger.note import Signer
from medspace.ledger.trust import TrustError
from medspace.ledger.witness import WitnessRefusal, format_add_checkpoint
from tests.consortium import HOSPITALS, ORIGIN, Consortium


def test_checkpoint_counts_once_the_regulator_and_two_thirds_of_hospitals_cosign(
    consortium: Consortium,
) -> None:
    consortium.record(3)
    outcome = consortium.publish()
    assert outcome is not None and outcome.witnessed
    assert "regulator" in outcome.cosigned_by
    assert len(set(outcome.cosigned_by) & set(HOSPITALS)) >= 4
    cosigned = consortium.store.latest_cosigned()
    assert cosigned is not None and cosigned.size == 3
    checkpoint = consortium.trust.check_witnessed(cosigned.cosigned)
    assert checkpoint.root == merkle.root(consortium.store.entries(0, 3))


def test_checkpoint_without_the_regulator_does_not_count(consortium: Consortium) -> None:
    consortium.record(2)
    outcome = consortium.publish(only=HOSPITALS)
    assert outcome is not None and not outcome.witnessed
    assert consortium.store.latest_cosigned() is None


def test_checkpoint_with_too_few_hospitals_does_not_count(consortium: Consortium) -> None:
    consortium.record(2)
    outcome = consortium.publish(only=["regulator", *HOSPITALS[:3]])
    assert outcome is not None and not outcome.witnessed
    outcome = consortium.publish(only=["regulator", *HOSPITALS[:4]])
    assert outcome is not None and outcome.witnessed


def test_witnesses_follow_the_log_as_it_grows(consortium: Consortium) -> None:
    for n in (1, 4, 9):
        consortium.record(n)
        outcome = consortium.publish()
        assert outcome is not None and outcome.witnessed, outcome
    holding = {w.name for w in consortium.witnesses if w.state(ORIGIN).size == 14}
    assert consortium.policy.satisfied(holding)


def test_witness_that_missed_rounds_catches_up_with_a_consistency_proof(
    consortium: Consortium,
) -> None:
    consortium.record(3)
    consortium.publish(only=["regulator", *HOSPITALS[:4]])
    consortium.record(5)
    outcome = consortium.publish()
    assert outcome is not None and "hospital-e" in outcome.cosigned_by
    assert consortium.witnesses[-1].state(ORIGIN).size == 8


def _request(consortium: Consortium, old: int, proof: list[bytes], note: str) -> bytes:
    return format_add_checkpoint(old, proof, note)


def test_witness_refuses_a_fork_and_keeps_the_evidence(consortium: Consortium) -> None:
    consortium.record(4)
    consortium.publish()
    witness = consortium.witnesses[0]
    forged = sign_checkpoint(Checkpoint(ORIGIN, 4, bytes(32)), consortium.signer)
    with pytest.raises(WitnessRefusal) as refused:
        witness.add_checkpoint(_request(consortium, 4, [], forged))
    assert refused.value.status == 409
    assert "fork" in refused.value.reason
    evidence = witness.evidence(ORIGIN)
    assert len(evidence) == 1 and evidence[0].note == forged
    assert witness.state(ORIGIN).root == merkle.root(consortium.store.entries(0, 4))


def test_witness_refuses_a_rewritten_history_with_422(consortium: Consortium) -> None:
    consortium.record(4)
    consortium.publish()
    entries = consortium.store.entries(0, 4)
    rewritten = [b"rewritten", *entries[1:], b"new"]
    note = sign_checkpoint(Checkpoint(ORIGIN, 5, merkle.root(rewritten)), consortium.signer)
    proof = merkle.consistency_proof(4, rewritten)
    with pytest.raises(WitnessRefusal) as refused:
        consortium.witnesses[1].add_checkpoint(_request(consortium, 4, proof, note))
    assert refused.value.status == 422
    assert consortium.witnesses[1].evidence(ORIGIN)


def test_witness_refuses_a_stale_old_size_with_its_own_size(consortium: Consortium) -> None:
    consortium.record(4)
    consortium.publish()
    note = consortium.store.checkpoint().note
    with pytest.raises(WitnessRefusal) as refused:
        consortium.witnesses[0].add_checkpoint(_request(consortium, 2, [], note))
    assert (refused.value.status, refused.value.size) == (409, 4)


def test_witness_refuses_a_checkpoint_signed_by_another_key(consortium: Consortium) -> None:
    consortium.record(1)
    impostor = Signer.generate(ORIGIN)
    note = sign_checkpoint(
        Checkpoint(ORIGIN, 1, merkle.root(consortium.store.entries(0, 1))), impostor
    )
    with pytest.raises(WitnessRefusal) as refused:
        consortium.witnesses[0].add_checkpoint(_request(consortium, 0, [], note))
    assert refused.value.status == 403


def test_witness_refuses_an_unknown_log(consortium: Consortium) -> None:
    other = Signer.generate("other.example/log")
    note = sign_checkpoint(Checkpoint("other.example/log", 1, bytes(32)), other)
    with pytest.raises(WitnessRefusal) as refused:
        consortium.witnesses[0].add_checkpoint(_request(consortium, 0, [], note))
    assert refused.value.status == 404


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "blank line"),
        (b"old 01\n\nx", "old <size>"),
        (b"old -1\n\nx", "old <size>"),
        (b"new 1\n\nx", "old <size>"),
        (b"old 1\n!!!!\n\nx", "base64"),
        (b"old 1\n" + b"AAAA\n" * 64 + b"\nx", "63"),
        (b"old 0\n\n\xff\xfe", "UTF-8"),
        (b"old 0\n\nnot a note\n", "not a signed checkpoint"),
    ],
)
def test_witness_answers_malformed_requests_with_400(
    consortium: Consortium, body: bytes, reason: str
) -> None:
    with pytest.raises(WitnessRefusal) as refused:
        consortium.witnesses[0].add_checkpoint(body)
    assert refused.value.status == 400
    assert reason in refused.value.reason


def test_witness_refuses_a_wrong_consistency_proof(consortium: Consortium) -> None:
    consortium.record(3)
    consortium.publish()
    consortium.record(3)
    note = consortium.store.checkpoint().note
    proof = consortium.store.consistency_proof(3, 6)
    proof[0] = bytes(32)
    with pytest.raises(WitnessRefusal) as refused:
        consortium.witnesses[0].add_checkpoint(_request(consortium, 3, proof, note))
    assert refused.value.status == 422


def test_trust_refuses_a_checkpoint_with_forged_cosignatures(consortium: Consortium) -> None:
    consortium.record(2)
    consortium.publish()
    cosigned = consortium.store.latest_cosigned().cosigned
    text, _, signatures = cosigned.partition("\n\n")
    lines = signatures.splitlines(keepends=True)
    forged = text + "\n\n" + lines[0] + "".join(
        line[:-10] + ("A" * 8 if line[-10:-2] != "A" * 8 else "B" * 8) + line[-2:]
        for line in lines[1:]
    )
    with pytest.raises(TrustError, match="quorum"):
        consortium.trust.check_witnessed(forged)


def test_witness_http_answers_oversized_requests_with_413_and_stale_size_with_409(
    consortium: Consortium,
) -> None:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from medspace.ledger.witnessapi import witness_router

    app = FastAPI()
    app.include_router(witness_router(consortium.witnesses[0]))
    client = TestClient(app)
    assert client.post("/add-checkpoint", content=b"x" * (2 << 20)).status_code == 413
    consortium.record(3)
    consortium.publish()
    stale = client.post("/add-checkpoint",
                        content=_request(consortium, 1, [], consortium.store.checkpoint().note))
    assert stale.status_code == 409
    assert stale.headers["content-type"].startswith("text/x.tlog.size")
    assert stale.text == "3\n"
    assert client.get("/witness/v1/checkpoint", params={"origin": "nope"}).status_code == 404
