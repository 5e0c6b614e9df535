"""``medspace demo``: the audit ledger of a five-hospital data space, on this machine.

It creates the keys and the trust policy, starts the regulator's and five hospitals' witnesses
as separate processes on loopback, runs the operator's log and its publisher, records a study's
audit trail (enrolment, approvals, tasks, releases, a consent revocation, an emergency look-up),
gets it cosigned by a quorum, then lets the regulator verify the whole log from its own witness
state, checks a receipt offline, shows that a tampered copy and a forked checkpoint are caught,
and shuts everything down. Everything it keeps is under the work directory, so a re-run
continues the same log.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
from fastapi import FastAPI
from rich.console import Console
from rich.table import Table

from medspace.httpserve import BackgroundServer, free_port
from medspace.keyfiles import private_secret
from medspace.ledger.checkpoint import Checkpoint, sign_checkpoint
from medspace.ledger.client import HttpLogSource
from medspace.ledger.cosignature import Cosigner, CosignerVerifier
from medspace.ledger.events import AuditEvent, new_event, sha256_digest
from medspace.ledger.export import BundleSource, export_log
from medspace.ledger.keys import load_key, write_key
from medspace.ledger.log import TransparencyLog
from medspace.ledger.logapi import log_router
from medspace.ledger.note import Signer
from medspace.ledger.publisher import Publisher, WitnessEndpoint, http_sender
from medspace.ledger.quorum import Log, Policy, consortium_policy
from medspace.ledger.receipt import build_receipt, verify_receipt
from medspace.ledger.store import LogStore
from medspace.ledger.trust import Trust
from medspace.ledger.verify import verify_log
from medspace.ledger.witness import format_add_checkpoint, held_checkpoint
from medspace.sqldb import create_engine, sqlite_url

ORIGIN = "hub.medspace.demo/audit"
HOSPITALS = ["hospital-a", "hospital-b", "hospital-c", "hospital-d", "hospital-e"]
REGULATOR = "regulator"


@dataclass
class Keys:
    """The demo's keys: the operator's log key and one key per witness."""

    log: Signer
    witnesses: dict[str, Cosigner]
    paths: dict[str, Path]


def _keys(workdir: Path) -> Keys:
    key_dir = workdir / "keys"
    log_path = key_dir / "log.key"
    if not log_path.exists():
        write_key(log_path, Signer.generate(ORIGIN))
    witnesses, paths = {}, {}
    for name in [REGULATOR, *HOSPITALS]:
        path = key_dir / f"{name}.key"
        if not path.exists():
            write_key(path, Cosigner.generate(name))
        witnesses[name] = load_key(path, Cosigner)
        paths[name] = path
    return Keys(load_key(log_path, Signer), witnesses, paths)


def _witness_db(workdir: Path, name: str) -> Path:
    if name == REGULATOR:
        return workdir / "witness" / "witness.db"
    return workdir / "hospitals" / name / "node" / "witness.db"


@contextlib.contextmanager
def _witness_processes(workdir: Path, keys: Keys) -> Iterator[dict[str, str]]:
    """Start every witness as its own process; yield their URLs; stop them on exit."""
    processes, urls = [], {}
    try:
        for name in [REGULATOR, *HOSPITALS]:
            port = free_port()
            db = _witness_db(workdir, name)
            db.parent.mkdir(parents=True, exist_ok=True)
            log_file = (db.parent / "witness.log").open("ab")
            processes.append(subprocess.Popen(
                [sys.executable, "-m", "medspace", "witness", "--db", str(db),
                 "--key", str(keys.paths[name]), "--log", keys.log.vkey, "--port", str(port)],
                stdout=log_file, stderr=log_file,
            ))
            urls[name] = f"http://127.0.0.1:{port}"
        for name, url in urls.items():
            _wait_until_up(url, name)
        yield urls
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


def _wait_until_up(url: str, name: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url + "/witness/v1/key", timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"the witness {name} did not start at {url}; see its witness.log")


class _PublisherThread:
    """Runs the publisher's loop on its own event loop, beside the synchronous demo."""

    def __init__(
        self, store: LogStore, endpoints: list[tuple[str, CosignerVerifier]], policy: Policy
    ) -> None:
        self._args = (store, endpoints, policy)
        self._loop = asyncio.new_event_loop()
        self._stop = asyncio.Event()
        self._thread = threading.Thread(target=self._run, name="publisher", daemon=True)

    def _run(self) -> None:
        async def main() -> None:
            store, endpoints, policy = self._args
            async with httpx.AsyncClient(timeout=10) as client:
                witnesses = [WitnessEndpoint(key, http_sender(client, url))
                             for url, key in endpoints]
                await Publisher(store, witnesses, policy).run(self._stop, 0.05)

        self._loop.run_until_complete(main())

    def __enter__(self) -> _PublisherThread:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=15)


