"""``python -m medspace`` is the ``medspace`` command."""

from medspace.cli import app

app(prog_name="medspace")
