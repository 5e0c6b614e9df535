"""The clinical store: bulk loading 1,000,000 persons and counting a cohort over them.

What ``tests/store/bench_load.py`` used to print by hand, now a section of ``make bench``: load
1,000,000 synthetic persons with one to five conditions each into DuckDB through
``medspace.store.load.load`` (checks + one transaction per batch, DuckDB's Arrow scan), then
time ``count_by`` (cohort C34, grouped by sex and age band) and ``cohort_size``; and the same
load into PostgreSQL (``COPY``) when a server is configured, bounded to about a minute.

The rows are made here, fast and deterministic, rather than by ``medspace.synth`` (which writes
realistic FHIR exports at a few thousand patients a second): sex, birth year and month, and
ICD-10 codes drawn from a fixed table of frequencies in which lung cancer (C34) is a few percent
of diagnoses. Person ids are random 128-bit pseudonyms in the store's ``ps:`` form, distributed
like the keyed HMACs the connector writes. ``benchmarks.dataspace`` loads its hospitals with the
same generator.
"""

from __future__ import annotations

import datetime as dt
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from rich.progress import Progress, TaskID

from benchmarks import (
    Budget,
    Figure,
    PostgresUnavailable,
    Target,
    console,
    number,
    postgres_schema,
    progress,
    scratch_dir,
    table,
)
from medspace.store.cohort import Cohort, cohort_size, count_by
from medspace.store.consent import ConsentRule
from medspace.store.engine import ClinicalStore
from medspace.store.load import load

PERSONS = 1_000_000
BATCH = 250_000
POSTGRES_SECONDS = 60.0
QUERY_REPEATS = 5
QUERY_SECONDS = 20.0
CONSENTS = 20_000
"""Persons given a research consent decision (half revocations) before the consent figures."""
CONSENT_TARGET = Target(1.10, "×", higher_is_better=False)
SEED = 7
AS_OF = dt.date(2024, 6, 15)

#: ICD-10 codes and how often each is a recorded diagnosis (normalised below): common chronic
#: conditions dominate, lung cancer (C34.x) is about 4% of diagnoses.
_DIAGNOSES: dict[str, float] = {
    "I10": 20, "E11.9": 12, "E78.5": 11, "K21.0": 8, "M54.5": 8, "I25.1": 7, "J44.9": 6,
    "J45.9": 5, "F32.9": 5, "N18.3": 4, "J18.9": 4, "C34.1": 2, "C34.9": 1.5, "C34.3": 0.5,
    "C50.9": 1.5, "C18.9": 1, "C16.9": 1, "C22.0": 1, "I63.9": 2, "I50.9": 2,
}
_CODES = np.array(list(_DIAGNOSES))
_WEIGHTS = np.array(list(_DIAGNOSES.values())) / sum(_DIAGNOSES.values())
_SEXES = np.array(["female", "male", "unknown"])
_SEX_WEIGHTS = np.array([0.5045, 0.4945, 0.001])
_EPOCH_DAYS = (dt.date(2000, 1, 1) - dt.date(1970, 1, 1)).days


def cohort_query() -> Cohort:
    """The benchmark's cohort: lung cancer (ICD-10 C34) by the day the counts are asked."""
    return Cohort(as_of=AS_OF, condition_prefixes=("C34",))


def pseudonyms(count: int, rng: np.random.Generator) -> pa.Array:
    """``count`` distinct-with-overwhelming-probability person ids ``ps:`` + 32 hex digits."""
    digits = rng.bytes(16 * count).hex()
    return pa.array(["ps:" + digits[i : i + 32] for i in range(0, 32 * count, 32)], pa.string())


def synthetic_batch(count: int, rng: np.random.Generator) -> dict[str, pa.Table]:
    """``count`` persons, each with one to five conditions dated 2000-01-01 .. 2024-08."""
    ids = pseudonyms(count, rng)
    person = pa.table({
        "person_id": ids,
        "sex": pa.array(_SEXES[rng.choice(len(_SEXES), count, p=_SEX_WEIGHTS)]),
        "birth_year": pa.array(rng.integers(1930, 2020, count, dtype=np.int32)),
        "birth_month": pa.array(rng.integers(1, 13, count, dtype=np.int32)),
    })
    owner = np.repeat(np.arange(count), rng.integers(1, 6, count))
    days = rng.integers(0, 9000, len(owner)).astype(np.int32) + _EPOCH_DAYS
    condition = pa.table({
        "person_id": ids.take(pa.array(owner)),
        "condition_source_value": pa.array(_CODES[rng.choice(len(_CODES), len(owner),
                                                             p=_WEIGHTS)]),
        "start_date": pa.array(days, pa.date32()),
    })
    return {"person": person, "condition": condition}


