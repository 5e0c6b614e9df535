"""The ``medspace`` command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from medspace.ledger.cli import app as ledger_app
from medspace.ledger.cli import serve_witness

app = typer.Typer(
    help="medspace: a trusted medical data space. Records stay in hospitals; answers and a "
    "witnessed audit log come out.",
    no_args_is_help=True,
)
app.add_typer(ledger_app, name="ledger")
app.command("witness")(serve_witness)


@app.command()
def demo(
    workdir: Annotated[
        Path, typer.Option(help="Where the demo keeps everything; a re-run continues it.")
    ] = Path("medspace-demo"),
    serve: Annotated[
        bool, typer.Option(help="Stay up after the scenarios and print the URLs.")
    ] = False,
) -> None:
    """Run the data space's audit ledger on this machine and verify it end to end."""
    from medspace.demo import run_demo

    raise typer.Exit(run_demo(workdir, serve))
