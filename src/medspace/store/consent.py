"""Patients' consent per purpose: who a computation for that purpose may count.

A patient's consent lives in the store's ``consent`` table, one row per decision: a purpose
(research, commercial, emergency, public health), ``permit`` or ``deny``, the period it covers
and when the hospital recorded it. Rows come from FHIR Consent resources at ingest and from the
node's own grant and revoke commands; none is ever overwritten, so the table is the patient's
consent history.

On a given day, the decision in force for a purpose is that of the covering row recorded last
(a row without a recording time, from before they were kept, counts as recorded first; among
rows recorded together the later start wins, and a deny beats a permit). Where no row covers
the day, the jurisdiction's default for the purpose decides: ``opt-out`` counts the patient,
``opt-in`` does not. A revocation therefore takes the patient out of every computation from the
day it is recorded, and a later grant brings them back.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

import ibis
import ibis.expr.types as ir

from medspace.store.engine import ClinicalStore
from medspace.store.load import load
from medspace.store.schema import CONSENT_DECISIONS, CONSENT_PURPOSES

__all__ = [
    "ConsentDefault",
    "ConsentError",
    "ConsentRecord",
    "ConsentRule",
    "allowed",
    "history",
    "record",
]

ConsentDefault = Literal["opt-in", "opt-out"]
DEFAULTS: Mapping[str, ConsentDefault] = MappingProxyType({
    "research": "opt-out",
    "public-health": "opt-out",
    "emergency": "opt-out",
    "commercial": "opt-in",
})
"""A default for each purpose, as a jurisdiction that lets patients refuse research use of
de-identified data sets them; a hospital configures its own (``node.json``)."""


class ConsentError(ValueError):
    """A consent decision or rule that cannot be recorded or applied; the message says why."""


@dataclass(frozen=True)
class ConsentRule:
    """What a computation must respect: its purpose, the day it runs and the default."""

    purpose: str
    on: dt.date
    default: ConsentDefault

    def __post_init__(self) -> None:
        if self.purpose not in CONSENT_PURPOSES:
            raise ConsentError(f"unknown purpose {self.purpose!r}; purposes are "
                               f"{', '.join(CONSENT_PURPOSES)}")
        if self.default not in ("opt-in", "opt-out"):
            raise ConsentError(f"a consent default is opt-in or opt-out, not {self.default!r}")


@dataclass(frozen=True)
class ConsentRecord:
    """One decision of a patient, as the history lists it."""

    purpose: str
    decision: str
    start_date: dt.date
    end_date: dt.date | None
    recorded_ms: int | None


def _in_force(store: ClinicalStore, rule: ConsentRule) -> ir.Table:
    """Each person's decision in force for the rule's purpose on its day (one row per person)."""
    consent = store.backend.table("consent")
    day = ibis.literal(rule.on)
    covering = consent.filter(
        consent.purpose == rule.purpose,
        consent.start_date <= day,
        consent.end_date.isnull() | (consent.end_date >= day),
    )
    latest = ibis.row_number().over(
        group_by=covering.person_id,
        order_by=[
            covering.recorded_ms.fill_null(-1).desc(),
            covering.start_date.desc(),
            covering.decision.asc(),  # "deny" sorts before "permit"
        ],
    )
    ranked = covering.mutate(rank=latest)
    return ranked.filter(ranked.rank == 0).select("person_id", "decision")


def allowed(persons: ir.Table, store: ClinicalStore, rule: ConsentRule) -> ir.Table:
    """``persons`` (any table with ``person_id``) less those the rule does not let count."""
    decided = _in_force(store, rule)
    if rule.default == "opt-out":
        return persons.anti_join(decided.filter(decided.decision == "deny"), "person_id")
    return persons.semi_join(decided.filter(decided.decision == "permit"), "person_id")


def record(
    store: ClinicalStore,
    person_id: str,
    purpose: str,
    decision: str,
    *,
    start: dt.date,
    end: dt.date | None = None,
    recorded_ms: int,
) -> None:
    """Add one decision to the patient's history; it is in force from ``start`` on.

    Raises :class:`ConsentError` for an unknown purpose or decision, a period that ends before
    it starts, or a person the store does not hold.
    """
    if purpose not in CONSENT_PURPOSES:
        raise ConsentError(f"unknown purpose {purpose!r}; purposes are "
                           f"{', '.join(CONSENT_PURPOSES)}")
    if decision not in CONSENT_DECISIONS:
        raise ConsentError(f"a decision is {' or '.join(CONSENT_DECISIONS)}, not {decision!r}")
    if end is not None and end < start:
        raise ConsentError(f"the period ends ({end}) before it starts ({start})")
    if not store.lookup("person", "person_id", "person_id", [person_id]):
        raise ConsentError("the store holds no such patient")
    load(store, {"consent": [{
        "person_id": person_id, "purpose": purpose, "decision": decision,
        "start_date": start, "end_date": end, "recorded_ms": recorded_ms,
    }]})


def history(store: ClinicalStore, person_id: str) -> list[ConsentRecord]:
    """Every consent decision of one patient, in the order they were recorded."""
    consent = store.backend.table("consent")
    mine = consent.filter(consent.person_id == person_id).order_by(
        [consent.recorded_ms.fill_null(-1), consent.start_date, consent.purpose]
    )
    rows = store.rows(("consent_history", person_id), lambda: mine.select(
        "purpose", "decision", "start_date", "end_date", "recorded_ms"))
    return [ConsentRecord(purpose, decision, start, end,
                          None if recorded is None else int(recorded))
            for purpose, decision, start, end, recorded in rows]
