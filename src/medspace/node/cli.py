"""``medspace node …``: a hospital joins the data space and runs its node."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from medspace.connector.codemap import CodeMap, CodeMapError
from medspace.connector.inbox import Inbox
from medspace.connector.ingest import BATCH_SIZE, IngestError, load_export, load_inbox
from medspace.connector.mllp import DEFAULT_PORT, Listener
from medspace.connector.quarantine import Quarantine, read_quarantine
from medspace.connector.report import IngestReport, write_html
from medspace.connector.retry import retry_quarantine
from medspace.keyfiles import KeyFileError, read_private
from medspace.ledger.trust import TrustError
from medspace.node.agent import Agent
from medspace.node.api import API_PORT, node_api, serve_api
from medspace.node.consent_cli import consent_app
from medspace.node.people_cli import people_app
from medspace.node.publish_cli import publish_command
from medspace.node.review_cli import analyses_app, studies_app
from medspace.node.setup import (
    NodeSetupError,
    hub_client,
    init_node,
    join,
    node_secrets,
    open_node,
    open_vault,
)
from medspace.pki.ca import PkiError
from medspace.pki.enrollment import Enrollment
from medspace.store.engine import ClinicalStore
from medspace.store.vault import IdentityVault
from medspace.terminal import err, fail, out

node_app = typer.Typer(help="Run a hospital's node: join a data space, then serve it.",
                       no_args_is_help=True)



def _stop_on_signals() -> asyncio.Event:
    """An event that Ctrl-C or a service manager's SIGTERM sets, for a clean stop."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    return stop


@node_app.command("init")
def init_command(
    folder: Annotated[Path, typer.Argument(help="Folder for the node's keys and data.")],
    node_id: Annotated[str, typer.Option("--id", help="The hospital's id, e.g. hospital-a.")],
    org: Annotated[str, typer.Option(help="The hospital's name or organisation id.")],
) -> None:
    """Make the node's keys and the enrolment request to send to the operator."""
    try:
        init_node(folder, node_id, org)
    except (PkiError, KeyFileError) as exc:
        raise fail(str(exc)) from None
    out.print(f"send {folder / 'enrollment-request.json'} to the data space operator")


@node_app.command("join")
def join_command(
    folder: Annotated[Path, typer.Argument(help="The node's folder.")],
    enrollment: Annotated[Path, typer.Argument(help="The enrolment the operator sent back.")],
    policy: Annotated[Path, typer.Argument(help="The data space's trust policy (policy.txt).")],
    linkage_key: Annotated[Path, typer.Option(
        help="The 32-byte key the hospitals share for linkage tokens (never the hub's).")],
) -> None:
    """Keep the certificate, the trust policy and the linkage key: the node can now run."""
    try:
        join(folder, Enrollment.model_validate_json(enrollment.read_text()),
             policy.read_text(encoding="utf-8"), read_private(linkage_key))
    except (OSError, ValidationError, NodeSetupError, PkiError, TrustError,
            KeyFileError) as exc:
        raise fail(str(exc)) from None
    out.print(f"{folder} joined the data space; start it with `medspace node run {folder}`")


