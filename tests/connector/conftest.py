"""A small synthetic data space: three FHIR and two HL7 v2 hospitals, loaded into fresh nodes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from medspace.connector import IngestReport, load_export
from medspace.sqldb import create_engine, sqlite_url
from medspace.store.engine import ClinicalStore
from medspace.store.vault import IdentityVault
from medspace.synth.writer import ExportSummary, write_exports

LINKAGE_KEY = b"L" * 32


@dataclass
class Node:
    """One hospital's node: its store, vault and keys."""

    folder: Path
    store: ClinicalStore
    vault: IdentityVault
    node_key: bytes

    def load(self, export_dir: Path, **options: object) -> IngestReport:
        return load_export(
            export_dir, self.store, self.vault, self.node_key, LINKAGE_KEY, **options
        )


def open_node(folder: Path) -> Node:
    """A fresh node under ``folder`` (store, vault, random node and vault keys)."""
    store = ClinicalStore.open_duckdb(folder / "clinical.duckdb")
    vault = IdentityVault(create_engine(sqlite_url(folder / "vault.db")), os.urandom(32))
    return Node(folder, store, vault, os.urandom(32))


@pytest.fixture(scope="session")
def exports(tmp_path_factory: pytest.TempPathFactory) -> ExportSummary:
    """Five hospitals (three FHIR, two HL7 v2), about 50 patients each, with shared patients."""
    return write_exports(tmp_path_factory.mktemp("exports"), 5, 50, seed=11)


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    """A fresh, empty node."""
    opened = open_node(tmp_path / "node")
    yield opened
    opened.store.close()
