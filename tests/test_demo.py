"""The demo runs the whole ledger end to end, as separate processes on loopback, and re-runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def _demo(workdir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "medspace", "demo", "--workdir", str(workdir)],
        capture_output=True, text=True, timeout=240,
    )


def test_demo_verifies_the_log_catches_tampering_and_reruns(tmp_path: Path) -> None:
    first = _demo(tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "log verifies" in first.stdout
    assert "is caught" in first.stdout
    assert "refused by the regulator's witness" in first.stdout
    assert (tmp_path / "witness" / "witness.db").exists()
    assert (tmp_path / "hospitals" / "hospital-a" / "node" / "witness.db").exists()
    assert (tmp_path / "hub" / "ledger-export.jsonl").exists()
    second = _demo(tmp_path)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "log size 62" in second.stdout
