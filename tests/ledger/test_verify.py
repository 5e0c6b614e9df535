"""The verifier on exported logs: a clean log passes; every kind of tampering names its index."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from medspace.ledger import merkle
from medspace.ledger.checkpoint import Checkpoint, sign_checkpoint
from medspace.ledger.events import new_event
from medspace.ledger.export import BundleSource, export_log
from medspace.ledger.note import Signer
from medspace.ledger.receipt import ReceiptError, build_receipt, verify_receipt
from medspace.ledger.verify import SourceError, VerifierState, verify_log
from tests.consortium import ORIGIN, Consortium


@pytest.fixture
def exported(consortium: Consortium, tmp_path: Path) -> Path:
    consortium.record(6)
    consortium.publish()
    consortium.record(6, action="study.approved")
    consortium.publish()
    path = tmp_path / "log.jsonl"
    assert export_log(consortium.store, path) == 12
    return path


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _write(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def _entry_positions(records: list[dict]) -> list[int]:
    return [i for i, r in enumerate(records) if r["type"] == "entry"]


def _verify(path: Path, consortium: Consortium, trusted: tuple[str, ...] = ()):
    return verify_log(BundleSource(path), consortium.trust, trusted)


def test_clean_export_verifies(exported: Path, consortium: Consortium) -> None:
    report = _verify(exported, consortium)
    assert report.ok, report.failure
    assert report.entries == 12
    assert report.witnessed_size == 12
    assert report.actions == {"study.submitted": 6, "study.approved": 6}


def test_changed_byte_inside_a_valid_entry_names_its_index(
    exported: Path, consortium: Consortium
) -> None:
    records = _lines(exported)
    position = _entry_positions(records)[7]
    data = base64.b64decode(records[position]["data"])
    event = json.loads(data)
    event["subject"] = "study:s9"
    changed = json.dumps(event, separators=(",", ":"), sort_keys=True).encode()
    assert changed != data
    records[position]["data"] = base64.b64encode(changed).decode()
    report = _verify(_write(exported, records), consortium)
    assert report.failure is not None and report.failure.index == 7, report.failure


def test_changed_byte_that_breaks_the_json_names_its_index(
    exported: Path, consortium: Consortium
) -> None:
    records = _lines(exported)
    position = _entry_positions(records)[3]
    data = bytearray(base64.b64decode(records[position]["data"]))
    data[0] = ord("[")
    records[position]["data"] = base64.b64encode(bytes(data)).decode()
    report = _verify(_write(exported, records), consortium)
    assert report.failure is not None and report.failure.index == 3
    assert "entry 3" in report.failure.reason


def test_deleted_entry_names_its_index(exported: Path, consortium: Consortium) -> None:
    records = _lines(exported)
    del records[_entry_positions(records)[4]]
    report = _verify(_write(exported, records), consortium)
    assert report.failure is not None and report.failure.index == 4


def test_inserted_entry_names_its_index(exported: Path, consortium: Consortium) -> None:
    records = _lines(exported)
    extra = new_event(actor="mallory", org="nowhere", role="researcher",
                      action="study.approved", subject="study:s1", decision="permit")
    records.insert(_entry_positions(records)[9],
                   {"type": "entry", "data": base64.b64encode(extra.to_bytes()).decode()})
    report = _verify(_write(exported, records), consortium)
    assert report.failure is not None and report.failure.index == 9


def test_reordered_entries_name_the_first_moved_index(
    exported: Path, consortium: Consortium
) -> None:
    records = _lines(exported)
    a, b = _entry_positions(records)[2:4]
    records[a], records[b] = records[b], records[a]
    report = _verify(_write(exported, records), consortium)
    assert report.failure is not None and report.failure.index == 2


def test_truncated_log_names_the_first_missing_index(
    exported: Path, consortium: Consortium
) -> None:
    records = _lines(exported)
    records = records[: _entry_positions(records)[8]]
    report = _verify(_write(exported, records), consortium)
    assert report.failure is not None and report.failure.index == 8
    assert "missing" in report.failure.reason


def test_log_resigned_with_another_key_fails_from_index_0(
    exported: Path, consortium: Consortium
) -> None:
    impostor = Signer.generate(ORIGIN)
    records = _lines(exported)
    entries = [base64.b64decode(r["data"]) for r in records if r["type"] == "entry"]
    for record in records:
        if record["type"] == "checkpoint":
            size = record["size"]
            record["note"] = sign_checkpoint(
                Checkpoint(ORIGIN, size, merkle.root(entries[:size])), impostor
            )
            record["cosigned"] = None
    report = _verify(_write(exported, records), consortium)
    assert report.failure is not None and report.failure.index == 0
    assert "signature" in report.failure.reason


def test_fork_is_reported_with_both_checkpoints(exported: Path, consortium: Consortium) -> None:
    other_history = [b"other"] * 6
    forked = sign_checkpoint(Checkpoint(ORIGIN, 6, merkle.root(other_history)), consortium.signer)
    report = _verify(exported, consortium, trusted=(forked,))
    assert not report.ok
    assert len(report.forks) == 1
    fork = report.forks[0]
    assert fork.size == 6 and forked in (fork.note, fork.other)


def test_entry_holding_personal_data_names_its_index(
    consortium: Consortium, tmp_path: Path
) -> None:
    consortium.record(2)
    phone = json.dumps({"note": "call 13812345678"}).encode()
    consortium.store.append([phone], consortium.log._sign)
    consortium.record(1)
    path = tmp_path / "log.jsonl"
    export_log(consortium.store, path)
    report = _verify(path, consortium)
    assert report.failure is not None and report.failure.index == 2


def test_witness_state_checks_the_log_was_not_rolled_back(
    exported: Path, consortium: Consortium
) -> None:
    held = consortium.witnesses[0].state(ORIGIN)
    assert held is not None and held.size == 12
    assert _verify(exported, consortium, trusted=(held.note,)).ok
    records = _lines(exported)
    records = [r for r in records if r["type"] != "checkpoint" or r["size"] <= 6]
    records = records[: _entry_positions(records)[6]]
    report = _verify(_write(exported, records), consortium, trusted=(held.note,))
    assert report.failure is not None and report.failure.index == 6


def test_incremental_verification_resumes_from_saved_state(
    consortium: Consortium, tmp_path: Path
) -> None:
    consortium.record(5)
    first = verify_log(consortium.store, consortium.trust)
    assert first.ok and first.state is not None
    saved = VerifierState.from_json(first.state.to_json())
    consortium.record(4)
    second = verify_log(consortium.store, consortium.trust, state=saved)
    assert second.ok, second.failure
    assert second.entries == 4
    assert second.state is not None and second.state.root == consortium.store.head()[1]


def test_saved_state_of_another_history_fails(consortium: Consortium) -> None:
    consortium.record(5)
    stale = VerifierState(ORIGIN, 1, (merkle.leaf_hash(b"not the first entry"),))
    report = verify_log(consortium.store, consortium.trust, state=stale)
    assert not report.ok


def test_malformed_export_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text("not json\n")
    with pytest.raises(SourceError, match="not JSON"):
        BundleSource(path)


def test_receipt_verifies_offline_and_a_tampered_one_does_not(
    consortium: Consortium,
) -> None:
    consortium.record(7)
    consortium.publish()
    receipt = build_receipt(consortium.store, 3)
    entry = verify_receipt(json.dumps(receipt), consortium.trust)
    assert entry == consortium.store.entries(3, 4)[0]
    tampered = dict(receipt, index=4)
    with pytest.raises(ReceiptError, match="not in the witnessed log"):
        verify_receipt(tampered, consortium.trust)
    unwitnessed = dict(receipt, checkpoint=consortium.store.checkpoint().note)
    with pytest.raises(ReceiptError, match="quorum"):
        verify_receipt(unwitnessed, consortium.trust)
    with pytest.raises(ReceiptError, match="not JSON"):
        verify_receipt(b"{", consortium.trust)
