"""The ``synth`` command writes exports and explains itself."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from typer.testing import CliRunner

from medspace.synth.cli import synth

app = typer.Typer()
app.command()(synth)


def test_synth_command_writes_every_hospital_and_reports_the_rate(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, [str(tmp_path), "--hospitals", "6", "--patients", "40", "--seed", "3"]
    )
    assert result.exit_code == 0, result.output
    assert "patients/s" in result.output
    manifests = sorted(tmp_path.glob("*/export/manifest.json"))
    assert [m.parent.parent.name for m in manifests] == [f"hospital-{c}" for c in "abcdef"]
    assert json.loads(manifests[0].read_text(encoding="utf-8"))["seed"] == 3


def test_synth_help_describes_formats_and_options() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    for word in ("NDJSON", "HL7", "manifest", "--hospitals", "--patients", "--seed", "--bundles"):
        assert word in result.output


def test_synth_refuses_bundles_for_large_exports(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, [str(tmp_path), "--patients", "20000", "--bundles"])
    assert result.exit_code != 0
    assert not list(tmp_path.glob("*/export/*.ndjson"))
