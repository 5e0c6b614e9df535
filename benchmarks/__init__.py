"""Benchmarks of medspace: ``make bench`` runs them all and writes ``docs/benchmarks.md``.

Every module in this package that defines ``section() -> str`` is a benchmark; ``__main__``
runs each one and puts the markdown it returns under a header describing the machine. This
module holds what they share: figures with their targets rendered as markdown tables, rich
progress bars, bounded loops, scratch space and a fresh PostgreSQL schema per measurement.

Benchmarks report figures; they never assert on them. A figure that misses its target is a
finding to read in the table, not a failure of the run.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import sqlalchemy as sa
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from medspace.sqldb import create_engine

console = Console(stderr=True)
"""Where progress and status go; stdout stays free for whoever pipes ``make bench``."""

PG_ENV = "MEDSPACE_TEST_PG"

T = TypeVar("T")


@dataclass(frozen=True)
class Target:
    """What a figure should reach, and which side of it is good."""

    value: float
    unit: str
    higher_is_better: bool = True

    def __str__(self) -> str:
        sign = "≥" if self.higher_is_better else "≤"
        return f"{sign} {number(self.value)} {self.unit}"

    def met_by(self, figure: float) -> bool:
        """Whether ``figure`` reaches the target."""
        return figure >= self.value if self.higher_is_better else figure <= self.value


@dataclass(frozen=True)
class Figure:
    """One measured number, with its target and in-run baseline when it has them.

    ``baseline`` is this figure divided by a reference measured in the same run (e.g. batched
    over single appends), so the ratio holds even when the machine is slower or faster.
    """

    name: str
    value: float
    unit: str
    target: Target | None = None
    baseline: float | None = None
    note: str = ""


def number(value: float) -> str:
    """A figure rounded for reading: thousands separated, three significant digits below 100."""
    if value != value:  # NaN: nothing was measured
        return "n/a"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def table(figures: list[Figure]) -> str:
    """A markdown table of ``figures``: figure, target, ratio, whether it meets it, notes.

    The in-run baseline column appears only when some figure has one.
    """
    with_baseline = any(f.baseline is not None for f in figures)
    head = ["Measurement", "Figure", "Target", "Figure / target", "Meets target"]
    if with_baseline:
        head.append("vs in-run baseline")
    head.append("Notes")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for f in figures:
        cells = [f.name, f"{number(f.value)} {f.unit}".strip()]
        if f.target is None:
            cells += ["—", "—", "—"]
        else:
            meets = "yes" if f.target.met_by(f.value) else "**no**"
            cells += [str(f.target), f"{f.value / f.target.value:.2f}", meets]
        if with_baseline:
            cells.append("—" if f.baseline is None else f"×{f.baseline:.1f}")
        cells.append(f.note)
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines) + "\n"


def progress() -> Progress:
    """A progress display on stderr that stays on screen, so a slow step shows where it was."""
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


class Budget:
    """A loop bound in count and in time: every benchmark loop stops at whichever comes first."""

    def __init__(self, count: int, seconds: float) -> None:
        self.count = count
        self.seconds = seconds
        self.start = time.perf_counter()
        self.deadline = self.start + seconds

    def expired(self, done: int) -> bool:
        """Whether ``done`` iterations exhaust the budget (count reached or time up)."""
        return done >= self.count or time.perf_counter() >= self.deadline

    def elapsed(self) -> float:
        """Seconds since the budget started."""
        return time.perf_counter() - self.start


def best_of(run: Callable[[], T], repeats: int) -> tuple[float, T]:
    """The fastest of ``repeats`` (at least one) timed runs, the least disturbed, and a result."""
    started = time.perf_counter()
    result = run()
    best = time.perf_counter() - started
    for _ in range(repeats - 1):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best, result


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0..100) by linear interpolation; NaN when nothing was measured."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@contextmanager
def scratch_dir() -> Iterator[Path]:
    """A private directory for databases and keys, removed afterwards even on failure."""
    with tempfile.TemporaryDirectory(prefix="medspace-bench-") as path:
        yield Path(path)


def fsync_latency(directory: Path, count: int = 200) -> float:
    """Median seconds of a 4 KiB write plus fsync in ``directory``.

    Durable appends cost at least one fsync, so this bounds single appends from above and says
    whether a disk (or a virtual disk's write cache) explains a slow figure.
    """
    path = directory / "fsync.probe"
    samples: list[float] = []
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        budget = Budget(count, 5.0)
        while not budget.expired(len(samples)):
            start = time.perf_counter()
            os.write(fd, b"\0" * 4096)
            os.fsync(fd)
            samples.append(time.perf_counter() - start)
    finally:
        os.close(fd)
        path.unlink()
    return statistics.median(samples)


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server to measure: the variable is unset or the server does not answer."""


def postgres_base_url() -> str:
    """The server URL from MEDSPACE_TEST_PG, once it answers; PostgresUnavailable otherwise."""
    url = os.environ.get(PG_ENV)
    if not url:
        raise PostgresUnavailable(f"{PG_ENV} is not set")
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
    except sa.exc.OperationalError as exc:
        raise PostgresUnavailable(f"the server at {PG_ENV} does not answer: {exc.orig}") from None
    finally:
        engine.dispose()
    return url


def postgres_version() -> str:
    """The server's version and durability settings, or why there is none to report.

    Durable appends on PostgreSQL mean something only with fsync and synchronous_commit on.
    """
    try:
        engine = create_engine(postgres_base_url())
    except PostgresUnavailable as exc:
        return f"not measured ({exc})"
    try:
        with engine.connect() as conn:
            version = conn.execute(sa.text("show server_version")).scalar()
            settings = [
                f"{name}={conn.execute(sa.text(f'show {name}')).scalar()}"
                for name in ("fsync", "synchronous_commit", "wal_sync_method")
            ]
    finally:
        engine.dispose()
    return f"{version}; {', '.join(settings)}"


@contextmanager
def postgres_schema() -> Iterator[str]:
    """The URL of a fresh, empty schema on the PostgreSQL server, dropped afterwards.

    One log per database is the store's rule, so every measurement gets its own schema, the way
    the tests do (tests/conftest.py).
    """
    base = postgres_base_url()
    schema = f"bench_{uuid.uuid4().hex[:16]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = sa.make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
