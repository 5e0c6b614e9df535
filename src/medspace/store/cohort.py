"""Cohorts and counts, built only from structured arguments (DESIGN §6: no free text to SQL).

A :class:`Cohort` is a frozen set of typed criteria, checked and normalised when it is made; the
queries are Ibis expressions over the clinical tables, so the same code runs on DuckDB and on
PostgreSQL and every value reaches the engine as a typed literal, never as SQL text. Anything
not understood — an unknown field, group key or value — is refused with a clear reason
(fail closed, DESIGN §3.7).

A death does not remove anyone: a cohort counts every person whose records meet the criteria,
as retrospective studies do. Ages are whole years at ``as_of``. The store keeps birth year and
month only, so a person born in the month of ``as_of`` counts as having had their birthday, and
one without a birth month as born in January.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import ibis
import ibis.expr.types as ir

from medspace.store.codes import (
    CODE_PATTERN,
    CodeError,
    normalise_atc,
    normalise_icd10_prefix,
)
from medspace.store.consent import ConsentRule, allowed
from medspace.store.engine import ClinicalStore
from medspace.store.schema import SEXES

#: The keys :func:`count_by` can group by.
GROUP_KEYS: tuple[str, ...] = ("sex", "age_band")
_MAX_AGE = 150
_MAX_CODES = 200


class CohortError(ValueError):
    """A cohort or count request that is malformed or asks for something unknown."""


def _age(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_AGE:
        raise CohortError(f"{name} must be a whole number of years from 0 to {_MAX_AGE}")
    return value


def _codes(values: Any, name: str, normalise: Callable[[str], str]) -> tuple[str, ...]:
    if isinstance(values, str) or not isinstance(values, Sequence):
        raise CohortError(f"{name} must be a list of codes")
    if len(values) > _MAX_CODES:
        raise CohortError(f"{name}: at most {_MAX_CODES} codes")
    if not all(isinstance(v, str) for v in values):
        raise CohortError(f"{name}: every code must be a string")
    try:
        return tuple(sorted({normalise(v) for v in values}))
    except CodeError as exc:
        raise CohortError(f"{name}: {exc}") from None


def _plain_code(value: str) -> str:
    if re.fullmatch(CODE_PATTERN, value) is None:
        raise CodeError(f"not a code: {value!r}")
    return value


@dataclass(frozen=True)
class Cohort:
    """Who is counted: every criterion given must hold at ``as_of``; criteria left out don't apply.

    ``condition_prefixes`` and ``drug_atc_prefixes`` each match a person with any one of their
    codes (ICD-10 and ATC prefixes, recorded on or before ``as_of``); ``observation_code`` with
    ``observation_values`` matches a person with that observation (e.g. a treatment response)
    taking one of those values. ``age_min`` and ``age_max`` are inclusive.
    """

    as_of: dt.date
    condition_prefixes: tuple[str, ...] = ()
    drug_atc_prefixes: tuple[str, ...] = ()
    age_min: int | None = None
    age_max: int | None = None
    sex: str | None = None
    observation_code: str | None = None
    observation_values: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if not isinstance(self.as_of, dt.date) or isinstance(self.as_of, dt.datetime):
            raise CohortError("as_of must be a date")
        set_ = object.__setattr__
        set_(
            self,
            "condition_prefixes",
            _codes(self.condition_prefixes, "condition_prefixes", normalise_icd10_prefix),
        )
        set_(
            self,
            "drug_atc_prefixes",
            _codes(self.drug_atc_prefixes, "drug_atc_prefixes", normalise_atc),
        )
        _age(self.age_min, "age_min")
        _age(self.age_max, "age_max")
        if self.age_min is not None and self.age_max is not None and self.age_min > self.age_max:
            raise CohortError("age_min is greater than age_max")
        if self.sex is not None and self.sex not in SEXES:
            raise CohortError(f"sex must be one of {', '.join(SEXES)}")
        set_(
            self,
            "observation_values",
            _codes(self.observation_values, "observation_values", _plain_code),
        )
        if self.observation_code is None:
            if self.observation_values:
                raise CohortError("observation_values need an observation_code")
        else:
            _codes([self.observation_code], "observation_code", _plain_code)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> Cohort:
        """Build a cohort from a decoded JSON object; unknown fields are refused, not ignored."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise CohortError(f"unknown cohort fields: {', '.join(sorted(unknown))}")
        values = dict(data)
        if isinstance(values.get("as_of"), str):
            try:
                values["as_of"] = dt.date.fromisoformat(values["as_of"])
            except ValueError:
                raise CohortError("as_of must be an ISO date (YYYY-MM-DD)") from None
        if "as_of" not in values:
            raise CohortError("as_of is required")
        return cls(**values)


