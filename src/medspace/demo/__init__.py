"""``medspace demo``: the whole data space on this machine, end to end.

Five hospitals of different size and case mix, a regulator and a researcher join a data space;
the hospitals' systems export synthetic patients, and each node loads its own; the hub, the
regulator's witness and the five nodes start as separate processes talking mutual TLS on
loopback; a researcher's study is answered without a record leaving any hospital; a patient
revokes research consent at the first hospital's desk and the same study again counts them out;
the regulator verifies the whole audit log from its own witness's state; a report is written;
everything stops. Everything is kept under the work directory, and a second run continues it.
"""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from medspace.connector.ingest import load_export
from medspace.demo.audit import AuditOutcome, audit
from medspace.demo.consent import Patient, choose_patient, desk_token, find_revocation, revoke
from medspace.demo.report import pooled_count, write_report
from medspace.demo.services import running
from medspace.demo.setup import HOSPITALS, Layout, ports, set_up
from medspace.hub.space import Space
from medspace.hub.state import FINISHED
from medspace.node.setup import node_secrets, open_node, open_vault
from medspace.pki.enrollment import participant_key, participant_tls
from medspace.pki.tls import client_context
from medspace.synth.clinical import REFERENCE_DATE
from medspace.synth.writer import write_exports
from medspace.wire.messages import StudyRequest

STUDY_SECONDS = 120.0


def study_request() -> StudyRequest:
    """The first study: lung cancer patients aged 40–89, by sex and ten-year age band."""
    return StudyRequest(
        title="Lung cancer (ICD-10 C34) patients aged 40-89, by sex and age band",
        kind="count",
        query={
            "cohort": {"as_of": REFERENCE_DATE.isoformat(), "condition_prefixes": ["C34"],
                       "age_min": 40, "age_max": 89},
            "group_by": ["sex", "age_band"],
            "age_band_width": 10,
        },
        deadline_seconds=STUDY_SECONDS,
    )


def _progress(console: Console) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console)


def _prepare_data(layout: Layout, patients: int, console: Console) -> dict[str, dict[str, int]]:
    """Write the hospitals' exports and load each into its node, unless already done."""
    exports = layout.root / "hospitals"
    if not all((layout.export(h) / "manifest.json").exists() for h in HOSPITALS):
        with _progress(console) as bar:
            tasks = {h: bar.add_task(f"{h}: writing export", total=None) for h in HOSPITALS}

            def advance(hospital: str, done: int, total: int) -> None:
                bar.update(tasks[hospital], completed=done, total=total)

            write_exports(exports, len(HOSPITALS), patients, seed=7, progress=advance)
    counts: dict[str, dict[str, int]] = {}
    for hospital in HOSPITALS:
        folder = layout.node(hospital)
        node, _ = open_node(folder)
        report = load_export(layout.export(hospital), node.store, open_vault(folder),
                             *node_secrets(folder))
        counts[hospital] = {"patients": report.patients + report.patients_updated,
                            "quarantined": report.quarantined}
        node.store.close()
        node.journal.close()
    return counts


