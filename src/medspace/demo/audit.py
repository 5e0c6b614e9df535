"""The regulator's part of the demo: verify the whole log, and see that tampering is caught.

The regulator trusts only the policy file and its own witness's state. It replays the log over
the hub's public API, checks a receipt offline, and is shown that a copy of the log with one
decision flipped fails verification and that a forked checkpoint is refused by its witness.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import httpx

from medspace.demo.setup import Layout
from medspace.hub.space import Space
from medspace.ledger.checkpoint import Checkpoint, sign_checkpoint
from medspace.ledger.client import HttpLogSource
from medspace.ledger.export import BundleSource, export_log
from medspace.ledger.receipt import verify_receipt
from medspace.ledger.trust import Trust
from medspace.ledger.verify import Report, verify_log
from medspace.ledger.witness import format_add_checkpoint, held_checkpoint
from medspace.pki.enrollment import participant_tls
from medspace.pki.tls import client_context
from medspace.sqldb import create_engine, sqlite_url


@dataclass(frozen=True)
class AuditOutcome:
    """What the regulator found."""

    report: Report
    witness_size: int
    receipt_index: int
    receipt_path: Path
    tampered_index: int
    tampered_reason: str
    fork_status: int


def _tampered_copy(export: Path, target: Path) -> int:
    """Copy the export with the decision of its last approval flipped; return its index."""
    lines = export.read_text(encoding="utf-8").splitlines(keepends=True)
    index, chosen = -1, None
    for number, line in enumerate(lines):
        record = json.loads(line)
        if record["type"] != "entry":
            continue
        index += 1
        event = json.loads(base64.b64decode(record["data"]))
        if event["action"] == "study.approved":
            chosen = (number, index, record, event)
    if chosen is None:
        raise RuntimeError("the log holds no study approval to tamper with")
    number, index, record, event = chosen
    event["decision"] = "deny"
    record["data"] = base64.b64encode(
        json.dumps(event, separators=(",", ":"), sort_keys=True).encode()).decode()
    lines[number] = json.dumps(record, separators=(",", ":")) + "\n"
    target.write_text("".join(lines), encoding="utf-8")
    return index


def audit(layout: Layout, space: Space, witness_url: str) -> AuditOutcome:
    """Everything the regulator checks, from its own folder and the public log."""
    trust = Trust.load(layout.hub / "policy.txt")
    held = held_checkpoint(create_engine(sqlite_url(layout.regulator / "witness.db")),
                           space.origin)
    if held is None:
        raise RuntimeError("the regulator's witness has not cosigned anything")
    with httpx.Client(verify=client_context(participant_tls(layout.regulator)),
                      timeout=30) as client:
        report = verify_log(HttpLogSource(space.url, client), trust, [held.note])
        if not report.ok:
            raise RuntimeError(f"the audit log did not verify: {report.failure}")
        receipt_index = held.size - 1
        answer = client.get(space.url + "/log/v1/receipt", params={"index": receipt_index})
        answer.raise_for_status()
        receipt_path = layout.regulator / f"receipt-{receipt_index}.json"
        receipt_path.write_text(answer.text, encoding="utf-8")
        verify_receipt(receipt_path.read_bytes(), trust)

        export = layout.regulator / "audit-log-export.jsonl"
        export_log(HttpLogSource(space.url, client), export)
        tampered = layout.regulator / "audit-log-export-tampered.jsonl"
        tampered_index = _tampered_copy(export, tampered)
        bad = verify_log(BundleSource(tampered), trust, [held.note])
        if bad.ok or bad.failure is None:
            raise RuntimeError("a tampered copy of the log verified; the verifier is broken")

    forged = sign_checkpoint(Checkpoint(space.origin, held.size,
                                        hashlib.sha256(held.root).digest()), space.log_signer())
    with httpx.Client(verify=client_context(space.tls), timeout=30) as operator:
        answer = operator.post(witness_url + "/add-checkpoint",
                               content=format_add_checkpoint(held.size, [], forged))
    if answer.status_code == 200:
        raise RuntimeError("the regulator's witness cosigned a forked checkpoint")
    return AuditOutcome(report, held.size, receipt_index, receipt_path, tampered_index,
                        bad.failure.reason, answer.status_code)
