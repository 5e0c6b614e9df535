"""``medspace ledger …`` and ``medspace witness``: keys, policies, verification, export, receipts.

Exit codes: 0 the check passed, 1 the check failed (the log or receipt is bad), 2 the command
could not run (bad arguments, unreadable files, unreachable servers).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import httpx
import typer
import uvicorn
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from medspace.keyfiles import KeyFileError
from medspace.ledger.client import HttpLogSource, fetch_witness_checkpoint
from medspace.ledger.cosignature import Cosigner
from medspace.ledger.events import EventError, parse_event
from medspace.ledger.export import BundleSource, export_log
from medspace.ledger.keys import load_key, write_key
from medspace.ledger.note import NoteError, Signer, parse_vkey
from medspace.ledger.quorum import Log, Policy, PolicyError, consortium_policy
from medspace.ledger.receipt import ReceiptError, verify_receipt
from medspace.ledger.store import LogStore, StoreError
from medspace.ledger.trust import Trust, TrustError
from medspace.ledger.verify import LogSource, Report, SourceError, VerifierState, verify_log
from medspace.ledger.witness import Witness, held_checkpoint
from medspace.ledger.witnessapi import witness_app
from medspace.pki.enrollment import participant_tls
from medspace.pki.tls import client_context, server_options
from medspace.sqldb import create_engine, sqlite_url
from medspace.terminal import err, fail, out

app = typer.Typer(
    help="The audit ledger: keys, trust policies, verification, export and receipts.",
    no_args_is_help=True,
)



def _database_url(value: str) -> str:
    return value if "://" in value else sqlite_url(value)


TlsOption = Annotated[
    Path | None,
    typer.Option("--tls", help="Your participant folder, whose certificate to present to a "
                               "server that demands mutual TLS (the hub does)."),
]


def _client(tls: Path | None) -> httpx.Client:
    if tls is None:
        return httpx.Client(timeout=30)
    return httpx.Client(verify=client_context(participant_tls(tls)), timeout=30)


def open_source(source: str, tls: Path | None = None) -> LogSource:
    """A log source from a URL (``http…``), a database URL or path (``.db``), or an export."""
    if source.startswith(("http://", "https://")):
        return HttpLogSource(source, _client(tls))
    if "://" in source or source.endswith(".db"):
        try:
            return LogStore.open(create_engine(_database_url(source)))
        except StoreError as exc:
            raise SourceError(f"{source}: {exc}") from None
    return BundleSource(Path(source))


def _progress() -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    )


@app.command()
def keygen(
    name: Annotated[str, typer.Argument(help="Key name: the log's origin, or the witness name.")],
    out_file: Annotated[Path, typer.Option("--out", help="Private key file to create (0600).")],
    kind: Annotated[str, typer.Option(help="'log' (checkpoint signing) or 'witness'.")] = "log",
) -> None:
    """Create a private key file and print its public key (vkey) for the trust policy."""
    try:
        key: Signer | Cosigner
        if kind == "log":
            key = Signer.generate(name)
        elif kind == "witness":
            key = Cosigner.generate(name)
        else:
            raise fail(f"--kind must be 'log' or 'witness', not {kind!r}")
        write_key(out_file, key)
    except (KeyFileError, NoteError) as exc:
        raise fail(str(exc)) from None
    out.print(key.vkey, soft_wrap=True, highlight=False)


@app.command()
def policy(
    log_vkey: Annotated[str, typer.Option("--log", help="The log's public key (vkey).")],
    regulator: Annotated[str, typer.Option(help="The regulator witness's vkey.")],
    hospital: Annotated[
        list[str], typer.Option(help="A hospital witness's vkey; repeat for each hospital.")
    ],
    out_file: Annotated[Path, typer.Option("--out", help="Policy file to write.")],
) -> None:
    """Write the default consortium policy: the regulator AND two thirds of the hospitals."""
    try:
        parse_vkey(log_vkey)
        made = consortium_policy(regulator, hospital)
        made = Policy(made.witnesses, made.groups, made.quorum, (Log(log_vkey),))
    except (PolicyError, NoteError) as exc:
        raise fail(str(exc)) from None
    out_file.write_text(made.format(), encoding="utf-8")
    out.print(f"wrote {out_file}: {made.explain(set())}")


def _load_trust(path: Path, origin: str | None = None) -> Trust:
    try:
        return Trust.load(path, origin)
    except TrustError as exc:
        raise fail(str(exc)) from None


def _witness_note(witness: str, origin: str, tls: Path | None) -> str:
    if witness.startswith(("http://", "https://")):
        return fetch_witness_checkpoint(witness, origin, _client(tls))
    state = held_checkpoint(create_engine(_database_url(witness)), origin)
    if state is None:
        raise SourceError(f"the witness database {witness} holds no checkpoint of {origin!r}")
    return state.note


def _print_report(report: Report) -> None:
    table = Table(title=f"Audit log {report.origin}", show_header=False, title_justify="left")
    table.add_row("entries checked", f"{report.entries:,}")
    table.add_row("checkpoints checked", f"{report.checkpoints:,}")
    table.add_row("witnessed checkpoints", f"{report.witnessed:,}")
    table.add_row("witnessed up to entry", f"{report.witnessed_size:,}")
    for action, count in sorted(report.actions.items()):
        table.add_row(f"  {action}", f"{count:,}")
    out.print(table)


@app.command()
def verify(
    source: Annotated[str, typer.Argument(help="Log URL, log database, or an export file.")],
    policy_file: Annotated[Path, typer.Option("--policy", help="The trust policy file.")],
    trusted: Annotated[
        list[Path] | None, typer.Option(help="A checkpoint note file you trust; repeatable.")
    ] = None,
    witness: Annotated[
        list[str] | None,
        typer.Option(help="A witness URL or witness database whose held checkpoint must "
                          "agree with the log; repeatable."),
    ] = None,
    state: Annotated[
        Path | None,
        typer.Option(help="Verifier state file: resume from it if it exists, update it on "
                          "success."),
    ] = None,
    tls: TlsOption = None,
) -> None:
    """Replay the whole log and check every entry, signature, cosignature and checkpoint."""
    try:
        log_source = open_source(source, tls)
        trust = _load_trust(policy_file, log_source.origin)
        notes = [p.read_text(encoding="utf-8") for p in trusted or []]
        notes += [_witness_note(w, log_source.origin, tls) for w in witness or []]
        resume = (VerifierState.from_json(state.read_text()) if state and state.exists()
                  else None)
        total = max((c.size for c in log_source.checkpoints()), default=0)
        with _progress() as bar:
            task = bar.add_task("verifying entries", total=total,
                                completed=resume.size if resume else 0)
            report = verify_log(log_source, trust, notes, resume,
                                progress=lambda n: bar.update(task, completed=n))
    except (SourceError, OSError, ValueError) as exc:
        raise fail(str(exc)) from None
    _print_report(report)
    for fork in report.forks:
        err.print(f"[bold red]FORK at size {fork.size}[/]: the log signed two different trees.")
        for label, note in (("first", fork.note), ("second", fork.other)):
            err.print(f"{label} checkpoint:\n{note}", soft_wrap=True, highlight=False,
                      markup=False)
    if report.failure is not None:
        err.print(f"[bold red]FAILED[/] at index {report.failure.index}: "
                  f"{report.failure.reason}", highlight=False)
        raise typer.Exit(1)
    if report.forks:
        raise typer.Exit(1)
    if state is not None and report.state is not None:
        state.write_text(report.state.to_json(), encoding="utf-8")
    out.print(f"[bold green]OK[/]: {report.entries:,} entries verified against the policy.")


@app.command()
def export(
    source: Annotated[str, typer.Argument(help="Log URL or log database.")],
    out_file: Annotated[Path, typer.Option("--out", help="Export file to write.")],
    tls: TlsOption = None,
) -> None:
    """Write a self-contained copy of the log that a regulator can verify offline."""
    try:
        log_source = open_source(source, tls)
        total = max((c.size for c in log_source.checkpoints()), default=0)
        with _progress() as bar:
            task = bar.add_task("exporting entries", total=total)
            count = export_log(log_source, out_file,
                               progress=lambda n: bar.update(task, completed=n))
    except (SourceError, OSError) as exc:
        raise fail(str(exc)) from None
    out.print(f"wrote {count:,} entries to {out_file}")


@app.command()
def receipt(
    url: Annotated[str, typer.Argument(help="The log's URL.")],
    index: Annotated[int, typer.Argument(help="The entry's index.")],
    out_file: Annotated[Path, typer.Option("--out", help="Receipt file to write.")],
    tls: TlsOption = None,
) -> None:
    """Fetch the portable receipt of one entry (entry, inclusion proof, cosigned checkpoint)."""
    try:
        with _client(tls) as client:
            response = client.get(url.rstrip("/") + "/log/v1/receipt", params={"index": index})
    except httpx.HTTPError as exc:
        raise fail(f"cannot reach {url}: {exc}") from None
    if response.status_code != 200:
        raise fail(f"{url} answered {response.status_code}: {response.text[:200]}")
    out_file.write_text(response.text, encoding="utf-8")
    out.print(f"wrote the receipt of entry {index} to {out_file}")


@app.command("verify-receipt")
def verify_receipt_command(
    receipt_file: Annotated[Path, typer.Argument(help="The receipt file.")],
    policy_file: Annotated[Path, typer.Option("--policy", help="The trust policy file.")],
) -> None:
    """Check a receipt offline and print the audit event it proves."""
    try:
        data = receipt_file.read_bytes()
        origin = json.loads(data).get("origin")
    except (OSError, ValueError, AttributeError) as exc:
        raise fail(f"cannot read the receipt {receipt_file}: {exc}") from None
    trust = _load_trust(policy_file, origin if isinstance(origin, str) else None)
    try:
        entry = verify_receipt(data, trust)
        event = parse_event(entry)
    except (ReceiptError, EventError) as exc:
        err.print(f"[bold red]FAILED[/]: {exc}", highlight=False)
        raise typer.Exit(1) from None
    out.print_json(entry.decode("utf-8"))
    out.print(f"[bold green]OK[/]: {event.action} by {event.actor} is in the witnessed log.")


def serve_witness(
    db: Annotated[str, typer.Option(help="Witness state database: a path or a database URL.")],
    key: Annotated[Path, typer.Option(help="The witness's private key file.")],
    log: Annotated[list[str], typer.Option(help="The vkey of a log to follow; repeatable.")],
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 7380,
    tls: Annotated[
        Path | None,
        typer.Option(help="A participant folder (`medspace participant init`) whose certificate "
                          "to serve mutual TLS with; without it the witness speaks plain HTTP."),
    ] = None,
) -> None:
    """Run a witness of the audit log (C2SP tlog-witness) over HTTP or mutual TLS."""
    try:
        cosigner = load_key(key, Cosigner)
        logs = [parse_vkey(v) for v in log]
    except (KeyFileError, NoteError) as exc:
        raise fail(str(exc)) from None
    witness = Witness(create_engine(_database_url(db)), cosigner, logs)
    options = {} if tls is None else server_options(participant_tls(tls))
    scheme = "http" if tls is None else "https"
    err.print(f"witness {cosigner.name} listening on {scheme}://{host}:{port}, "
              f"following {', '.join(v.name for v in logs)}")
    uvicorn.run(witness_app(witness), host=host, port=port, log_level="warning", **options)
