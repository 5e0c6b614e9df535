"""``medspace space …`` (the operator's set-up) and ``medspace hub`` (running the hub)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
import uvicorn
from pydantic import ValidationError

from medspace.hub.app import create_app
from medspace.hub.space import (
    SpaceError,
    enroll,
    hub_client,
    init_space,
    open_hub,
    open_space,
    write_policy,
)
from medspace.pki.ca import PkiError
from medspace.pki.enrollment import EnrollmentRequest
from medspace.pki.tls import server_options
from medspace.terminal import err, fail, out

space_app = typer.Typer(help="Create a data space and enrol its participants (the operator).",
                        no_args_is_help=True)



@space_app.command("init")
def init_command(
    folder: Annotated[Path, typer.Argument(help="Folder to create the data space in.")],
    name: Annotated[str, typer.Option(help="The data space's name, e.g. health.example.org.")],
    url: Annotated[str, typer.Option(help="The URL nodes reach the hub at (https://…).")],
    host: Annotated[list[str], typer.Option(help="A host name or IP address the hub's "
                                                 "certificate is valid for; repeatable.")],
) -> None:
    """Create the data space's CA, the hub's keys and certificate, and the audit log's key."""
    try:
        init_space(folder, name, url, host)
    except (SpaceError, PkiError) as exc:
        raise fail(str(exc)) from None
    out.print(f"created the data space {name} in {folder}")


@space_app.command("enroll")
def enroll_command(
    folder: Annotated[Path, typer.Argument(help="The data space folder.")],
    request: Annotated[Path, typer.Argument(help="The participant's enrollment-request.json.")],
    out_file: Annotated[Path, typer.Option("--out", help="Where to write the enrolment.")],
    host: Annotated[list[str], typer.Option(help="Host name or IP the participant's "
                                                 "certificate is valid for; repeatable.")],
    witness_url: Annotated[str | None, typer.Option(
        help="Where the regulator's witness listens (https://…).")] = None,
) -> None:
    """Check a participant's request, register it and issue its certificate."""
    try:
        space = open_space(folder)
        enrollment = enroll(space, EnrollmentRequest.model_validate_json(request.read_text()),
                            host, witness_url)
    except (OSError, ValidationError, SpaceError, PkiError) as exc:
        raise fail(str(exc)) from None
    out_file.write_text(enrollment.model_dump_json(indent=2), encoding="utf-8")
    out.print(f"enrolled {enrollment.id}; send it {out_file} and, once everyone is enrolled, "
              "the policy from `medspace space policy`")


@space_app.command("policy")
def policy_command(
    folder: Annotated[Path, typer.Argument(help="The data space folder.")],
) -> None:
    """Write policy.txt: the log key, every witness key, and the consortium quorum."""
    try:
        policy = write_policy(open_space(folder))
    except SpaceError as exc:
        raise fail(str(exc)) from None
    out.print(f"wrote {folder / 'policy.txt'} with {len(policy.witnesses)} witnesses; give it "
              "to every participant")


def serve_hub(
    folder: Annotated[Path, typer.Argument(help="The data space folder.")],
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8443,
) -> None:
    """Run the hub: registry, studies, task broker and the audit log, over mutual TLS."""
    try:
        space = open_space(folder)
        hub = open_hub(space, hub_client(space))
    except (SpaceError, OSError) as exc:
        raise fail(str(exc)) from None
    err.print(f"hub of {space.name} listening on https://{host}:{port}")
    uvicorn.run(create_app(hub), host=host, port=port, log_level="warning",
                **server_options(space.tls))
