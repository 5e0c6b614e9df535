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
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from medspace.connector.quarantine import Rejected
from medspace.store.codes import CodeError, normalise_atc, normalise_icd10, normalise_loinc
from medspace.store.schema import TABLES_BY_NAME
from medspace.store.tokens import TokenError, linkage_token, record_id
from medspace.store.ucum import normalise_unit
from medspace.store.vault import Identity

#: Per table, the columns whose values have a form or a set of values: (name, form, values).
_CHECKS = {
    table.name: tuple(
        (c.name, re.compile(c.pattern) if c.pattern else None,
         frozenset(c.allowed) if c.allowed else None)
        for c in table.columns
        if c.name not in ("person_id", "record_id")
    )
    for table in TABLES_BY_NAME.values()
}
#: Required columns a fact must carry itself (ids are filled in when the batch is assembled).
_REQUIRED = {
    table.name: tuple(
        c.name
        for c in table.columns
        if not c.nullable and c.name not in ("person_id", "visit_id", "record_id")
    )
    for table in TABLES_BY_NAME.values()
}
_COLUMNS = {table.name: frozenset(table.column_names) for table in TABLES_BY_NAME.values()}
_MIN_BIRTH_YEAR = 1850
#: Dates on which something happened (not planned ends), per table: none may lie in the future.
_EVENT_DATES = {
    table.name: tuple(c.name for c in table.columns
                      if c.sql_type == "DATE" and c.name != "end_date")
    for table in TABLES_BY_NAME.values()
}
#: A sender's clock may run ahead of the node's by this much.
_CLOCK_SKEW = dt.timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a record came from: file, line or message number, and its kind (type or segment)."""

    source: str
    position: int
    kind: str


Routed = tuple[str, Origin, str]
"""A record as a reader routes it: its patient's key, where it came from, its raw text."""


@dataclass(frozen=True, slots=True)
class Fact:
    """One clinical row without its ``person_id``; ``visit_ref`` is the source's encounter id.

    ``record`` names the source record the fact came from when the source gives records ids
    (``Observation/7``): a record loaded again replaces every fact it gave before. A fact
    without one (an HL7 v2 segment) is identified by what it says, so a segment repeated by a
    later message (A08 repeats DG1 and AL1) is the same fact, not a second one.
    """

    table: str
    row: dict[str, Any]
    origin: Origin
    visit_ref: str | None = None
    record: str | None = None

    def identity(self) -> str:
        """The record this fact belongs to: its source id, or else its own content."""
        if self.record is not None:
            return self.record
        values = sorted((k, v.isoformat() if isinstance(v, dt.date) else v)
                        for k, v in self.row.items())
        return json.dumps([self.table, self.visit_ref, values], separators=(",", ":"))


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


def ucum(text: str) -> str:
    """A unit in its UCUM form (``mmHg`` → ``mm[Hg]``), or :class:`Rejected` as invalid."""
    try:
        return normalise_unit(text)
    except CodeError as exc:
        raise Rejected("invalid unit", str(exc)) from None


def unit(text: str | None) -> str | None:
    """:func:`ucum` of a unit that may be absent (None or blank: no unit)."""
    return None if text is None or not text.strip() else ucum(text)


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
    for name, pattern, allowed in _CHECKS[table]:
        value = row.get(name)
        if value is None:
            continue
        if pattern is not None and not pattern.search(value):
            raise Rejected("invalid code", f"{table}.{name}={value!r}")
        if allowed is not None and value not in allowed:
            raise Rejected("invalid code", f"{table}.{name}={value!r} (one of {sorted(allowed)})")
    start, end = row.get("start_date"), row.get("end_date")
    if start is not None and end is not None and end < start:
        raise Rejected("invalid date", f"{table}: end before start")
    if table != "consent":
        latest = dt.date.today() + _CLOCK_SKEW
        for name in _EVENT_DATES[table]:
            when = row.get(name)
            if when is not None and when > latest:
                raise Rejected("implausible date", f"{table}.{name}={when} is in the future")


def _after_birth(fact: Fact, birth: dt.date) -> None:
    """Refuse a fact dated before the year its patient was born (a mistyped year, usually)."""
    for name, value in fact.row.items():
        if isinstance(value, dt.date) and value.year < birth.year:
            raise Rejected("implausible date",
                           f"{fact.table}.{name}={value} is before the patient's birth year")


def visit_id(node_key: bytes, scope: str, visit_ref: str) -> int:
    """A stable 63-bit visit id: the same encounter of the same patient gets the same id on
    every run, also after an HL7 A40 merge has moved it to another patient."""
    digest = hmac.digest(node_key, f"visit\0{scope}\0{visit_ref}".encode(), "sha256")
    return int.from_bytes(digest[:8], "big") >> 1


def _merged(earlier: Fact, later: Fact) -> Fact:
    """An encounter told again by a message without ids: what the later one says wins, but an
    empty field does not erase a known one (an ORU's PV1 rarely repeats the discharge date)."""
    row = {**earlier.row, **{k: v for k, v in later.row.items() if v is not None}}
    return Fact(later.table, row, later.origin, later.visit_ref, later.record)


