"""What an ingest did: records loaded and quarantined per type, speed, and data quality.

The report holds counts and categories only, never a record's content, so it can be shown,
logged or sent to the hub without disclosing anyone.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from medspace.store.engine import ClinicalStore
from medspace.store.schema import TABLES

_BOOKKEEPING = frozenset({"person_key", "ingest_progress"})


@dataclass(frozen=True)
class DataQuality:
    """The store's state after an ingest: rows per table and two completeness measures."""

    rows: dict[str, int]
    persons_with_condition: float
    """Share of persons with at least one condition (0–1)."""
    measurements_with_unit: float
    """Share of lab measurements that carry a unit (0–1)."""
    missing: dict[str, dict[str, float]] = field(default_factory=dict)
    """Per table, the share of rows (0–1) whose optional column is empty, for the columns
    that are empty at least once: an end date never sent, a result without a visit."""

    @classmethod
    def measure(cls, store: ClinicalStore) -> DataQuality:
        """Compute the measures with small aggregate queries (one per table for missingness)."""
        rows = {t: n for t, n in store.row_counts().items() if t not in _BOOKKEEPING}
        persons = rows.get("person", 0)
        cond = store.backend.table("condition")
        with_condition = cond.person_id.nunique().to_pyarrow().as_py() if persons else 0
        meas = store.backend.table("measurement")
        with_unit = meas.unit_source_value.notnull().sum().to_pyarrow().as_py() or 0
        total = rows.get("measurement", 0)
        return cls(
            rows=rows,
            persons_with_condition=with_condition / persons if persons else 0.0,
            measurements_with_unit=with_unit / total if total else 0.0,
            missing=_missing(store, rows),
        )


def _missing(store: ClinicalStore, rows: dict[str, int]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for table in TABLES:
        optional = [c.name for c in table.columns if c.nullable and c.name != "record_id"]
        if not optional or not rows.get(table.name):
            continue
        t = store.backend.table(table.name)
        counts = t.aggregate([t[c].count().name(c) for c in optional]).to_pyarrow()
        shares = {c: 1 - counts.column(c)[0].as_py() / rows[table.name] for c in optional}
        if any(shares.values()):
            out[table.name] = {c: round(v, 4) for c, v in shares.items() if v}
    return out


@dataclass
class IngestReport:
    """Counts of one :func:`medspace.connector.load_export` run."""

    export_dir: Path
    export_format: str
    quarantine_file: Path
    patients: int = 0
    """Patients new to the store."""
    patients_updated: int = 0
    """Patients the store already held, whose records this run added to or updated."""
    duplicates: int = 0
    """Source records given more than once (the same resource twice, a segment an A08
    repeats): kept once."""
    merged: int = 0
    """Patients merged into another (HL7 A40)."""
    withdrawn: int = 0
    """Records their source withdrew (entered in error, a consent no longer in force): the
    rows an earlier version loaded were removed."""
    batches_resumed: int = 0
    """Batches an interrupted earlier run had committed, not loaded again."""
    already_loaded: bool = False
    """The export, unchanged, had been loaded to the end before: nothing was read."""
    batches: int = 0
    rows: Counter[str] = field(default_factory=Counter)
    """Rows written per clinical table by this run."""
    loaded: Counter[str] = field(default_factory=Counter)
    """Source records loaded, per resource type or HL7 segment."""
    quarantined_by_kind: Counter[str] = field(default_factory=Counter)
    quarantined_by_reason: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    """Source records deliberately not loaded (free-text notes), per type."""
    seconds: float = 0.0
    quality: DataQuality | None = None

    @property
    def quarantined(self) -> int:
        """Source records rejected in this run."""
        return sum(self.quarantined_by_reason.values())

    @property
    def records(self) -> int:
        """Source records handled: loaded, quarantined or skipped."""
        return sum(self.loaded.values()) + self.quarantined + sum(self.skipped.values())

    @property
    def records_per_second(self) -> float:
        """Throughput over the whole run, reading to commit."""
        return self.records / self.seconds if self.seconds else 0.0

    def to_dict(self) -> dict[str, Any]:
        """The report as plain JSON-ready data (counts and paths only)."""
        return {
            "export": str(self.export_dir),
            "format": self.export_format,
            "patients_new": self.patients,
            "patients_updated": self.patients_updated,
            "duplicates_merged": self.duplicates,
            "patients_merged": self.merged,
            "records_withdrawn": self.withdrawn,
            "batches_resumed": self.batches_resumed,
            "already_loaded": self.already_loaded,
            "batches": self.batches,
            "records": self.records,
            "seconds": round(self.seconds, 3),
            "records_per_second": round(self.records_per_second, 1),
            "rows_written": dict(self.rows),
            "loaded": dict(self.loaded),
            "quarantined": self.quarantined,
            "quarantined_by_reason": dict(self.quarantined_by_reason),
            "quarantined_by_kind": dict(self.quarantined_by_kind),
            "quarantine_file": str(self.quarantine_file),
            "not_loaded": dict(self.skipped),
            "quality": None if self.quality is None else asdict(self.quality),
        }

    def to_text(self) -> str:
        """A short plain-text summary for a console or a log."""
        if self.already_loaded:
            return (f"ingest of {self.export_dir} ({self.export_format}): loaded before and"
                    " unchanged since, nothing to do")
        lines = [
            f"ingest of {self.export_dir} ({self.export_format})",
            f"  patients: {self.patients:,} new, {self.patients_updated:,} updated,"
            f" {self.merged:,} merged into another; in {self.batches} batches"
            f" ({self.batches_resumed} committed by an interrupted run before)",
            f"  duplicate records kept once: {self.duplicates:,};"
            f" withdrawn by their source: {self.withdrawn:,}",
            f"  source records: {self.records:,} in {self.seconds:.1f} s"
            f" ({self.records_per_second:,.0f} records/s)",
            "  loaded per type: " + _counts(self.loaded),
            f"  quarantined: {self.quarantined:,} → {self.quarantine_file}",
        ]
        if self.quarantined:
            lines.append("    by reason: " + _counts(self.quarantined_by_reason))
            lines.append("    by type: " + _counts(self.quarantined_by_kind))
        if self.skipped:
            lines.append("  not loaded (no place in the store): " + _counts(self.skipped))
        if self.quality is not None:
            q = self.quality
            lines += [
                "  store rows: " + _counts(Counter(q.rows)),
                f"  persons with ≥1 condition: {q.persons_with_condition:.1%};"
                f" lab results with a unit: {q.measurements_with_unit:.1%}",
            ]
            lines += [f"  empty in {table}: " + ", ".join(f"{c} {v:.1%}" for c, v in cols.items())
                      for table, cols in sorted(q.missing.items())]
        return "\n".join(lines)


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in sorted(counter.items())) or "none"


def write_html(path: Path, node: str, reports: list[IngestReport]) -> None:
    """Write the ingest reports as one HTML page: counts, reasons and store coverage only."""
    environment = Environment(loader=PackageLoader("medspace.connector", "templates"),
                              autoescape=select_autoescape(["html", "j2"]))
    path.write_text(environment.get_template("ingest.html.j2").render(
        node=node, generated=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        reports=[r.to_dict() for r in reports]), encoding="utf-8")
