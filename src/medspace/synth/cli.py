"""The ``medspace synth`` command: write synthetic hospital exports with a progress bar."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from medspace.synth.population import hospital_sizes
from medspace.synth.profiles import profiles_for
from medspace.synth.writer import BUNDLE_LIMIT, write_exports


def synth(
    out: Annotated[
        Path,
        typer.Argument(
            help="Directory to write into; each hospital gets OUT/<hospital-id>/export/.",
            file_okay=False,
        ),
    ],
    hospitals: Annotated[
        int,
        typer.Option(
            min=1,
            max=63,
            help="Number of hospitals. The first five are the default profiles (two tertiary "
            "centres, a secondary hospital, two primary-care clinics); more cycle them with "
            "perturbed case mix in other provinces.",
        ),
    ] = 5,
    patients: Annotated[
        int,
        typer.Option(
            min=1,
            help="Patients per hospital before scaling by each hospital's relative size "
            "(the default five average 1.0, so the total is about HOSPITALS x PATIENTS).",
        ),
    ] = 1000,
    seed: Annotated[
        int, typer.Option(help="Random seed; the same seed writes byte-identical files.")
    ] = 7,
    bundles: Annotated[
        bool,
        typer.Option(
            help="Also write one FHIR transaction Bundle per patient in export/bundles/ for the "
            f"FHIR hospitals (at most {BUNDLE_LIMIT} patients per hospital).",
        ),
    ] = False,
) -> None:
    """Write synthetic HIS/LIS/EMR exports of several hospitals, deterministically from a seed.

    FHIR hospitals get FHIR R4 Bulk Data NDJSON, one file per resource type.

    Primary-care clinics get HL7 v2.5.1 batch files: ADT^A01, ORU^R01 and RDE^O11.

    Each OUT/<hospital-id>/export/manifest.json holds the hospital's profile, seed and counts.

    Patients have realistic Chinese identities: valid resident ID numbers, real districts, phones.

    Some patients are treated at two or three hospitals, under different local MRNs.
    """
    console = Console()
    sizes = hospital_sizes(profiles_for(hospitals), patients)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console) as bar:
        tasks: dict[str, TaskID] = {
            h: bar.add_task(h, total=n, start=False) for h, n in sizes.items()
        }

        def progress(hospital: str, done: int, total: int) -> None:
            bar.start_task(tasks[hospital])
            bar.update(tasks[hospital], completed=done, total=total)

        try:
            summary = write_exports(out, hospitals, patients, seed, progress, bundles)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from exc
    table = Table(title=f"Synthetic exports in {out} (seed {seed})")
    for column in ("hospital", "format", "patients", "shared", "deaths", "written"):
        table.add_column(column)
    for h in summary.hospitals:
        written = ", ".join(f"{k} {v}" for k, v in h.counts.items())
        table.add_row(
            h.id,
            h.export_format,
            str(h.patients),
            str(h.records["shared_patients"]),
            str(h.records["deaths"]),
            written,
        )
    console.print(table)
    console.print(
        f"{summary.patients} patients in {summary.seconds:.1f} s "
        f"({summary.patients_per_second:,.0f} patients/s)"
    )
