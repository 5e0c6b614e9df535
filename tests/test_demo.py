"""The demo end to end, as separate processes on loopback; and what it leaves on disk."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

HOSPITALS = ["hospital-a", "hospital-b", "hospital-c", "hospital-d", "hospital-e"]


def _demo(workdir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "medspace", "demo", "--workdir", str(workdir),
         "--patients", "80"],
        capture_output=True, text=True, timeout=600,
    )


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    workdir = tmp_path_factory.mktemp("demo")
    first = _demo(workdir)
    assert first.returncode == 0, first.stdout + first.stderr
    return workdir, first.stdout


def test_demo_answers_the_study_counts_out_a_revoked_patient_and_verifies_the_log(
    demo_run: tuple[Path, str],
) -> None:
    workdir, output = demo_run
    assert "after it was submitted" in output
    flat = " ".join(output.split())
    assert "revoked research consent at hospital-a's desk" in flat
    assert "the data space's log holds the revocation as entry" in flat
    assert "naming the patient only as psn:" in flat
    assert "the log verifies" in output
    assert "is caught" in output
    assert "refused by the regulator's witness" in output
    report = (workdir / "report.html").read_text()
    assert "the log verifies" in report and "hospital-e" in report
    for hospital in HOSPITALS:
        assert (workdir / "hospitals" / hospital / "export" / "manifest.json").exists()
        assert (workdir / "hospitals" / hospital / "node" / "journal.db").exists()
    assert (workdir / "hub" / "ledger.db").exists()
    assert (workdir / "witness" / "witness.db").exists()


def _identities(export: Path) -> tuple[set[bytes], set[bytes]]:
    """(resident ID and phone numbers, names) in one hospital's export files."""
    numbers: set[bytes] = set()
    names: set[bytes] = set()
    for path in export.iterdir():
        text = path.read_text(encoding="utf-8", errors="replace")
        numbers.update(m.encode() for m in re.findall(r"(?<!\d)\d{17}[\dXx](?!\d)", text))
        numbers.update(m.encode() for m in re.findall(r"(?<!\d)1[3-9]\d{9}(?!\d)", text))
        if path.name == "Patient.ndjson":
            for line in text.splitlines():
                names.update(n["text"].encode() for n in json.loads(line).get("name", [])
                             if n.get("text"))
        if path.suffix == ".hl7":
            for segment in re.split(r"[\r\n]+", text):
                fields = segment.split("|")
                if fields[0] == "PID" and len(fields) > 5 and fields[5]:
                    names.add("".join(fields[5].split("^")[:2]).encode())
    return numbers, {name for name in names if len(name) >= 6}


def test_no_identity_leaves_its_hospitals_folder(demo_run: tuple[Path, str]) -> None:
    """No ID number or phone outside its hospital's folder; no name outside any hospital's.

    Another hospital's folder may hold the same person (patients are treated at several
    hospitals), and a short name is often part of a longer one, so names are looked for only
    where no hospital's data belongs: the hub's, the regulator's and the researcher's folders.
    """
    workdir, _ = demo_run
    folders = {h: workdir / "hospitals" / h for h in HOSPITALS}
    found = {h: _identities(folder / "export") for h, folder in folders.items()}
    for hospital, own in folders.items():
        numbers, names = found[hospital]
        assert numbers and names, f"no identities found in {hospital}'s export"
        for path in workdir.rglob("*"):
            if not path.is_file() or own in path.parents:
                continue
            holder = next((h for h, f in folders.items() if f in path.parents), None)
            wanted = numbers - found[holder][0] if holder else numbers | names
            data = path.read_bytes()
            leaked = [value for value in wanted if value in data]
            assert not leaked, f"{path} holds identities of {hospital}: {leaked[:3]}"


def test_demo_reruns_on_the_same_directory(demo_run: tuple[Path, str]) -> None:
    workdir, _ = demo_run
    second = _demo(workdir)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "the log verifies" in second.stdout
