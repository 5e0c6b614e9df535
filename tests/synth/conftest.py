"""One small export shared by the synth tests, so the suite writes files only once."""

from __future__ import annotations

from pathlib import Path

import pytest

from medspace.synth import ExportSummary, write_exports

SEED = 7


@pytest.fixture(scope="session")
def export(tmp_path_factory: pytest.TempPathFactory) -> ExportSummary:
    """Five hospitals of about 300 patients each, with transaction Bundles."""
    return write_exports(tmp_path_factory.mktemp("synth"), 5, 300, SEED, bundles=True)


@pytest.fixture(scope="session")
def export_dir(export: ExportSummary) -> Path:
    return export.out_dir
