"""``medspace node people …``: who may call the node's API, in which role, with which token."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated

import duckdb
import typer
from rich.table import Table

from medspace.keyfiles import KeyFileError
from medspace.node.api import API_PORT
from medspace.node.consent import PatientNotFound, find_patient
from medspace.node.people import People, PeopleError, Role
from medspace.node.setup import node_secrets, open_vault
from medspace.store.engine import ClinicalStore
from medspace.terminal import err, fail, out

people_app = typer.Typer(
    help="The people who may call this node's API — administrators, desk staff, clinicians, "
         "patients and auditors — and their tokens.",
    no_args_is_help=True)

_Folder = Annotated[Path, typer.Argument(help="The node's folder.")]
_Id = Annotated[str, typer.Option(
    "--id", help="The person's id: a staff or account number (lower-case letters, digits, '.', "
                 "'_', ':' and '-'), never a name; it names them on the audit log.")]


def _joined(folder: Path) -> None:
    try:
        json.loads((folder / "node.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise fail(f"{folder} is not a node that has joined a data space ({exc}); run "
                   "`medspace node join` first") from None


def _patient(folder: Path, mrn: str | None, id_number: str | None) -> str:
    """The ``person_id`` of the patient an account is for, found in the node's store."""
    try:
        keys = node_secrets(folder)
        vault = open_vault(folder)
    except (OSError, KeyFileError) as exc:
        raise fail(str(exc)) from None
    try:
        store = ClinicalStore.open_duckdb(folder / "store.duckdb")
    except duckdb.IOException:
        raise fail(f"{folder}/store.duckdb is in use by the running node: add the patient "
                   "through the node's API (POST /v1/people with an administrator's token), "
                   "or stop `medspace node run` for a moment and run this again") from None
    with store:
        try:
            return find_patient(store, vault, node_key=keys[0], linkage_key=keys[1], mrn=mrn,
                                id_number=id_number)
        except PatientNotFound as exc:
            raise fail(str(exc)) from None


@people_app.command("add")
def add_command(
    folder: _Folder,
    person: _Id,
    role: Annotated[Role, typer.Option(
        help="admin: decides studies, manages people, reads everything; desk: records any "
             "patient's consent; clinician: neither consent nor studies (emergency look-ups); "
             "patient: their own consent only; auditor: reads the journal and the study "
             "list.")],
    mrn: Annotated[str | None, typer.Option(
        help="For a patient: their medical record number.")] = None,
    id_number: Annotated[str | None, typer.Option(
        "--id-number", help="For a patient: their resident ID number, instead of the MRN.")] = (
        None),
) -> None:
    """Give a person an account and print its token, once: the node keeps only its hash.

    A patient's account is tied to the one patient the MRN or ID number finds in the node's
    store, and reaches that patient's consent only. Hand the token over as you would a
    password; lost or leaked, `remove` it and add the person again.
    """
    _joined(folder)
    patient = None
    if role is Role.PATIENT:
        if (mrn is None) == (id_number is None):
            raise fail("a patient's account needs --mrn or --id-number, one of the two")
        patient = _patient(folder, mrn, id_number)
    elif mrn is not None or id_number is not None:
        raise fail("--mrn and --id-number are for a patient's account only")
    try:
        token = People.open(folder).add_person(person, role, patient=patient)
    except PeopleError as exc:
        raise fail(str(exc)) from None
    err.print(f"{person} may now call the node's API as {role.value}"
              f"{f' (patient {patient})' if patient else ''}. Their token, shown this once — "
              "keep it secret:", highlight=False)
    out.print(token, highlight=False, soft_wrap=True)
    err.print(f"Send it as `Authorization: Bearer <token>` to https://<node host>:{API_PORT}/v1/"
              f"… (see `medspace node run --help`), trusting {folder / 'tls' / 'ca.crt'}, e.g.\n"
              f"  curl --cacert {folder / 'tls' / 'ca.crt'} -H 'Authorization: Bearer <token>' "
              f"https://<node host>:{API_PORT}/v1/consent", highlight=False, soft_wrap=True)


@people_app.command("list")
def list_command(
    folder: _Folder,
    every: Annotated[bool, typer.Option(
        "--all", help="Also the accounts that were removed, and when.")] = False,
) -> None:
    """Show who may call the node's API and in which role (never their tokens)."""
    _joined(folder)
    accounts = People.open(folder).people(revoked=every)
    if not accounts:
        out.print("no one has an account yet; add the hospital's administrator first with "
                  "`medspace node people add FOLDER --id ID --role admin`")
        return

    def when(ms: int | None) -> str:
        return "—" if ms is None else dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime(
            "%Y-%m-%d %H:%M UTC")

    shown = Table("id", "role", "patient", "since", "removed", title="people of this node")
    for p in accounts:
        shown.add_row(p.id, p.role.value, p.person_id or "—", when(p.created_ms),
                      when(p.revoked_ms))
    out.print(shown)


@people_app.command("remove")
def remove_command(folder: _Folder, person: _Id) -> None:
    """Revoke a person's token at once: their next call is refused (and journalled)."""
    _joined(folder)
    if not People.open(folder).revoke_person(person):
        raise fail(f"no one with id {person!r} holds a live token (see `medspace node people "
                   "list`)")
    out.print(f"{person}'s token is revoked; their next call is refused")