@dataclass
class Loaded:
    """What loading persons into one or more stores took."""

    persons: int = 0
    conditions: int = 0
    generate_seconds: float = 0.0
    load_seconds: float = 0.0

    @property
    def rows(self) -> int:
        """Rows of every table."""
        return self.persons + self.conditions

    def rate(self) -> float:
        """Persons loaded per second of loading (generation excluded)."""
        return self.persons / self.load_seconds if self.load_seconds else float("nan")


def fill(
    stores: list[ClinicalStore], persons: int, rng: np.random.Generator, bar: Progress,
    task: TaskID, budget: Budget | None = None, batch: int = BATCH,
) -> list[Loaded]:
    """Load ``persons`` synthetic persons into every store of ``stores`` (the same rows in each).

    Batches of ``batch`` persons each go through ``load`` once per store; returns one record per
    store. With a ``budget``, loading stops after the batch that spends it (count in persons).
    """
    records = [Loaded() for _ in stores]
    done = 0
    while done < persons and (budget is None or not budget.expired(done)):
        size = min(batch, persons - done)
        started = time.perf_counter()
        rows = synthetic_batch(size, rng)
        made = time.perf_counter() - started
        for store, record in zip(stores, records, strict=True):
            started = time.perf_counter()
            counts = load(store, rows)
            record.load_seconds += time.perf_counter() - started
            record.generate_seconds += made
            record.persons += counts["person"]
            record.conditions += counts["condition"]
        done += size
        bar.update(task, completed=done)
    return records


def timed(call: Callable[[], Any], repeats: int = QUERY_REPEATS,
          seconds: float = QUERY_SECONDS) -> tuple[list[float], Any]:
    """Seconds of each of up to ``repeats`` calls (bounded in time), and the last answer."""
    budget = Budget(repeats, seconds)
    samples: list[float] = []
    answer = None
    while not budget.expired(len(samples)):
        started = time.perf_counter()
        answer = call()
        samples.append(time.perf_counter() - started)
    return samples, answer


def _consents(store: ClinicalStore) -> None:
    """Research decisions for CONSENTS stored persons, every other one a revocation."""
    ids = [row[0] for row in store.rows(("bench_consent_ids", CONSENTS), lambda: store.backend
                                        .table("person").select("person_id").limit(CONSENTS))]
    load(store, {"consent": pa.table({
        "person_id": pa.array(ids, pa.string()),
        "purpose": pa.array(["research"] * len(ids)),
        "decision": pa.array(["deny" if i % 2 else "permit" for i in range(len(ids))]),
        "start_date": pa.array([dt.date(2020, 1, 1)] * len(ids), pa.date32()),
        "recorded_ms": pa.array(range(len(ids)), pa.int64()),
    })})


def _consent_cost(store: ClinicalStore, label: str) -> Figure:
    """count_by with the research consent rule a node applies, against count_by without it."""
    _consents(store)
    cohort = cohort_query()
    rule = ConsentRule("research", AS_OF, "opt-out")
    plain, _ = timed(lambda: count_by(store, cohort, ["sex", "age_band"]))
    filtered, _ = timed(lambda: count_by(store, cohort, ["sex", "age_band"], consent=rule))
    ratio = statistics.median(filtered) / statistics.median(plain)
    return Figure(f"{label}: count_by with consent filtering / without", ratio, "×",
                  target=CONSENT_TARGET,
                  note=f"{statistics.median(filtered) * 1000:,.0f} ms against "
                       f"{statistics.median(plain) * 1000:,.0f} ms; {CONSENTS:,} research "
                       f"decisions, {CONSENTS // 2:,} of them revocations")


