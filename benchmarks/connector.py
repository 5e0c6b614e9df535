"""The hospital connector: ingest throughput against the bare parse, and memory on 1 GB.

What is asked of it, and its targets:

* ingest throughput in resources/s (FHIR NDJSON, FHIR Bundles) and messages/s (HL7 v2), each
  against the bare parse of the same files with the same parser library, as a ratio — ≤ 1.5×;
* peak memory while ingesting a 1 GB NDJSON export — < 500 MB (streaming, not loading).

Exports come from ``medspace synth``; each ingest is ``load_export`` into a fresh node (DuckDB
clinical store, SQLite identity vault) exactly as ``medspace node ingest`` runs it.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import hl7

from benchmarks import Figure, Target, console, number, progress, scratch_dir
from benchmarks import table as figure_table
from medspace.connector import IngestReport, load_export
from medspace.connector.hl7v2 import messages
from medspace.sqldb import create_engine, sqlite_url
from medspace.store.engine import ClinicalStore
from medspace.store.vault import IdentityVault
from medspace.synth.writer import HospitalSummary, write_exports

PATIENTS = 2_000
"""Patients per hospital for the throughput runs (scaled by each hospital's size)."""
BUNDLE_PATIENTS = 1_000
BIG_PATIENTS = 50_000
"""About 1 GB of NDJSON: the first hospital's size scales 50,000 to about 80,000 patients, and
8,000 of its patients wrote 102 MB here."""
RATIO_TARGET = Target(1.5, "×", higher_is_better=False)
MEMORY_TARGET = Target(500, "MB", higher_is_better=False)


def ingest(export: Path, node: Path) -> IngestReport:
    """``load_export`` of ``export`` into a fresh node under ``node``."""
    node.mkdir(parents=True, exist_ok=True)
    store = ClinicalStore.open_duckdb(node / "store.duckdb")
    vault = IdentityVault(create_engine(sqlite_url(node / "vault.db")), os.urandom(32))
    try:
        return load_export(export, store, vault, os.urandom(32), os.urandom(32),
                           quarantine_dir=node / "quarantine")
    finally:
        store.close()


def parse_ndjson(export: Path) -> tuple[int, float]:
    """Resources and seconds to ``json.loads`` every line of every NDJSON file."""
    count, started = 0, time.perf_counter()
    for path in export.glob("*.ndjson"):
        with path.open("rb") as handle:
            for line in handle:
                json.loads(line)
                count += 1
    return count, time.perf_counter() - started


def parse_bundles(export: Path) -> tuple[int, float]:
    """Resources and seconds to ``json.loads`` every Bundle file."""
    count, started = 0, time.perf_counter()
    for path in export.glob("*.json"):
        count += len(json.loads(path.read_bytes()).get("entry", []))
    return count, time.perf_counter() - started


def parse_hl7(export: Path) -> tuple[int, float]:
    """Messages and seconds to split the files and ``hl7.parse`` every message."""
    count, started = 0, time.perf_counter()
    for path in export.glob("*.hl7"):
        for _, segments, _problem in messages(path):
            hl7.parse("\r".join(segments))
            count += 1
    return count, time.perf_counter() - started


def throughput(label: str, unit: str, export: Path, node: Path,
               parse: Callable[[Path], tuple[int, float]]) -> list[Figure]:
    """Ingest against bare parse for one export: two figures and the ratio."""
    records, parse_seconds = parse(export)
    report = ingest(export, node)
    ratio = report.seconds / parse_seconds
    return [
        Figure(f"{label}: ingest", records / report.seconds, f"{unit}/s",
               note=f"{records:,} in {report.seconds:.1f} s; {report.patients:,} patients; "
                    f"{report.quarantined:,} quarantined with a reason"),
        Figure(f"{label}: bare parse", records / parse_seconds, f"{unit}/s",
               note=f"{parse_seconds:.2f} s"),
        Figure(f"{label}: ingest / bare parse", ratio, "×", target=RATIO_TARGET),
    ]


def peak_memory(export: Path, node: Path) -> tuple[float, float]:
    """Peak resident MB and seconds of an ingest of ``export`` in a process of its own."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "benchmarks.connector", str(export), str(node)],
                          check=True, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    return float(json.loads(done.stdout.splitlines()[-1])["peak_mb"]), seconds


def section() -> str:
    """The connector's section of docs/benchmarks.md."""
    figures: list[Figure] = []
    with scratch_dir() as directory, progress() as bar:
        task = bar.add_task("connector: writing exports", total=None)
        written = write_exports(directory / "exports", 5, PATIENTS, seed=5)
        fhir = next(h for h in written.hospitals if h.export_format == "fhir-ndjson")
        hl7_hospital = next(h for h in written.hospitals if h.export_format == "hl7v2")
        bundled = write_exports(directory / "bundled", 1, BUNDLE_PATIENTS, seed=6, bundles=True)
        bar.update(task, description="connector: FHIR NDJSON, Bundles, HL7 v2 ingests")
        figures += throughput("FHIR R4 bulk NDJSON", "resources", fhir.directory,
                              directory / "n1", parse_ndjson)
        figures += throughput("FHIR R4 transaction Bundles", "resources",
                              bundled.hospitals[0].directory / "bundles", directory / "n2",
                              parse_bundles)
        figures += throughput("HL7 v2", "messages", hl7_hospital.directory, directory / "n3",
                              parse_hl7)
        bar.update(task, description="connector: writing a 1 GB NDJSON export")
        big = _big_export(directory / "big")
        size = sum(p.stat().st_size for p in big.directory.glob("*.ndjson"))
        bar.update(task, description=f"connector: ingesting {size / 1e9:.2f} GB in a process "
                                     "of its own")
        peak, seconds = peak_memory(big.directory, directory / "n4")
    figures.append(Figure(f"peak memory ingesting {size / 1e9:.2f} GB of NDJSON", peak, "MB",
                          target=MEMORY_TARGET,
                          note=f"maximum resident set of the ingesting process; {big.patients:,} "
                               f"patients in {seconds:.0f} s"))
    console.print(f"connector: {len(figures)} figures")
    ratios = [f for f in figures if f.unit == "×"]
    worst = max(ratios, key=lambda f: f.value)
    return "\n".join([
        "## Hospital connector",
        "",
        "Exports written by `medspace synth` (seed fixed): the FHIR R4 bulk NDJSON and the HL7 v2 "
        f"batch files of five hospitals of about {PATIENTS:,} patients each (scaled by size), "
        f"and one transaction Bundle per patient for {BUNDLE_PATIENTS:,} more. Each export is "
        "ingested with `load_export` into a fresh node — routed by patient, mapped, checked, "
        "identities encrypted into the vault, rows written to DuckDB in one transaction per "
        "batch — as `medspace node ingest` does. *Bare parse* reads the same files with the "
        "same parser and nothing else: `json.loads` per NDJSON line or Bundle file, "
        "`hl7.parse` (python-hl7) per message. The memory run ingests about 1 GB of NDJSON "
        "in a process of its own and reads its peak resident set. Targets are the project's.",
        "",
        figure_table(figures),
        f"Reading it: the furthest from the ≤ 1.5× target is {worst.name.split(':')[0]}, whose "
        f"ingest takes {worst.value:.1f}× its bare parse: besides parsing, the ingest spills "
        "every record to its patient's batch file, maps and checks it, encrypts identities "
        "into the vault and writes the rows, all in one Python process. Peak memory while "
        f"ingesting {size / 1e9:.2f} GB: {number(peak)} MB.",
        "",
    ])


def _big_export(directory: Path) -> HospitalSummary:
    written = write_exports(directory, 1, BIG_PATIENTS, seed=8)
    return written.hospitals[0]


if __name__ == "__main__":
    ingest(Path(sys.argv[1]), Path(sys.argv[2]))
    print(json.dumps({"peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