@node_app.command("run")
def run_command(
    folder: Annotated[Path, typer.Argument(help="The node's folder.")],
    api_host: Annotated[str, typer.Option(
        help="Address the node's API listens on: an interface on the hospital network (never "
             "one the internet reaches). Clients must call it by a name or address the node's "
             "certificate holds (the --host the operator enrolled it with).")] = "127.0.0.1",
    api_port: Annotated[int, typer.Option(
        min=0, max=65535, help="TCP port of the node's API; 0 runs the agent alone.")] = (
        API_PORT),
) -> None:
    """Run the node: its agent calls out to the hub; its API serves the hospital's people.

    The agent never accepts connections. The API answers the hospital's own administrators,
    desk staff, patients and auditors (`medspace node people add`) over HTTPS with the node's
    certificate (clients trust FOLDER/tls/ca.crt), a bearer token on every call: studies to
    decide, patients' consent, the node's journal. It works on the store the node holds, so
    consent changes take effect while the node runs. Stop with Ctrl-C or SIGTERM: both finish
    what is in flight, hand the hub what is left, and stop.
    """
    try:
        node, hub_url = open_node(folder)
    except (NodeSetupError, TrustError, KeyFileError, OSError) as exc:
        raise fail(str(exc)) from None
    api = None
    if api_port:
        try:
            api = serve_api(node_api(folder, node), folder, api_host, api_port)
        except (KeyFileError, PkiError, OSError, RuntimeError) as exc:
            node.journal.close()
            raise fail(f"cannot serve the node's API on {api_host}:{api_port} ({exc}); choose "
                       "another --api-host or --api-port, or give --api-port 0 to run the agent "
                       "alone") from None
        err.print(f"node API on {api.url}; clients trust {folder / 'tls' / 'ca.crt'}")

    async def main() -> None:
        stop = _stop_on_signals()
        try:
            async with hub_client(folder) as client:
                await Agent(node, hub_url, client).run(stop)
        finally:
            if api is not None:
                await asyncio.to_thread(api.stop)
            await asyncio.to_thread(node.journal.close)

    err.print(f"node {node.id} connecting to {hub_url}")
    asyncio.run(main())


@node_app.command("listen-hl7")
def listen_hl7_command(
    folder: Annotated[Path, typer.Argument(help="The node's folder.")],
    host: Annotated[str, typer.Option(help="Address to listen on: the interface engine's side "
                                           "of the hospital network.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port (2575 is MLLP's registered port).")] = (
        DEFAULT_PORT),
) -> None:
    """Take HL7 v2 messages over MLLP from the hospital's interface engine.

    Every message is answered with an ACK as interface engines expect: AA once it is durably in
    the node's inbox (FOLDER/hl7-inbox.db), AE when its content cannot be used (it is kept in
    FOLDER/quarantine/hl7-mllp.ndjson with the reason), AR when it cannot be processed at all.
    Stop with Ctrl-C.
    """
    if not folder.is_dir():
        raise fail(f"{folder} is not a folder; create the node with `medspace node init` first")
    config = folder / "node.json"
    facility = json.loads(config.read_text(encoding="utf-8"))["id"] if config.exists() else ""
    listener = Listener(Inbox.open(folder), Quarantine(folder / "quarantine" / "hl7-mllp.ndjson"),
                        facility=facility)

    async def main() -> None:
        stop = _stop_on_signals()
        try:
            server = await listener.serve(host, port)
        except OSError as exc:
            raise fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        err.print(f"listening for HL7 v2 over MLLP on {host}:{port}; {listener.inbox.count()} "
                  f"message(s) in {folder / 'hl7-inbox.db'}")
        async with server:
            await stop.wait()
        listener.quarantine.close()

    asyncio.run(main())


def _ingest_keys(folder: Path) -> tuple[tuple[bytes, bytes], IdentityVault]:
    """The node's pseudonym and linkage keys and its vault, or a message saying what to do."""
    if not (folder / "node.json").exists() or not (folder / "keys" / "linkage.key").exists():
        raise fail(f"{folder} has not joined a data space; run `medspace node join` first")
    try:
        return node_secrets(folder), open_vault(folder)
    except (KeyFileError, OSError) as exc:
        raise fail(str(exc)) from None


def _code_map(path: Path | None) -> CodeMap | None:
    try:
        return None if path is None else CodeMap.load(path)
    except CodeMapError as exc:
        raise fail(f"{exc}; fix the code map and run the command again") from None


@contextlib.contextmanager
def _patients_bar(name: str) -> Iterator[Callable[[int, int], None]]:
    """A progress bar over a load's patients; yields the callback that advances it."""
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err) as bar:
        task = bar.add_task(f"{name}: reading", total=None)

        def advance(patients: int, total: int) -> None:
            bar.update(task, description=f"{name}: patients", completed=patients, total=total)

        yield advance


