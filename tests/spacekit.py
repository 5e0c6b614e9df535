"""A small data space for the tests: five hospitals with hand-made, countable rows."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from medspace.demo.local import LocalDataSpace, countable_rows
from medspace.demo.local import build as build_local
from medspace.store.engine import ClinicalStore
from medspace.store.load import load

AS_OF = dt.date(2026, 1, 1)
DataSpace = LocalDataSpace


def build(root: Path, hospitals: int = 5, persons: int = 60) -> LocalDataSpace:
    """The data space with ``persons`` hand-made persons at each hospital; agents not started."""

    def fill(index: int, store: ClinicalStore) -> None:
        load(store, countable_rows(index, persons))

    return build_local(root, hospitals, fill)
