"""Source-neutral patient facts to the clinical store's rows, each row checked before loading.

The FHIR and HL7 v2 readers both turn a record into a :class:`Fact` (a row for one table, minus
the pseudonymous ``person_id``) or a :class:`PersonFacts` (the identity and the person row's
values); this module owns what is common: the keyed ``person_id`` and visit ids, the code
normalisation, the row checks against the store's declared column forms (so that one bad value
quarantines one record instead of failing a whole batch) and the observation period.
"""

from __future__ import annotations

import datetime as dt
import hmac
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from medspace.connector.quarantine import Rejected
from medspace.store.codes import CodeError, normalise_atc, normalise_icd10, normalise_loinc
from medspace.store.schema import TABLES_BY_NAME
from medspace.store.tokens import TokenError, linkage_token, person_pseudonym
from medspace.store.vault import Identity

_PATTERNS = {
    (table.name, column.name): re.compile(column.pattern)
    for table in TABLES_BY_NAME.values()
    for column in table.columns
    if column.pattern is not None
}
#: Required columns a fact must carry itself (ids are filled in when the batch is assembled).
_REQUIRED = {
    table.name: tuple(
        c.name for c in table.columns if not c.nullable and c.name not in ("person_id", "visit_id")
    )
    for table in TABLES_BY_NAME.values()
}
_MIN_BIRTH_YEAR = 1850


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a record came from: file, line or message number, and its kind (type or segment)."""

    source: str
    position: int
    kind: str


@dataclass(frozen=True, slots=True)
class Fact:
    """One clinical row without its ``person_id``; ``visit_ref`` is the source's encounter id."""

    table: str
    row: dict[str, Any]
    origin: Origin
    visit_ref: str | None = None


@dataclass(frozen=True, slots=True)
class PersonFacts:
    """A patient's identity (for the vault) and the values of their ``person`` row."""

    identity: Identity
    sex: str
    birth_date: dt.date
    death_date: dt.date | None


def icd10(code: str) -> str:
    """The stored form of an ICD-10 code, or :class:`Rejected` as an invalid ICD-10 code."""
    try:
        return normalise_icd10(code)
    except CodeError:
        raise Rejected("invalid ICD-10 code", code) from None


def atc(code: str) -> str:
    """The stored form of an ATC code, or :class:`Rejected` as an invalid ATC code."""
    try:
        return normalise_atc(code)
    except CodeError:
        raise Rejected("invalid ATC code", code) from None


def loinc(code: str) -> str:
    """A LOINC code whose check digit holds, or :class:`Rejected` as an invalid LOINC code."""
    try:
        return normalise_loinc(code)
    except CodeError as exc:
        raise Rejected("invalid LOINC code", str(exc)) from None


def unexpected_shape(exc: Exception) -> Rejected:
    """The rejection of a record whose fields have the wrong types or structure.

    Mapping code reads fields as the standard defines them; a record that breaks that (a list
    where a string belongs, a number for an object) surfaces as a Python error, which names the
    problem well enough for the quarantine.
    """
    return Rejected("wrong type or structure", f"{type(exc).__name__}: {exc}"[:500])


def required(value: Any, what: str) -> Any:
    """``value`` unless it is empty; then the record is missing a required field."""
    if value is None or value == "" or value == [] or value == {}:
        raise Rejected("missing required field", what)
    return value


def check_row(table: str, row: dict[str, Any]) -> None:
    """Refuse a row the store would refuse: an empty required value or a value out of form."""
    for name in _REQUIRED[table]:
        if row.get(name) is None:
            raise Rejected("missing required field", f"{table}.{name}")
    for name, value in row.items():
        pattern = _PATTERNS.get((table, name))
        if pattern is not None and value is not None and not pattern.search(value):
            raise Rejected("invalid code", f"{table}.{name}={value!r}")
    start, end = row.get("start_date"), row.get("end_date")
    if start is not None and end is not None and end < start:
        raise Rejected("invalid date", f"{table}: end before start")