def _loaded(name: str, load: Callable[[Callable[[int, int], None]], IngestReport]
            ) -> IngestReport:
    """Run one load under a progress bar, print its summary, and say how to resume a failure."""
    with _patients_bar(Path(name).name) as advance:
        try:
            result = load(advance)
        except IngestError as exc:
            raise fail(f"{name}: {exc}; what was committed stays, and running the same command "
                       "again resumes") from None
    out.print(result.to_text(), highlight=False)
    return result


@node_app.command("ingest")
def ingest_command(
    folder: Annotated[Path, typer.Argument(help="The node's folder (after `medspace node join`).")],
    exports: Annotated[list[Path] | None, typer.Argument(
        help="Export folders as the hospital's systems wrote them: FHIR R4 bulk NDJSON "
             "(*.ndjson), FHIR JSON Bundles or resources (*.json), or HL7 v2 (*.hl7).")] = None,
    mapping: Annotated[Path | None, typer.Option(
        help="A YAML mapping file for CSV / Excel extracts (see docs/examples/lis-mapping.yaml); "
             "the export folders are then read as it says.")] = None,
    code_map: Annotated[Path | None, typer.Option(
        help="A CSV code map (source_system, source_code, target_system, target_code) that "
             "turns SNOMED CT, RxNorm or house codes into ICD-10, ATC or LOINC.")] = None,
    fhir_server: Annotated[str, typer.Option(
        help="A name for the FHIR server these exports come from, when the node is fed by "
             "more than one (patient ids are unique only within each server).")] = "",
    inbox: Annotated[bool, typer.Option(
        "--inbox", help="Also load the HL7 v2 messages `medspace node listen-hl7` has received "
                        "since the last load.")] = False,
    batch_size: Annotated[int, typer.Option(min=1, help="Patients per transaction.")] = (
        BATCH_SIZE),
    report: Annotated[Path | None, typer.Option(
        help="Also write what each ingest did, as JSON, to this file.")] = None,
    report_html: Annotated[Path | None, typer.Option(
        help="Also write the data-quality report as an HTML page to this file.")] = None,
) -> None:
    """Load hospital exports (and the HL7 inbox) into the node's clinical store and vault.

    Direct identifiers go to the encrypted vault; the store gets pseudonymous ids and linkage
    tokens. A record that cannot be loaded is kept whole in FOLDER/quarantine with its source,
    position and reason. Safe to run again: an interrupted ingest resumes, an unchanged export
    is not read twice, and a record sent again (or updated) replaces its earlier version.
    """
    exports = exports or []
    if not exports and not inbox:
        raise fail("name at least one export folder, or give --inbox")
    missing = [str(e) for e in exports if not e.is_dir()]
    if missing:
        raise fail(f"not an export folder: {', '.join(missing)}")
    keys, vault = _ingest_keys(folder)
    codes = _code_map(code_map)
    quarantine = folder / "quarantine"
    done: list[IngestReport] = []
    with ClinicalStore.open_duckdb(folder / "store.duckdb") as store:
        for export in exports:
            done.append(_loaded(str(export), lambda advance, export=export: load_export(
                export, store, vault, *keys, advance, batch_size=batch_size, mapping=mapping,
                code_map=codes, source=fhir_server, quarantine_dir=quarantine)))
        if inbox:
            done.append(_loaded("HL7 inbox", lambda advance: load_inbox(
                Inbox.open(folder), store, vault, *keys, advance, batch_size=batch_size,
                code_map=codes, quarantine_dir=quarantine)))
    if report is not None:
        report.write_text(json.dumps([r.to_dict() for r in done], indent=2,
                                     ensure_ascii=False) + "\n", encoding="utf-8")
        out.print(f"report written to {report}")
    if report_html is not None:
        write_html(report_html, folder.name, done)
        out.print(f"data-quality page written to {report_html}")


quarantine_app = typer.Typer(help="Review the records ingestion could not load, and why.",
                             no_args_is_help=True)
node_app.add_typer(quarantine_app, name="quarantine")
node_app.add_typer(consent_app, name="consent")
node_app.add_typer(people_app, name="people")
node_app.add_typer(studies_app, name="studies")
node_app.add_typer(analyses_app, name="analyses")
node_app.command("publish")(publish_command)