def _with_age(store: ClinicalStore, cohort: Cohort) -> ir.Table:
    person = store.backend.table("person")
    as_of = cohort.as_of
    before_birthday = (person.birth_month.notnull() & (person.birth_month > as_of.month)).ifelse(
        1, 0
    )
    return person.mutate(age=(ibis.literal(as_of.year) - person.birth_year - before_birthday))


def _any_prefix(column: ir.StringColumn, prefixes: tuple[str, ...]) -> ir.BooleanValue:
    condition = column.startswith(prefixes[0])
    for prefix in prefixes[1:]:
        condition |= column.startswith(prefix)
    return condition


def _members(store: ClinicalStore, cohort: Cohort, consent: ConsentRule | None) -> ir.Table:
    person = _with_age(store, cohort)
    person = person.filter(person.age >= 0)
    if cohort.sex is not None:
        person = person.filter(person.sex == cohort.sex)
    if cohort.age_min is not None:
        person = person.filter(person.age >= cohort.age_min)
    if cohort.age_max is not None:
        person = person.filter(person.age <= cohort.age_max)
    as_of = ibis.literal(cohort.as_of)
    if cohort.condition_prefixes:
        cond = store.backend.table("condition")
        cond = cond.filter(
            _any_prefix(cond.condition_source_value, cohort.condition_prefixes),
            cond.start_date <= as_of,
        )
        person = person.semi_join(cond, "person_id")
    if cohort.drug_atc_prefixes:
        drug = store.backend.table("drug_exposure")
        drug = drug.filter(
            _any_prefix(drug.drug_source_value, cohort.drug_atc_prefixes),
            drug.start_date <= as_of,
        )
        person = person.semi_join(drug, "person_id")
    if cohort.observation_code is not None:
        obs = store.backend.table("observation")
        obs = obs.filter(
            obs.observation_source_value == cohort.observation_code,
            obs.observation_date <= as_of,
        )
        if cohort.observation_values:
            obs = obs.filter(obs.value_as_concept.isin(cohort.observation_values))
        person = person.semi_join(obs, "person_id")
    return person if consent is None else allowed(person, store, consent)


def cohort_size(store: ClinicalStore, cohort: Cohort, consent: ConsentRule | None = None) -> int:
    """How many persons the cohort holds (exact; disclosure control is applied by the caller),
    counting only those ``consent`` lets count when it is given."""
    [(size,)] = store.rows(("cohort_size", cohort, consent),
                           lambda: _members(store, cohort, consent).count())
    return int(size)


def members(store: ClinicalStore, cohort: Cohort, limit: int) -> list[str]:
    """Up to ``limit`` of the cohort's ``person_id``s, in id order: for the node's own use (a
    patient to show a consent change on), never released."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 1000:
        raise CohortError("limit must be a whole number from 1 to 1000")
    rows = store.rows(("members", cohort, limit), lambda: _members(store, cohort, None)
                      .select("person_id").order_by("person_id").limit(limit))
    return [str(person) for (person,) in rows]


def count_by(
    store: ClinicalStore,
    cohort: Cohort,
    group_by: Sequence[str],
    age_band_width: int = 10,
    consent: ConsentRule | None = None,
) -> list[tuple[Any, ...]]:
    """Count the cohort's persons per group: ``[(group values…, count), …]`` in group order.

    ``group_by`` takes keys from :data:`GROUP_KEYS`; an ``age_band`` value reads ``"30-39"``
    for a width of 10. Only non-empty groups are returned. With ``consent``, only the persons
    it lets count are counted.
    """
    if isinstance(group_by, str) or not isinstance(group_by, Sequence):
        raise CohortError("group_by must be a list of group keys")
    keys = list(group_by)
    unknown = [k for k in keys if k not in GROUP_KEYS]
    if unknown or not keys:
        raise CohortError(f"group keys must be taken from {', '.join(GROUP_KEYS)}; got {keys!r}")
    if len(set(keys)) != len(keys):
        raise CohortError(f"group keys repeat: {keys!r}")
    if (
        isinstance(age_band_width, bool)
        or not isinstance(age_band_width, int)
        or not 1 <= age_band_width <= _MAX_AGE
    ):
        raise CohortError(f"age_band_width must be a whole number from 1 to {_MAX_AGE}")

    def build() -> ir.Table:
        members = _members(store, cohort, consent)
        members = members.mutate(
            age_band=((members.age // age_band_width) * age_band_width).cast("int64")
        )
        return members.group_by(keys).aggregate(n=members.count()).order_by(keys)

    rows = [dict(zip([*keys, "n"], row, strict=True))
            for row in store.rows(("count_by", cohort, tuple(keys), age_band_width, consent),
                                     build)]
    result = []
    for row in rows:
        values = [
            f"{row[k]}-{row[k] + age_band_width - 1}" if k == "age_band" else row[k] for k in keys
        ]
        result.append((*values, int(row["n"])))
    return result