def _wait_for_nodes(client: httpx.Client, hub_url: str, timeout: float = 120.0) -> None:
    """Return once every hospital's node has called in to the hub."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        nodes = client.get(hub_url + "/v1/nodes").json()
        if all(node["last_seen_ms"] is not None for node in nodes):
            return
        time.sleep(0.2)
    raise RuntimeError("not every node reached the hub; see hospitals/*/node/node.log")


def _run_study(layout: Layout, hub_url: str) -> dict[str, Any]:
    key = participant_key(layout.researcher)
    with httpx.Client(verify=client_context(participant_tls(layout.researcher)),
                      timeout=30) as client:
        _wait_for_nodes(client, hub_url)
        answer = client.post(hub_url + "/v1/studies",
                             json=key.sign("study", study_request().model_dump()).model_dump())
        answer.raise_for_status()
        study_id = answer.json()["study"]
        deadline = time.monotonic() + STUDY_SECONDS + 30
        while (left := deadline - time.monotonic()) > 0:
            study = client.get(hub_url + f"/v1/studies/{study_id}",
                               params={"wait": min(left, 20.0)}).json()
            if study["status"] in FINISHED:
                return study
    raise RuntimeError(f"the study {study_id} did not finish")


def _show_study(console: Console, study: dict[str, Any]) -> None:
    result = study["result"]
    if result["status"] != "done":
        console.print(f"[red]the study failed: {result.get('reason')}[/]")
        return
    cells = result["result"]
    table = Table(title=study["request"]["title"], title_justify="left")
    table.add_column("hospital")
    for key in cells["group_by"]:
        table.add_column(key)
    table.add_column("patients", justify="right")
    for cell in cells["by_hospital"]:
        count = "suppressed" if cell["count"] is None else f"{cell['count']:,}"
        table.add_row(cell["hospital"], *cell["key"], count)
    for cell in cells["pooled"]:
        table.add_row("[bold]all hospitals[/]", *cell["key"], f"[bold]{pooled_count(cell)}")
    console.print(table)
    for hospital, reason in sorted(result.get("refused", {}).items()):
        console.print(f"  {hospital} released nothing: {reason}")


def _group_count(study: dict[str, Any], hospital: str, group: tuple[str, str]) -> str:
    for cell in study["result"]["result"]["by_hospital"]:
        if cell["hospital"] == hospital and tuple(cell["key"]) == group:
            return "suppressed" if cell["count"] is None else f"{cell['count']:,}"
    return "0"


def _consent_scenario(console: Console, layout: Layout, space: Space, api_port: int,
                      study: dict[str, Any], patient: Patient, token: str) -> dict[str, Any]:
    """A patient revokes research consent at the desk; the same study again counts them out."""
    hospital = HOSPITALS[0]
    index = revoke(layout, layout.node(hospital), api_port, token, patient)
    console.print(f"✓ a {patient.group[0]} patient aged {patient.group[1]} revoked research "
                  f"consent at {hospital}'s desk (through the node's API; its journal entry "
                  f"{index})")
    again = _run_study(layout, space.url)
    revocation = find_revocation(layout, space.origin, patient.person_id, index)
    before = _group_count(study, hospital, patient.group)
    after = _group_count(again, hospital, patient.group) if again["status"] == "done" else "—"
    console.print(f"✓ the same study again: {hospital}'s {patient.group[0]} patients aged "
                  f"{patient.group[1]} were {before}, now {after}")
    where = ("not yet" if revocation.log_index is None
             else f"as entry {revocation.log_index:,}")
    console.print(f"✓ the data space's log holds the revocation {where}, naming the patient "
                  f"only as {revocation.patient_pseudonym or patient.person_id}")
    return again


def _show_audit(console: Console, outcome: AuditOutcome) -> None:
    report = outcome.report
    console.print(f"✓ the regulator replayed {report.entries:,} audit entries and "
                  f"{report.checkpoints:,} checkpoints; its own witness holds size "
                  f"{outcome.witness_size:,}: [green]the log verifies[/]")
    console.print(f"✓ receipt of entry {outcome.receipt_index} checked offline: "
                  f"{outcome.receipt_path}")
    console.print(f"✓ a copy with entry {outcome.tampered_index} flipped is caught: "
                  f"[red]{outcome.tampered_reason}[/]")
    console.print(f"✓ a forked checkpoint is refused by the regulator's witness "
                  f"(HTTP {outcome.fork_status})")


def _stop_on_sigterm(_signal: int, _frame: object) -> None:
    """Turn SIGTERM into an exit that still stops every process the demo started."""
    sys.exit(143)


def run_demo(workdir: Path, patients: int = 2000, serve: bool = False,
             console: Console | None = None) -> int:
    """Run the demo in ``workdir``; return the process exit code."""
    console = console or Console()
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    layout = Layout(workdir.resolve())
    layout.root.mkdir(parents=True, exist_ok=True)
    console.rule("[bold]medspace demo: five hospitals, one study, no record leaves a hospital")
    space = set_up(layout)
    console.print(f"✓ data space {space.name}: operator, regulator, researcher and "
                  f"{len(HOSPITALS)} hospitals enrolled; keys and certificates in {layout.root}")
    loaded = _prepare_data(layout, patients, console)
    console.print("✓ each hospital loaded its own export: " + ", ".join(
        f"{h} {c['patients']:,}" for h, c in loaded.items()))
    patient = choose_patient(layout.node(HOSPITALS[0]), study_request().query)
    token = desk_token(layout.node(HOSPITALS[0]))
    chosen = ports(layout)
    witness_url = f"https://127.0.0.1:{chosen.witness}"
    with running(layout, space, chosen):
        console.print(f"✓ hub {space.url}, the regulator's witness {witness_url} and "
                      f"{len(HOSPITALS)} nodes running as separate processes (mutual TLS)")
        study = _run_study(layout, space.url)
        seconds = (study["finished_ms"] - study["created_ms"]) / 1000
        console.print(f"✓ study {study['id']} {study['status']} {seconds:.2f} s after it was "
                      "submitted")
        _show_study(console, study)
        again = _consent_scenario(console, layout, space, chosen.api, study, patient, token)
        outcome = audit(layout, space, witness_url)
        _show_audit(console, outcome)
        write_report(layout.root / "report.html", study, outcome, loaded)
        console.print(f"✓ report: {layout.root / 'report.html'}")
        if serve:
            console.print(f"serving: hub {space.url}, witness {witness_url} — Ctrl-C to stop")
            try:
                while True:
                    time.sleep(1)
            except KeyboardInterrupt:
                pass
    console.rule("[bold green]demo finished")
    return 0 if study["status"] == again["status"] == "done" else 1
