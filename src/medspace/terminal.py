"""What every ``medspace`` command prints with: results to stdout, problems to stderr.

A command that cannot run says why in one line and exits with 2, so that scripts can tell
"could not check" (2) from "checked, and it is bad" (1).
"""

from __future__ import annotations

import typer
from rich.console import Console

out = Console()
err = Console(stderr=True)


def fail(message: str) -> typer.Exit:
    """Print ``message`` as an error; return the exit (code 2) for the caller to raise."""
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(2)