def _queries(store: ClinicalStore, label: str, loaded: Loaded) -> list[Figure]:
    """Load rate and the two cohort queries on a filled store, as figures."""
    cohort = cohort_query()
    grouped, groups = timed(lambda: count_by(store, cohort, ["sex", "age_band"]))
    sized, size = timed(lambda: cohort_size(store, cohort))
    share = size / loaded.persons if loaded.persons else float("nan")
    return [
        Figure(f"{label}: load persons + conditions", loaded.rate(), "persons/s",
               note=f"{loaded.persons:,} persons and {loaded.conditions:,} conditions "
                    f"({loaded.rows / loaded.load_seconds:,.0f} rows/s) in "
                    f"{loaded.load_seconds:.1f} s; generating the rows took a further "
                    f"{loaded.generate_seconds:.1f} s"),
        Figure(f"{label}: count_by(C34, sex × age band)", statistics.median(grouped) * 1000,
               "ms", note=f"median of {len(grouped)}, first {grouped[0] * 1000:,.0f} ms; "
                          f"{len(groups)} groups"),
        Figure(f"{label}: cohort_size(C34)", statistics.median(sized) * 1000, "ms",
               note=f"median of {len(sized)}, first {sized[0] * 1000:,.0f} ms; "
                    f"{size:,} persons ({share:.1%})"),
        _consent_cost(store, label),
    ]


def duckdb_figures(directory: Path) -> list[Figure]:
    """Load 1,000,000 persons into a fresh DuckDB file and query it."""
    store = ClinicalStore.open_duckdb(directory / "bench.duckdb")
    try:
        store.create_schema()
        with progress() as bar:
            task = bar.add_task("DuckDB: load 1,000,000 persons", total=PERSONS)
            (loaded,) = fill([store], PERSONS, np.random.default_rng(SEED), bar, task)
        console.print("DuckDB: count_by and cohort_size")
        figures = _queries(store, "DuckDB", loaded)
    finally:
        store.close()
    size = sum(f.stat().st_size for f in directory.glob("bench.duckdb*"))
    figures.append(Figure("DuckDB: file size", size / loaded.rows, "B/row",
                          note=f"{size / 2**20:,.0f} MiB for {loaded.rows:,} rows"))
    return figures


def postgres_figures() -> tuple[list[Figure], str]:
    """The same load through ``COPY`` into a fresh PostgreSQL schema, bounded to about a minute.

    Returns the figures and a sentence on what was measured (or why nothing was).
    """
    try:
        with postgres_schema() as url:
            store = ClinicalStore.open_postgres(url)
            try:
                store.create_schema()
                budget = Budget(PERSONS, POSTGRES_SECONDS)
                with progress() as bar:
                    task = bar.add_task("PostgreSQL: load 1,000,000 persons (COPY)",
                                        total=PERSONS)
                    (loaded,) = fill([store], PERSONS, np.random.default_rng(SEED), bar, task,
                                     budget=budget)
                console.print("PostgreSQL: count_by and cohort_size")
                with store.transaction() as con:
                    con.execute("ANALYZE")
                figures = _queries(store, "PostgreSQL", loaded)
            finally:
                store.close()
    except PostgresUnavailable as exc:
        return [], f"PostgreSQL was not measured: {exc}."
    if loaded.persons < PERSONS:
        what = (f"The PostgreSQL load stopped at its {POSTGRES_SECONDS:.0f} s bound after "
                f"{loaded.persons:,} persons; its queries ran on those.")
    else:
        what = f"PostgreSQL loaded all {loaded.persons:,} persons within its bound."
    return figures, what


def section() -> str:
    """The store's section of docs/benchmarks.md."""
    with scratch_dir() as directory:
        figures = duckdb_figures(directory)
    postgres, postgres_note = postgres_figures()
    return "\n".join([
        "## Clinical store",
        "",
        f"{number(PERSONS)} synthetic persons, each with one to five conditions (ICD-10 codes "
        "drawn from a fixed frequency table in which lung cancer, C34, is about 4% of "
        "diagnoses), loaded through `medspace.store.load.load` in batches of "
        f"{number(BATCH)} persons with their conditions: every batch is checked (columns, "
        "required values, every code against its pattern) and written in one transaction "
        "(DuckDB scans the Arrow table; PostgreSQL receives `COPY`). Load rates exclude "
        "generating the rows. The queries are the store's own: `count_by` of the C34 cohort "
        f"as of {AS_OF.isoformat()} grouped by sex and 10-year age band, and `cohort_size` of "
        f"it; each repeated up to {QUERY_REPEATS} times (at most {QUERY_SECONDS:.0f} s), "
        "median reported. No targets are set here; these were the figures "
        "`tests/store/bench_load.py` printed by hand. " + postgres_note,
        "",
        table(figures + postgres),
    ])
