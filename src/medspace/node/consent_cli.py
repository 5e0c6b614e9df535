"""``medspace node consent …``: record a patient's consent decisions at their hospital."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import duckdb
import typer
from rich.table import Table

from medspace.keyfiles import KeyFileError
from medspace.node.consent import PatientNotFound, change_consent, find_patient
from medspace.node.setup import (
    NodeSetupError,
    node_secrets,
    open_journal,
    open_vault,
    read_config,
)
from medspace.store.consent import ConsentError, history
from medspace.store.engine import ClinicalStore
from medspace.store.schema import CONSENT_PURPOSES
from medspace.store.vault import IdentityVault
from medspace.terminal import fail, out

consent_app = typer.Typer(help="Grant, revoke and list a patient's consent per purpose.",
                          no_args_is_help=True)

_Folder = Annotated[Path, typer.Argument(help="The node's folder.")]
_Mrn = Annotated[str | None, typer.Option(help="The patient's medical record number.")]
_IdNumber = Annotated[str | None, typer.Option(
    "--id-number", help="The patient's resident ID number, instead of the MRN.")]
_Purpose = Annotated[str, typer.Option(
    help=f"What the consent is for: {', '.join(CONSENT_PURPOSES)}.")]
_Start = Annotated[dt.datetime | None, typer.Option(
    "--from", formats=["%Y-%m-%d"], help="First day it applies (default: today).")]
_Until = Annotated[dt.datetime | None, typer.Option(
    formats=["%Y-%m-%d"], help="Last day it applies (default: until changed).")]
_By = Annotated[str, typer.Option(
    help="Who records it: a staff id, or 'patient' when the patient does it themselves "
         "(a pseudonymous id; never a name).")]


@contextlib.contextmanager
def _opened(folder: Path) -> Iterator[tuple[ClinicalStore, IdentityVault, bytes, bytes, str]]:
    """The node's store, vault, keys and id, or a message saying what to do."""
    try:
        config = read_config(folder)
        keys = node_secrets(folder)
        vault = open_vault(folder)
    except (NodeSetupError, OSError, KeyFileError) as exc:
        raise fail(f"{exc}; run `medspace node join` first if this node has not joined") from None
    try:
        store = ClinicalStore.open_duckdb(folder / "store.duckdb")
    except duckdb.IOException:
        raise fail(f"{folder}/store.duckdb is in use by the running node: record consent "
                   "through the node's API (POST /v1/consent with a desk or admin token, see "
                   "`medspace node people add`), or stop `medspace node run` for a moment and "
                   "run this again") from None
    with store:
        yield store, vault, keys[0], keys[1], str(config["id"])


def _change(folder: Path, decision: str, mrn: str | None, id_number: str | None, purpose: str,
            start: dt.datetime | None, until: dt.datetime | None, by: str) -> None:
    now = dt.datetime.now(dt.UTC)
    with _opened(folder) as (store, vault, node_key, linkage_key, node_id):
        try:
            person = find_patient(store, vault, node_key=node_key, linkage_key=linkage_key,
                                  mrn=mrn, id_number=id_number)
            recorded = change_consent(
                store, vault, open_journal(folder, node_id), node_id=node_id, actor=by,
                linkage_key=linkage_key, person_id=person, purpose=purpose, decision=decision,
                start=(start or now).date(), end=until.date() if until else None, now=now)
        except (PatientNotFound, ConsentError) as exc:
            raise fail(str(exc)) from None
    verb = "granted" if decision == "permit" else "revoked"
    out.print(f"{purpose} consent {verb} for patient {recorded.person_id} from "
              f"{(start or now).date()}{f' to {until.date()}' if until else ''}; journal entry "
              f"{recorded.journal_index}. Every computation from now on respects it.")


@consent_app.command("grant")
def grant_command(folder: _Folder, purpose: _Purpose, mrn: _Mrn = None,
                  id_number: _IdNumber = None, start: _Start = None, until: _Until = None,
                  by: _By = "staff") -> None:
    """Record that the patient permits use of their data for PURPOSE."""
    _change(folder, "permit", mrn, id_number, purpose, start, until, by)


@consent_app.command("revoke")
def revoke_command(folder: _Folder, purpose: _Purpose, mrn: _Mrn = None,
                   id_number: _IdNumber = None, start: _Start = None, until: _Until = None,
                   by: _By = "staff") -> None:
    """Record that the patient refuses use of their data for PURPOSE: from the first day on,
    no computation for that purpose counts them."""
    _change(folder, "deny", mrn, id_number, purpose, start, until, by)


@consent_app.command("list")
def list_command(folder: _Folder, mrn: _Mrn = None, id_number: _IdNumber = None) -> None:
    """Show every consent decision of one patient, oldest first."""
    with _opened(folder) as (store, vault, node_key, linkage_key, _):
        try:
            person = find_patient(store, vault, node_key=node_key, linkage_key=linkage_key,
                                  mrn=mrn, id_number=id_number)
        except PatientNotFound as exc:
            raise fail(str(exc)) from None
        decisions = history(store, person)
    shown = Table("purpose", "decision", "from", "until", "recorded",
                  title=f"consent of patient {person}")
    for d in decisions:
        recorded = ("imported" if d.recorded_ms is None else
                    dt.datetime.fromtimestamp(d.recorded_ms / 1000, dt.UTC)
                    .strftime("%Y-%m-%d %H:%M UTC"))
        shown.add_row(d.purpose, d.decision, str(d.start_date), str(d.end_date or "—"), recorded)
    out.print(shown if decisions else f"patient {person} has recorded no consent decision; the "
                                      "node's default for each purpose applies")