def visit_id(node_key: bytes, mrn: str, visit_ref: str) -> int:
    """A stable 63-bit visit id: the same encounter gets the same id on every run."""
    digest = hmac.digest(node_key, f"visit\0{mrn}\0{visit_ref}".encode(), "sha256")
    return int.from_bytes(digest[:8], "big") >> 1


@dataclass
class PatientRows:
    """Everything of one patient in the current batch, kept until the batch is committed."""

    key: str
    person: PersonFacts | None = None
    person_origin: Origin | None = None
    facts: list[Fact] = field(default_factory=list)
    visits: dict[str, Fact] = field(default_factory=dict)
    _allergies: set[tuple[Any, ...]] = field(default_factory=set)

    def add(self, fact: Fact) -> None:
        """Add a checked fact. Visits and allergies repeat across HL7 messages: kept once."""
        check_row(fact.table, fact.row)
        if fact.table == "visit":
            if fact.visit_ref is not None:
                self.visits.setdefault(fact.visit_ref, fact)
            return
        if fact.table == "allergy":
            signature = tuple(sorted(fact.row.items()))
            if signature in self._allergies:
                return
            self._allergies.add(signature)
        self.facts.append(fact)

    def person_id(self, node_key: bytes) -> str:
        """The node-local pseudonym of this patient's MRN."""
        assert self.person is not None
        return person_pseudonym(self.person.identity.mrn, node_key)

    def link_token(self, linkage_key: bytes) -> str | None:
        """The cross-hospital token of the resident ID number, if the record has a valid one."""
        assert self.person is not None
        number = self.person.identity.id_number
        if not number:
            return None
        try:
            return linkage_token(number, linkage_key)
        except TokenError:
            return None

    def rows(self, node_key: bytes, loaded: Counter[str]) -> dict[str, list[dict[str, Any]]]:
        """The patient's rows per table, with ``person_id``, visit ids and observation period.

        A fact whose encounter was not loaded keeps no visit id rather than a dangling one.
        ``loaded`` counts the source records that became rows, by kind.
        """
        assert self.person is not None and self.person_origin is not None
        pid = self.person_id(node_key)
        mrn = self.person.identity.mrn
        out: dict[str, list[dict[str, Any]]] = {}
        birth = self.person.birth_date
        out["person"] = [
            {
                "person_id": pid,
                "sex": self.person.sex,
                "birth_year": birth.year,
                "birth_month": birth.month,
            }
        ]
        loaded[self.person_origin.kind] += 1
        dates: list[dt.date] = []
        for ref, fact in self.visits.items():
            row = {**fact.row, "person_id": pid, "visit_id": visit_id(node_key, mrn, ref)}
            out.setdefault("visit", []).append(row)
            dates += [d for d in (row["start_date"], row.get("end_date")) if d is not None]
            loaded[fact.origin.kind] += 1
        for fact in self.facts:
            row = {**fact.row, "person_id": pid}
            if fact.table not in ("allergy", "death"):
                ref = fact.visit_ref
                row["visit_id"] = visit_id(node_key, mrn, ref) if ref in self.visits else None
            out.setdefault(fact.table, []).append(row)
            dates += [v for v in row.values() if isinstance(v, dt.date)]
            loaded[fact.origin.kind] += 1
        if self.person.death_date is not None:
            out["death"] = [{"person_id": pid, "death_date": self.person.death_date}]
            dates.append(self.person.death_date)
        if dates:
            out["observation_period"] = [
                {"person_id": pid, "start_date": min(dates), "end_date": max(dates)}
            ]
        return out


def birth_date_in_range(birth: dt.date) -> dt.date:
    """The store keeps birth years from 1850 on; an earlier one is a data error."""
    if birth.year < _MIN_BIRTH_YEAR or birth > dt.date(2200, 12, 31):
        raise Rejected("invalid date", f"birth year {birth.year}")
    return birth
