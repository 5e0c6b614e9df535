"""A small data space for the tests: five hospitals with hand-made, countable rows."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from medspace.demo.local import LocalDataSpace
from medspace.demo.local import build as build_local
from medspace.store.engine import ClinicalStore
from medspace.store.load import load
from medspace.store.tokens import person_pseudonym

AS_OF = dt.date(2026, 1, 1)
DataSpace = LocalDataSpace


def hospital_rows(index: int, persons: int) -> dict[str, list[dict[str, Any]]]:
    """A small, deterministic clinical batch: every third person has lung cancer (C34)."""
    rows: dict[str, list[dict[str, Any]]] = {"person": [], "condition": []}
    for n in range(persons):
        person = person_pseudonym(f"H{index}-{n:05d}", b"k" * 32)
        rows["person"].append({"person_id": person, "sex": "female" if n % 2 else "male",
                               "birth_year": 1950 + (n * 7) % 50, "birth_month": 1 + n % 12})
        if n % 3 == 0:
            rows["condition"].append({"person_id": person, "visit_id": None,
                                      "condition_source_value": "C34.1",
                                      "start_date": dt.date(2020, 1, 1)})
    return rows


def build(root: Path, hospitals: int = 5, persons: int = 60) -> LocalDataSpace:
    """The data space with ``persons`` hand-made persons at each hospital; agents not started."""

    def fill(index: int, store: ClinicalStore) -> None:
        load(store, hospital_rows(index, persons))

    return build_local(root, hospitals, fill)