@dataclass
class PatientRows:
    """Everything of one patient in the current batch, kept until the batch is committed.

    ``person`` is set when the batch holds the patient's own record (FHIR Patient, HL7 PID);
    ``person_id`` is set when the store already knows the patient, so that records sent later
    (new results, an updated encounter) attach to them without their demographics.
    """

    key: str
    person_id: str | None = None
    scope: str | None = None
    """What record ids are told apart within: the MRN for a feed routed by MRN (stable across
    an A40 merge), else the ``person_id`` (FHIR logical ids may repeat across sources)."""
    person: PersonFacts | None = None
    person_origin: Origin | None = None
    records: dict[str, list[Fact]] = field(default_factory=dict)
    visits: dict[str, Fact] = field(default_factory=dict)
    duplicates: int = 0
    """Records given again in the batch (kept once)."""

    @property
    def known(self) -> bool:
        """Whether the patient's records can be loaded: their own record is here or stored."""
        return self.person is not None or self.person_id is not None

    def put(self, facts: list[Fact]) -> None:
        """Add the facts of one source record, replacing what the batch had of that record.

        Every fact is checked first, so a record with one bad value is refused whole.
        """
        for fact in facts:
            check_row(fact.table, fact.row)
            if self.person is not None:
                _after_birth(fact, self.person.birth_date)
        replaced: set[str] = set()
        for fact in facts:
            if fact.table == "visit":
                if fact.visit_ref is not None:
                    earlier = self.visits.get(fact.visit_ref)
                    keep = earlier is None or fact.record is not None
                    self.visits[fact.visit_ref] = fact if keep else _merged(earlier, fact)
                continue
            identity = fact.identity()
            if identity not in replaced:
                self.duplicates += identity in self.records
                self.records[identity] = []
                replaced.add(identity)
            self.records[identity].append(fact)

    def withdraw(self, record: str) -> None:
        """Note that the source withdrew ``record``: its stored rows go, and none replace them."""
        self.records[record] = []

    def withdrawn(self, node_key: bytes) -> list[tuple[str, str]]:
        """``(person_id, record_id)`` of each withdrawn record, for the store to remove."""
        assert self.person_id is not None and self.scope is not None
        return [(self.person_id, record_id(f"{self.scope}\0{identity}", node_key))
                for identity, facts in self.records.items() if not facts]

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
        """The patient's rows per table, with ``person_id``, visit ids and record ids.

        A fact whose encounter is neither in this batch nor given by the source keeps no visit
        id rather than a dangling one. ``loaded`` counts the source records that became rows,
        by kind. The observation period is not among them: the store derives it.
        """
        pid, scope = self.person_id, self.scope
        assert pid is not None and scope is not None
        out: dict[str, list[dict[str, Any]]] = {}
        if self.person is not None and self.person_origin is not None:
            birth = self.person.birth_date
            out["person"] = [{"person_id": pid, "sex": self.person.sex,
                              "birth_year": birth.year, "birth_month": birth.month}]
            if self.person.death_date is not None:
                out["death"] = [{"person_id": pid, "death_date": self.person.death_date}]
            loaded[self.person_origin.kind] += 1
        visits: dict[str | None, int | None] = {None: None}
        for ref, fact in self.visits.items():
            visits[ref] = visit_id(node_key, scope, ref)
            row = {**fact.row, "person_id": pid, "visit_id": visits[ref],
                   "record_id": record_id(f"{scope}\0{fact.identity()}", node_key)}
            out.setdefault("visit", []).append(row)
            loaded[fact.origin.kind] += 1
        for identity, facts in self.records.items():
            rid = record_id(f"{scope}\0{identity}", node_key)
            for fact in facts:
                row = {**fact.row, "person_id": pid, "record_id": rid}
                if "visit_id" in _COLUMNS[fact.table]:
                    ref = fact.visit_ref
                    if ref not in visits:
                        visits[ref] = visit_id(node_key, scope, ref)
                    row["visit_id"] = visits[ref]
                out.setdefault(fact.table, []).append(row)
            if facts:
                loaded[facts[0].origin.kind] += 1
        return out


def known_patient(patients: dict[str, PatientRows], key: str, unknown: str) -> PatientRows:
    """The batch's patient ``key`` whose records can load, or why they cannot: ``unknown``
    (the detail naming the missing patient), or their own record was quarantined."""
    rows = patients.get(key)
    if rows is None:
        raise Rejected("unknown patient", unknown)
    if not rows.known:
        raise Rejected("patient rejected", "the patient's own record was quarantined")
    return rows


def birth_date_in_range(birth: dt.date) -> dt.date:
    """The store keeps birth years from 1850 on; an earlier one is a data error."""
    if birth.year < _MIN_BIRTH_YEAR or birth > dt.date(2200, 12, 31):
        raise Rejected("invalid date", f"birth year {birth.year}")
    return birth
