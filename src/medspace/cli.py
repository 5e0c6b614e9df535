"""The ``medspace`` command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from medspace.deid.cli import deid_app
from medspace.demo import run_demo
from medspace.hub.cli import init_command, serve_hub, space_app
from medspace.ledger.cli import app as ledger_app
from medspace.ledger.cli import serve_witness
from medspace.node.cli import node_app
from medspace.pki.cli import participant_app
from medspace.synth.cli import synth

app = typer.Typer(
    help="medspace: a trusted medical data space. Records stay in hospitals; answers and a "
    "witnessed audit log come out.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)
app.command("init")(init_command)
app.add_typer(space_app, name="space")
app.add_typer(node_app, name="node")
app.add_typer(participant_app, name="participant")
app.add_typer(ledger_app, name="ledger")
app.add_typer(deid_app, name="deid")
app.command("hub")(serve_hub)
app.command("witness")(serve_witness)
app.command("synth")(synth)


@app.command()
def demo(
    workdir: Annotated[
        Path, typer.Option(help="Where the demo keeps everything; a re-run continues it.")
    ] = Path("medspace-demo"),
    patients: Annotated[
        int, typer.Option(min=50, help="Patients per hospital (scaled by each hospital's size).")
    ] = 2000,
    serve: Annotated[
        bool, typer.Option(help="Stay up after the scenarios and print the URLs.")
    ] = False,
) -> None:
    """Run the whole data space on this machine: five hospitals, a study, the audit."""
    raise typer.Exit(run_demo(workdir, patients, serve))
