"""``medspace node listen-hl7`` as an interface engine meets it: a process on a TCP port."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

from typer.testing import CliRunner

from medspace.cli import app
from medspace.connector.inbox import Inbox
from medspace.connector.mllp import END, START
from medspace.demo.local import build
from medspace.httpserve import free_port
from medspace.synth.writer import write_exports

ADT = ("MSH|^~\\&|HIS|SH-HOSP-A|MEDSPACE|NODE|20261123101500||ADT^A04|CLI-1|P|2.5.1\r"
       "PID|1||0099^^^SH-HOSP-A^MR||LI^NA||19900101|F\r")


def _ack(port: int, payload: bytes, seconds: float = 30.0) -> str:
    deadline = time.monotonic() + seconds
    while True:
        try:
            conn = socket.create_connection(("127.0.0.1", port), timeout=10)
            break
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    with conn:
        conn.sendall(START + payload + END)
        data = b""
        while not data.endswith(END):
            chunk = conn.recv(65536)
            assert chunk, data
            data += chunk
    return data[len(START):-len(END)].decode()


def test_listen_hl7_acknowledges_and_keeps_what_it_receives(tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "medspace", "node", "listen-hl7", str(tmp_path),
         "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        ack = _ack(port, ADT.encode())
    finally:
        process.terminate()
        output = process.communicate(timeout=30)[0].decode()
    assert "MSA|AA|CLI-1" in ack
    assert f"listening for HL7 v2 over MLLP on 127.0.0.1:{port}" in output
    assert [m.control_id for m in Inbox.open(tmp_path).messages()] == ["CLI-1"]


def test_listen_hl7_on_a_missing_folder_says_what_to_do(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["node", "listen-hl7", str(tmp_path / "nowhere")])
    assert result.exit_code != 0
    assert "medspace node init" in result.output


def test_ingest_loads_exports_reports_them_and_resumes_without_loading_twice(
    tmp_path: Path,
) -> None:
    space = build(tmp_path / "space", 1, lambda _i, _store: None, serve=False)
    written = write_exports(tmp_path / "exports", 2, 30, seed=5)
    node = str(space.root / "hospital-a")
    exports = [str(h.directory) for h in written.hospitals]
    report = tmp_path / "report.json"
    page = tmp_path / "report.html"
    first = CliRunner().invoke(app, ["node", "ingest", node, *exports, "--report", str(report),
                                     "--report-html", str(page)])
    assert first.exit_code == 0, first.output
    html = page.read_text()
    assert all(h.directory.name in html or str(h.directory) in html for h in written.hospitals)
    assert "new patients" in html and "Quarantined, by reason" in html
    names = {json.loads(line)["name"][0]["text"]
             for line in (written.hospitals[0].directory / "Patient.ndjson").read_text()
             .splitlines()[:20]}
    assert not any(name in html for name in names)
    loaded = json.loads(report.read_text())
    assert [r["format"] for r in loaded] == [h.export_format for h in written.hospitals]
    assert all(r["patients_new"] > 0 for r in loaded)
    assert "new," in first.output
    again = CliRunner().invoke(app, ["node", "ingest", node, *exports, "--report", str(report)])
    assert again.exit_code == 0, again.output
    reloaded = json.loads(report.read_text())
    assert [r["already_loaded"] for r in reloaded] == [True, True]
    assert [r["records"] for r in reloaded] == [0, 0]


def test_ingest_before_joining_says_what_to_do(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["node", "ingest", str(tmp_path), str(tmp_path)])
    assert result.exit_code == 2
    assert "medspace node join" in result.output


def test_quarantine_list_and_show_explain_what_was_refused(tmp_path: Path) -> None:
    quarantine = tmp_path / "node" / "quarantine"
    quarantine.mkdir(parents=True)
    entries = [
        {"key": "1", "source": "Condition.ndjson", "position": 3, "kind": "Condition",
         "reason": "malformed JSON", "detail": "Expecting value", "record": "{not json"},
        {"key": "2", "source": "Condition.ndjson", "position": 9, "kind": "Condition",
         "reason": "unknown patient", "detail": "pat-9", "record": "{\"id\": \"c9\"}"},
    ]
    (quarantine / "export-quarantine.ndjson").write_text(
        "".join(json.dumps(e) + "\n" for e in entries))
    node = str(tmp_path / "node")
    listed = CliRunner().invoke(app, ["node", "quarantine", "list", node])
    assert listed.exit_code == 0, listed.output
    assert "malformed JSON" in listed.output and "unknown patient" in listed.output
    shown = CliRunner().invoke(app, ["node", "quarantine", "show", node,
                                     "--reason", "unknown patient"])
    assert shown.exit_code == 0, shown.output
    assert "#9" in shown.output and "pat-9" in shown.output and "{not json" not in shown.output


def test_quarantine_list_of_a_node_without_one_says_so(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["node", "quarantine", "list", str(tmp_path)])
    assert result.exit_code == 2 and "no quarantine" in result.output