def _study_trail(pseudonym_key: bytes) -> list[AuditEvent]:
    """The audit events of one study's life, and of a consent change and an emergency."""

    def patient(number: str) -> str:
        return "psn:" + hmac.new(pseudonym_key, number.encode(), hashlib.sha256).hexdigest()

    study = f"study:rare-disease-{int(time.time())}"
    events = [new_event(actor="operator-1", org="health-commission", role="operator",
                        action="participant.enrolled", subject=f"participant:{h}",
                        decision="info") for h in HOSPITALS]
    events += [new_event(actor=f"{h}-dpo", org=h, role="hospital", action="dataset.published",
                         subject=f"dataset:{h}-oncology", decision="info") for h in HOSPITALS]
    events.append(new_event(actor="researcher-17", org="university-x", role="researcher",
                            action="study.submitted", subject=study, purpose="research",
                            decision="info", payload_digest=sha256_digest(study.encode())))
    for h in HOSPITALS:
        events.append(new_event(actor=f"{h}-committee", org=h, role="hospital",
                                action="study.approved", subject=study, purpose="research",
                                decision="permit", reason="ethics approval on file"))
        events.append(new_event(actor="hub", org="health-commission", role="hub",
                                action="task.dispatched", subject=f"task:{h}-count",
                                purpose="research", decision="info"))
        events.append(new_event(actor=f"{h}-node", org=h, role="hospital",
                                action="result.released", subject=f"task:{h}-count",
                                purpose="research", decision="permit",
                                payload_digest=sha256_digest(os.urandom(32))))
    events.append(new_event(actor="patient-app", org="hospital-c", role="patient",
                            action="consent.revoked", subject="consent:research",
                            purpose="research", decision="info",
                            patient=patient("110101199003071234")))
    events.append(new_event(actor="dr-er-42", org="hospital-d", role="clinician",
                            action="emergency.requested", subject="emergency:er-0001",
                            purpose="emergency", decision="permit",
                            reason="unconscious patient, break-the-glass",
                            patient=patient("320102198511125678")))
    for h in HOSPITALS[:3]:
        events.append(new_event(actor=f"{h}-node", org=h, role="hospital",
                                action="emergency.released", subject="emergency:er-0001",
                                purpose="emergency", decision="permit",
                                payload_digest=sha256_digest(os.urandom(32)),
                                patient=patient("320102198511125678")))
    return events


def _wait_witnessed(store: LogStore, size: int, timeout: float = 30.0) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        cosigned = store.latest_cosigned(at_least=size)
        if cosigned is not None:
            return time.monotonic() - started
        time.sleep(0.02)
    raise RuntimeError(f"no quorum of witnesses cosigned the log at size {size} in {timeout} s")


def _tampered_copy(export: Path, target: Path) -> int:
    """Copy the export, changing the subject of the last study approval; return its index."""
    lines = export.read_text(encoding="utf-8").splitlines(keepends=True)
    entry_index, chosen = -1, None
    for number, line in enumerate(lines):
        record = json.loads(line)
        if record["type"] != "entry":
            continue
        entry_index += 1
        event = json.loads(base64.b64decode(record["data"]))
        if event["action"] == "study.approved":
            chosen = (number, entry_index, record, event)
    if chosen is None:
        raise RuntimeError("the export holds no study approval to tamper with")
    number, index, record, event = chosen
    event["decision"] = "deny" if event["decision"] == "permit" else "permit"
    record["data"] = base64.b64encode(
        json.dumps(event, separators=(",", ":"), sort_keys=True).encode()
    ).decode()
    lines[number] = json.dumps(record, separators=(",", ":")) + "\n"
    target.write_text("".join(lines), encoding="utf-8")
    return index


