"""``medspace participant …``: keys and enrolment for a regulator or a researcher."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from medspace.keyfiles import KeyFileError
from medspace.pki.ca import PkiError
from medspace.pki.enrollment import Enrollment, accept, init_participant
from medspace.terminal import fail, out

participant_app = typer.Typer(help="Keys and enrolment for a regulator or a researcher.",
                              no_args_is_help=True)


@participant_app.command("init")
def init_command(
    folder: Annotated[Path, typer.Argument(help="Folder for the participant's keys.")],
    participant_id: Annotated[str, typer.Option("--id", help="The participant's id.")],
    role: Annotated[str, typer.Option(help="'regulator' or 'researcher'.")],
    org: Annotated[str, typer.Option(help="The participant's organisation.")],
) -> None:
    """Make the keys and the enrolment request to send to the data space operator."""
    if role not in ("regulator", "researcher"):
        raise fail("--role must be 'regulator' or 'researcher' (hospitals use "
                   "`medspace node init`)")
    try:
        init_participant(folder, participant_id, role, org)  # type: ignore[arg-type]
    except (PkiError, KeyFileError, ValidationError) as exc:
        raise fail(str(exc)) from None
    out.print(f"send {folder / 'enrollment-request.json'} to the data space operator")


@participant_app.command("accept")
def accept_command(
    folder: Annotated[Path, typer.Argument(help="The participant's folder.")],
    enrollment: Annotated[Path, typer.Argument(help="The enrolment the operator sent back.")],
) -> None:
    """Keep the certificate the operator issued."""
    try:
        accept(folder, Enrollment.model_validate_json(enrollment.read_text()))
    except (OSError, ValidationError, PkiError) as exc:
        raise fail(str(exc)) from None
    out.print(f"{folder} holds its certificate now")
