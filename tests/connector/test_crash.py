"""``kill -9`` in the middle of an ingest, then a re-run: exactly the store of an uninterrupted
run, for a kill inside a store transaction and for one between the vault and the store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from medspace.connector import load_export
from medspace.sqldb import create_engine, sqlite_url
from medspace.store.engine import ClinicalStore
from medspace.store.vault import IdentityVault
from medspace.synth.writer import ExportSummary

NODE_KEY, VAULT_KEY, LINKAGE_KEY = b"N" * 32, b"V" * 32, b"L" * 32
BATCH = 15

#: Run in a child process: load the export, and SIGKILL itself at the chosen point.
CHILD = """
import importlib, os, signal, sys
from pathlib import Path
from medspace.connector import ingest, load_export
from medspace.sqldb import create_engine, sqlite_url
from medspace.store.engine import ClinicalStore
from medspace.store.vault import IdentityVault

export, folder, where, nth = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
calls = {"n": 0}

def dies_on_nth(real):
    def call(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == nth:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(*args, **kwargs)
    return call

store_load_module = importlib.import_module("medspace.store.load")
if where == "inside-transaction":
    store_load_module._insert_duckdb = dies_on_nth(store_load_module._insert_duckdb)
else:
    ingest.store_load = dies_on_nth(ingest.store_load)
store = ClinicalStore.open_duckdb(folder / "clinical.duckdb")
vault = IdentityVault(create_engine(sqlite_url(folder / "vault.db")), b"V" * 32)
load_export(export, store, vault, b"N" * 32, b"L" * 32, batch_size=int(sys.argv[5]),
            quarantine_dir=folder / "quarantine")
"""


def _load(export: Path, folder: Path) -> None:
    store = ClinicalStore.open_duckdb(folder / "clinical.duckdb")
    try:
        load_export(export, store, _vault(folder), NODE_KEY, LINKAGE_KEY, batch_size=BATCH,
                    quarantine_dir=folder / "quarantine")
    finally:
        store.close()


def _vault(folder: Path) -> IdentityVault:
    return IdentityVault(create_engine(sqlite_url(folder / "vault.db")), VAULT_KEY)


def _state(folder: Path) -> dict[str, Any]:
    """Every store row, every identity and the quarantine, in a comparable form."""
    store = ClinicalStore.open_duckdb(folder / "clinical.duckdb")
    try:
        con = store.backend.con
        rows = {t: sorted(map(tuple, con.execute(f"SELECT * FROM {t}").fetchall()), key=repr)
                for t in store.table_names() if t != "ingest_progress"}
    finally:
        store.close()
    vault = _vault(folder)
    identities = {pid: repr(vault.get(pid).to_bytes()) for (pid, *_rest) in rows["person"]}
    quarantine = sorted(
        line for path in sorted((folder / "quarantine").glob("*.ndjson"))
        for line in path.read_text(encoding="utf-8").splitlines())
    return {"rows": rows, "identities": identities, "quarantine": quarantine}


@pytest.mark.parametrize("export_format", ["fhir-ndjson", "hl7v2"])
@pytest.mark.parametrize(("where", "nth"), [("inside-transaction", 16), ("before-store", 2)])
def test_kill_9_mid_ingest_and_a_rerun_give_the_store_of_an_uninterrupted_run(
    exports: ExportSummary, tmp_path: Path, export_format: str, where: str, nth: int
) -> None:
    export = next(h.directory for h in exports.hospitals if h.export_format == export_format)
    calm, crashed = tmp_path / "calm", tmp_path / "crashed"
    calm.mkdir()
    crashed.mkdir()
    _load(export, calm)
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(export), str(crashed), where, str(nth), str(BATCH)],
        capture_output=True, text=True, timeout=300, env={**os.environ, "TMPDIR": str(tmp_path)},
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    interrupted = _state(crashed)
    assert 0 < len(interrupted["rows"]["person"]) < len(_state(calm)["rows"]["person"])
    _load(export, crashed)
    assert _state(crashed) == _state(calm)