def run_demo(workdir: Path, serve: bool = False, console: Console | None = None) -> int:
    """Run the demo in ``workdir``; return the process exit code."""
    console = console or Console()
    workdir.mkdir(parents=True, exist_ok=True)
    console.rule("[bold]medspace demo: the audit ledger of a five-hospital data space")
    keys = _keys(workdir)
    policy = consortium_policy(keys.witnesses[REGULATOR].vkey,
                               [keys.witnesses[h].vkey for h in HOSPITALS])
    policy = Policy(policy.witnesses, policy.groups, policy.quorum, (Log(keys.log.vkey),))
    policy_path = workdir / "policy.txt"
    policy_path.write_text(policy.format(), encoding="utf-8")
    trust = Trust.from_policy(policy)
    hospitals_group = next(g for g in policy.groups if g.name == "hospitals")
    console.print(f"✓ keys and trust policy in {workdir}: a checkpoint counts when the "
                  f"regulator and {hospitals_group.required} of {len(HOSPITALS)} hospitals "
                  "cosign it")

    store = LogStore(create_engine(sqlite_url(workdir / "hub" / "ledger.db")), ORIGIN)
    log = TransparencyLog(store, keys.log)
    app = FastAPI(title="medspace audit log")
    app.include_router(log_router(store))
    server = BackgroundServer(app).start()
    try:
        with _witness_processes(workdir, keys) as urls:
            console.print(f"✓ {len(urls)} witnesses running as separate processes; "
                          f"audit log at {server.url}/log/v1")
            endpoints = [(url, keys.witnesses[n].verifier()) for n, url in urls.items()]
            with _PublisherThread(store, endpoints, policy):
                trail = _study_trail(private_secret(workdir / "keys" / "pseudonym.key"))
                indexes = [log.record(event) for event in trail]
                waited = _wait_witnessed(store, indexes[-1] + 1)
                console.print(f"✓ {len(trail)} audit events recorded (log size "
                              f"{indexes[-1] + 1}); quorum-cosigned {waited:.2f} s after the "
                              "last append")
                _show_checks(console, workdir, store, trust, server.url, urls, keys, trail,
                             indexes)
                if serve:
                    console.print(f"serving: log {server.url}/log/v1/checkpoint; witnesses "
                                  + ", ".join(urls.values()) + " — press Ctrl-C to stop")
                    with contextlib.suppress(KeyboardInterrupt):
                        threading.Event().wait()
    finally:
        log.close()
        server.stop()
    console.rule("[bold green]demo finished")
    return 0


def _show_checks(
    console: Console,
    workdir: Path,
    store: LogStore,
    trust: Trust,
    log_url: str,
    urls: dict[str, str],
    keys: Keys,
    trail: list[AuditEvent],
    indexes: list[int],
) -> None:
    released = indexes[[e.action for e in trail].index("result.released")]
    receipt = build_receipt(store, released)
    receipt_path = workdir / "hub" / f"receipt-{released}.json"
    receipt_path.write_text(json.dumps(receipt, indent=1), encoding="utf-8")
    verify_receipt(receipt_path.read_bytes(), trust)
    console.print(f"✓ receipt of the first result release (entry {released}) checks offline: "
                  f"{receipt_path}")

    held = held_checkpoint(create_engine(sqlite_url(_witness_db(workdir, REGULATOR))), ORIGIN)
    assert held is not None
    report = verify_log(HttpLogSource(log_url), trust, [held.note])
    table = Table(title="The regulator's verification of the whole log", title_justify="left")
    table.add_column("check")
    table.add_column("result", justify="right")
    table.add_row("entries replayed", f"{report.entries:,}")
    table.add_row("checkpoints checked (log signature)", f"{report.checkpoints:,}")
    table.add_row("witnessed checkpoints (quorum)", f"{report.witnessed:,}")
    table.add_row("regulator's witness holds size", f"{held.size:,}")
    for action, count in sorted(report.actions.items()):
        table.add_row(f"events: {action}", f"{count:,}")
    table.add_row("verdict", "[green]log verifies[/]" if report.ok else
                  f"[red]FAILED at {report.failure}[/]")
    console.print(table)
    if not report.ok:
        raise RuntimeError(f"the log did not verify: {report.failure}")

    export = workdir / "hub" / "ledger-export.jsonl"
    export_log(store, export)
    tampered = workdir / "hub" / "ledger-export-tampered.jsonl"
    changed = _tampered_copy(export, tampered)
    bad = verify_log(BundleSource(tampered), trust, [held.note])
    if bad.ok or bad.failure is None:
        raise RuntimeError("a tampered copy of the log verified; the verifier is broken")
    console.print(f"✓ a copy with entry {changed}'s decision flipped is caught: "
                  f"[red]{bad.failure.reason}[/]")

    size, root = store.head()
    forged = sign_checkpoint(Checkpoint(ORIGIN, size, hashlib.sha256(root).digest()), keys.log)
    answer = httpx.post(urls[REGULATOR] + "/add-checkpoint",
                        content=format_add_checkpoint(size, [], forged), timeout=10)
    if answer.status_code == 200:
        raise RuntimeError("the regulator's witness cosigned a forked checkpoint")
    console.print(f"✓ a forked checkpoint of size {size} is refused by the regulator's witness "
                  f"(HTTP {answer.status_code}) and kept as evidence")
