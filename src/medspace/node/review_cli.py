"""``medspace node studies …`` and ``medspace node analyses …``: what a hospital lets run."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from medspace.analytics.registry import ANALYSES
from medspace.node.governance import Governance, GovernanceError
from medspace.node.review import ReviewError, decide_study, revoke_study
from medspace.node.setup import NodeSetupError, open_journal, read_config
from medspace.node.state import NodeState
from medspace.sqldb import create_engine, sqlite_url
from medspace.terminal import fail, out

studies_app = typer.Typer(help="See the studies offered to this hospital; approve or deny them.",
                          no_args_is_help=True)
analyses_app = typer.Typer(help="The analyses this hospital allows, pinned by version and code "
                                "digest.", no_args_is_help=True)

_Folder = Annotated[Path, typer.Argument(help="The node's folder.")]
_By = Annotated[str, typer.Option(help="Your staff id (a pseudonymous id, never a name).")]


def _config(folder: Path) -> dict[str, Any]:
    try:
        return read_config(folder)
    except NodeSetupError as exc:
        raise fail(str(exc)) from None


def _state(folder: Path) -> NodeState:
    _config(folder)
    return NodeState(create_engine(sqlite_url(folder / "node.db")))


def _when(ms: int | None) -> str:
    return "—" if ms is None else dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime(
        "%Y-%m-%d %H:%M UTC")


@studies_app.command("list")
def list_command(folder: _Folder, every: Annotated[bool, typer.Option(
        "--all", help="Also the studies already decided.")] = False) -> None:
    """Show the studies waiting for this hospital's decision (or all of them)."""
    records = _state(folder).studies(undecided=not every)
    if not records:
        out.print("no study waits for a decision" if not every else "no study offered yet")
        return
    shown = Table(title="studies offered to this hospital")
    shown.add_column("study", no_wrap=True)
    for heading in ("researcher", "purpose", "analysis", "offered", "decision"):
        shown.add_column(heading)
    for r in records:
        decision = {"offered": "waiting", "agreed": f"approved by {r.decided_by}",
                    "refused": f"denied by {r.decided_by}",
                    "revoked": f"revoked by {r.revoked_by}"}[r.status]
        shown.add_row(r.id, r.researcher, str(r.request.get("purpose", "research")),
                      str(r.request.get("kind")), _when(r.offered_ms), decision)
    out.print(shown)
    for r in records:
        out.print(f"{r.id} asks: {json.dumps(r.request.get('query'), ensure_ascii=False)}",
                  highlight=False, soft_wrap=True)


def _rules(folder: Path, config: dict[str, Any]) -> Governance:
    try:
        return Governance.read(folder, config)
    except GovernanceError as exc:
        raise fail(str(exc)) from None


def _decide(folder: Path, study: str, decision: str, by: str, reason: str | None) -> None:
    config = _config(folder)
    try:
        decide_study(_state(folder), open_journal(folder, config["id"]), _rules(folder, config),
                     study=study, decision=decision, decided_by=by, reason=reason,
                     now=dt.datetime.now(dt.UTC))
    except ReviewError as exc:
        raise fail(str(exc)) from None
    verb = "approved" if decision == "permit" else "denied"
    out.print(f"{study} {verb} by {by}; the node sends the decision to the hub on its next "
              "poll")


@studies_app.command("approve")
def approve_command(folder: _Folder, study: Annotated[str, typer.Argument(
        help="The study's id, as `list` shows it.")], by: _By,
        reason: Annotated[str | None, typer.Option(help="Why, for the log.")] = None) -> None:
    """Approve a study: its tasks then run here, each checked against the usage policy."""
    _decide(folder, study, "permit", by, reason)


@studies_app.command("deny")
def deny_command(folder: _Folder, study: Annotated[str, typer.Argument(
        help="The study's id, as `list` shows it.")], by: _By,
        reason: Annotated[str, typer.Option(help="Why: the researcher is told.")]) -> None:
    """Deny a study: no task of it runs here."""
    _decide(folder, study, "deny", by, reason)


@studies_app.command("revoke")
def revoke_command(folder: _Folder, study: Annotated[str, typer.Argument(
        help="The study's id, as `list --all` shows it.")], by: _By,
        reason: Annotated[str, typer.Option(help="Why: the researcher is told.")]) -> None:
    """Withdraw an approved study: from now on no task of it runs here."""
    config = _config(folder)
    try:
        revoke_study(_state(folder), open_journal(folder, config["id"]), _rules(folder, config),
                     study=study, revoked_by=by, reason=reason, now=dt.datetime.now(dt.UTC))
    except ReviewError as exc:
        raise fail(str(exc)) from None
    out.print(f"{study} revoked by {by}; its tasks are refused from now on")


@analyses_app.command("list")
def analyses_list_command(folder: _Folder) -> None:
    """Show each analysis medspace can run and whether this hospital allows its current code."""
    allowed = _config(folder).get("analyses", {})
    shown = Table("analysis", "action", "installed", "allowed here", title="analyses")
    for kind, analysis in ANALYSES.items():
        pinned = allowed.get(kind)
        status = ("yes" if pinned == analysis.pin else
                  "no" if pinned is None else f"no: pinned {pinned}")
        shown.add_row(kind, analysis.action, analysis.pin, status)
    out.print(shown)


@analyses_app.command("allow")
def analyses_allow_command(folder: _Folder, kind: Annotated[str, typer.Argument(
        help="The analysis to allow, as `list` shows it.")]) -> None:
    """Allow the installed code of one analysis (after reviewing it); restart the node."""
    analysis = ANALYSES.get(kind)
    if analysis is None:
        raise fail(f"no analysis {kind!r}; there are {', '.join(ANALYSES)}")
    config = _config(folder)
    config["analyses"] = {**config.get("analyses", {}), kind: analysis.pin}
    (folder / "node.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    out.print(f"{kind} allowed at {analysis.pin}; restart `medspace node run` to apply it")
