"""The count task: how many patients of a cohort fall in each group, released safely.

A node answers with cells only — never the cohort total, which with the cells would let a
suppressed cell be recomputed — and every non-zero cell below the hospital's minimum is
withheld (DESIGN §6). A cohort, or its complement inside the hospital's data, smaller than the
minimum is refused outright: even a suppressed answer would say too much about so few people.
The groups cover the whole cohort (every person has a sex and an age), so the cohort's size is
the sum of its cells and costs no query of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from medspace.store.cohort import Cohort, CohortError, cohort_size, count_by
from medspace.store.consent import ConsentRule
from medspace.store.engine import ClinicalStore

QUERY_FIELDS = {"cohort", "group_by", "age_band_width"}


class Refusal(ValueError):
    """The node will not answer this query; the reason goes in the log and to the researcher."""


@dataclass(frozen=True)
class DisclosureRules:
    """A hospital's disclosure settings; the defaults are the floor of DESIGN §6."""

    min_cell: int = 5
    min_cohort: int = 5


def count_task(
    store: ClinicalStore, query: dict[str, Any], rules: DisclosureRules, consent: ConsentRule
) -> dict[str, Any]:
    """Answer a count query on ``store`` under ``rules``, counting only the patients whose
    consent lets them count for the study's purpose; raise Refusal when it may not answer.

    The complement rule compares with everyone who may count, so a revoked patient is no
    part of either side."""
    unknown = set(query) - QUERY_FIELDS
    if unknown:
        raise Refusal(f"unknown query fields: {', '.join(sorted(unknown))}")
    try:
        cohort = Cohort.from_mapping(query.get("cohort") or {})
        group_by = list(query.get("group_by") or [])
        width = query.get("age_band_width", 10)
        rows = count_by(store, cohort, group_by, width, consent)
        size = sum(row[-1] for row in rows)
        if size < rules.min_cohort:
            raise Refusal(f"the cohort holds fewer than {rules.min_cohort} patients here")
        everyone = cohort_size(store, Cohort(as_of=cohort.as_of), consent)
        if everyone - size < rules.min_cohort:
            raise Refusal(f"fewer than {rules.min_cohort} patients here are outside the cohort")
    except CohortError as exc:
        raise Refusal(f"malformed query: {exc}") from None
    cells = []
    for *key, count in rows:
        released = count if count == 0 or count >= rules.min_cell else None
        cells.append({"key": [str(k) for k in key], "count": released})
    return {"group_by": group_by, "cells": cells, "min_cell": rules.min_cell}
