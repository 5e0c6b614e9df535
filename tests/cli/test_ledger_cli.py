"""The ledger commands, as a regulator or hospital IT person would run them."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from medspace.cli import app
from medspace.ledger.export import export_log
from medspace.ledger.receipt import build_receipt
from tests.consortium import Consortium

runner = CliRunner()


@pytest.fixture
def policy_file(consortium: Consortium, tmp_path: Path) -> Path:
    path = tmp_path / "policy.txt"
    path.write_text(consortium.policy.format())
    return path


def test_keygen_writes_a_private_file_and_prints_the_vkey(tmp_path: Path) -> None:
    key = tmp_path / "keys" / "regulator.key"
    result = runner.invoke(app, ["ledger", "keygen", "regulator", "--kind", "witness",
                                 "--out", str(key)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("regulator+")
    assert os.stat(key).st_mode & 0o777 == 0o600
    again = runner.invoke(app, ["ledger", "keygen", "regulator", "--out", str(key)])
    assert again.exit_code == 2
    assert "never overwritten" in again.output


def test_policy_command_writes_the_consortium_default(tmp_path: Path) -> None:
    vkeys = {}
    for name, kind in [("hub.example/log", "log"), ("regulator", "witness"),
                       ("h1", "witness"), ("h2", "witness"), ("h3", "witness")]:
        out = runner.invoke(app, ["ledger", "keygen", name, "--kind", kind,
                                  "--out", str(tmp_path / f"{name.replace('/', '_')}.key")])
        vkeys[name] = out.output.strip()
    policy = tmp_path / "policy.txt"
    result = runner.invoke(app, [
        "ledger", "policy", "--log", vkeys["hub.example/log"], "--regulator", vkeys["regulator"],
        "--hospital", vkeys["h1"], "--hospital", vkeys["h2"], "--hospital", vkeys["h3"],
        "--out", str(policy)])
    assert result.exit_code == 0, result.output
    text = policy.read_text()
    assert "quorum consortium" in text and "group hospitals 2/3 h1 h2 h3" in text


def test_verify_passes_a_clean_log_database_and_saves_state(
    consortium: Consortium, policy_file: Path, tmp_path: Path
) -> None:
    consortium.record(5)
    consortium.publish()
    state = tmp_path / "state.json"
    database = str(consortium.store.engine.url)
    result = runner.invoke(app, ["ledger", "verify", database, "--policy", str(policy_file),
                                 "--state", str(state)])
    assert result.exit_code == 0, result.output
    assert "OK" in result.output and json.loads(state.read_text())["size"] == 5


def test_verify_exits_1_naming_the_first_bad_index(
    consortium: Consortium, policy_file: Path, tmp_path: Path
) -> None:
    consortium.record(6)
    consortium.publish()
    export = tmp_path / "log.jsonl"
    export_log(consortium.store, export)
    lines = export.read_text().splitlines()
    entry_lines = [i for i, line in enumerate(lines) if '"type":"entry"' in line]
    del lines[entry_lines[2]]
    export.write_text("\n".join(lines) + "\n")
    result = runner.invoke(app, ["ledger", "verify", str(export), "--policy", str(policy_file)])
    assert result.exit_code == 1
    assert "FAILED at index 2" in result.output


def test_verify_with_a_missing_policy_exits_2_with_a_clear_message(tmp_path: Path) -> None:
    result = runner.invoke(app, ["ledger", "verify", str(tmp_path / "nothing.jsonl"),
                                 "--policy", str(tmp_path / "policy.txt")])
    assert result.exit_code == 2
    assert "cannot read" in result.output


def test_verify_receipt_prints_the_event_or_fails(
    consortium: Consortium, policy_file: Path, tmp_path: Path
) -> None:
    consortium.record(4)
    consortium.publish()
    receipt = build_receipt(consortium.store, 2)
    path = tmp_path / "receipt.json"
    path.write_text(json.dumps(receipt))
    result = runner.invoke(app, ["ledger", "verify-receipt", str(path),
                                 "--policy", str(policy_file)])
    assert result.exit_code == 0, result.output
    assert "study.submitted" in result.output and "OK" in result.output
    receipt["entry"] = base64.b64encode(b'{"forged":true}').decode()
    path.write_text(json.dumps(receipt))
    result = runner.invoke(app, ["ledger", "verify-receipt", str(path),
                                 "--policy", str(policy_file)])
    assert result.exit_code == 1 and "FAILED" in result.output


def test_verify_prints_a_fork_with_both_checkpoints(
    consortium: Consortium, policy_file: Path, tmp_path: Path
) -> None:
    from medspace.ledger.checkpoint import Checkpoint, sign_checkpoint

    consortium.record(3)
    forked = tmp_path / "forked.note"
    forked.write_text(sign_checkpoint(Checkpoint(consortium.store.origin, 3, bytes(32)),
                                      consortium.signer))
    result = runner.invoke(app, ["ledger", "verify", str(consortium.store.engine.url),
                                 "--policy", str(policy_file), "--trusted", str(forked)])
    assert result.exit_code == 1
    assert "FORK at size 3" in result.output
    assert forked.read_text() in result.output