def _quarantine_files(folder: Path) -> list[Path]:
    files = sorted((folder / "quarantine").glob("*.ndjson"))
    if not files:
        raise fail(f"no quarantine in {folder / 'quarantine'}: nothing has been rejected yet, "
                   "or this is not a node folder")
    return files


@quarantine_app.command("list")
def quarantine_list_command(
    folder: Annotated[Path, typer.Argument(help="The node's folder.")],
) -> None:
    """Count the quarantined records of each source, by reason."""
    table = Table("quarantine file", "source", "reason", "records")
    for path in _quarantine_files(folder):
        counts = Counter((str(e["source"]), str(e["reason"])) for e in read_quarantine(path))
        for (source, reason), count in sorted(counts.items()):
            table.add_row(path.name, source, reason, f"{count:,}")
    out.print(table)


@quarantine_app.command("show")
def quarantine_show_command(
    folder: Annotated[Path, typer.Argument(help="The node's folder.")],
    reason: Annotated[str | None, typer.Option(help="Only records rejected for this reason.")] = (
        None),
    source: Annotated[str | None, typer.Option(help="Only records from this source file.")] = (
        None),
    limit: Annotated[int, typer.Option(min=1, help="Show at most this many.")] = 20,
) -> None:
    """Show quarantined records whole, with where they came from and why they were refused.

    Records may hold names and ID numbers: they are the hospital's own, shown on its own node.
    """
    shown = 0
    for path in _quarantine_files(folder):
        for entry in read_quarantine(path):
            if (reason and entry["reason"] != reason) or (source and entry["source"] != source):
                continue
            if shown == limit:
                out.print("… more; raise --limit to see them")
                return
            shown += 1
            out.print(f"[bold]{entry['source']}[/] #{entry['position']} {entry['kind']}: "
                      f"[red]{entry['reason']}[/] {entry['detail']}", highlight=False)
            out.print(f"  {entry['record']}", markup=False, highlight=False)
    if not shown:
        out.print("no quarantined record matches")


@quarantine_app.command("retry")
def quarantine_retry_command(
    folder: Annotated[Path, typer.Argument(help="The node's folder.")],
    reason: Annotated[str | None, typer.Option(help="Only records rejected for this reason.")] = (
        None),
    source: Annotated[str | None, typer.Option(help="Only records from this source file.")] = (
        None),
    code_map: Annotated[Path | None, typer.Option(
        help="A CSV code map (source_system, source_code, target_system, target_code) that "
             "turns SNOMED CT, RxNorm or house codes into ICD-10, ATC or LOINC.")] = None,
    fhir_server: Annotated[str, typer.Option(
        help="The FHIR server the records came from, as named to `medspace node ingest "
             "--fhir-server`.")] = "",
) -> None:
    """Load quarantined records again, after the data or the mapping was fixed.

    Records that now load leave the quarantine; those that fail again stay, with this
    attempt's reason. A whole unreadable file is not retried: ingest the fixed file instead.
    """
    files = _quarantine_files(folder)
    keys, vault = _ingest_keys(folder)
    codes = _code_map(code_map)

    def chosen(entry: dict[str, object]) -> bool:
        return (reason is None or entry["reason"] == reason) and (
            source is None or entry["source"] == source)

    with ClinicalStore.open_duckdb(folder / "store.duckdb") as store:
        for path in files:
            with _patients_bar(path.stem) as advance:
                try:
                    result = retry_quarantine(path, store, vault, *keys, select=chosen,
                                              progress=advance, code_map=codes,
                                              source=fhir_server)
                except IngestError as exc:
                    raise fail(f"{path.name}: {exc}; the quarantine is unchanged") from None
            out.print(f"{path.name}: {result.tried:,} retried, {result.loaded:,} loaded, "
                      f"{result.failed_again:,} failed again, {result.not_retryable:,} not "
                      "retryable (whole files: ingest the fixed file)", highlight=False)
