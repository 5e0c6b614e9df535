"""Bench: load N synthetic persons with a few conditions each into DuckDB, then count by group.

Run with ``.venv/bin/python -m tests.store.bench_load [persons] [--postgres URL]``. The rows
are deliberately simple (uniform sex, birth years and codes); realistic synthetic patients come
from the synthetic-data package. Prints the load and query wall times; no thresholds.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import hmac
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from medspace.store.cohort import Cohort, cohort_size, count_by
from medspace.store.engine import ClinicalStore
from medspace.store.load import load

_KEY = b"bench-node-key-bench-node-key-32"
_ICD10 = np.array(["C34.1", "C34.9", "E11.9", "I10", "J45.9", "C50.9", "N18.3", "K21.0"])
_EPOCH = dt.date(2000, 1, 1)


def _pseudonyms(start: int, count: int) -> list[str]:
    return [
        "ps:" + hmac.new(_KEY, f"MRN{i}".encode(), hashlib.sha256).hexdigest()[:32]
        for i in range(start, start + count)
    ]


def synthetic_batch(start: int, count: int, rng: np.random.Generator) -> dict[str, pa.Table]:
    """``count`` persons numbered from ``start``, each with one to five conditions."""
    ids = pa.array(_pseudonyms(start, count))
    person = pa.table(
        {
            "person_id": ids,
            "sex": pa.array(np.where(rng.random(count) < 0.5, "female", "male")),
            "birth_year": pa.array(rng.integers(1930, 2020, count, dtype=np.int32)),
            "birth_month": pa.array(rng.integers(1, 13, count, dtype=np.int32)),
        }
    )
    per_person = rng.integers(1, 6, count)
    owner = np.repeat(np.arange(count), per_person)
    days = rng.integers(0, 9000, len(owner)).astype("int32")
    condition = pa.table(
        {
            "person_id": ids.take(pa.array(owner)),
            "condition_source_value": pa.array(_ICD10[rng.integers(0, len(_ICD10), len(owner))]),
            "start_date": pa.array(days + (_EPOCH - dt.date(1970, 1, 1)).days, pa.date32()),
        }
    )
    return {"person": person, "condition": condition}


def main() -> None:
    """Load, query, print timings."""
    parser = argparse.ArgumentParser()
    parser.add_argument("persons", type=int, nargs="?", default=1_000_000)
    parser.add_argument("--batch", type=int, default=250_000)
    parser.add_argument("--postgres", help="a postgresql:// URL (an empty schema) to bench instead")
    args = parser.parse_args()
    rng = np.random.default_rng(7)
    with tempfile.TemporaryDirectory() as tmp:
        store = ClinicalStore.open(args.postgres or Path(tmp) / "bench.duckdb")
        store.create_schema()
        started = time.perf_counter()
        made = 0.0
        conditions = 0
        for start in range(0, args.persons, args.batch):
            t0 = time.perf_counter()
            batch = synthetic_batch(start, min(args.batch, args.persons - start), rng)
            made += time.perf_counter() - t0
            conditions += load(store, batch)["condition"]
        loading = time.perf_counter() - started - made
        cohort = Cohort(as_of=dt.date(2024, 6, 15), condition_prefixes=["C34"])
        t0 = time.perf_counter()
        groups = count_by(store, cohort, ["sex", "age_band"])
        grouped = time.perf_counter() - t0
        t0 = time.perf_counter()
        size = cohort_size(store, cohort)
        sized = time.perf_counter() - t0
        store.close()
    print(f"engine: {store.kind}; persons: {args.persons:,}; conditions: {conditions:,}")
    print(f"generate rows: {made:.2f} s; load (checks + insert): {loading:.2f} s")
    print(f"count_by(C34, sex x age_band): {grouped * 1000:.0f} ms, {len(groups)} groups")
    print(f"cohort_size(C34): {sized * 1000:.0f} ms -> {size:,}")


if __name__ == "__main__":
    main()
