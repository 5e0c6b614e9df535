"""A profile applied to a table: each column through the operator its field's rule names.

The columns of an extract are named by the hospital; ``fields`` says which profile field each
column is (``{"姓名": "name", "出生日期": "birth_date"}``), and a column named like a field needs
no entry. A column the profile does not name is dropped, so an extract's unknown column never
leaves by accident. Keys come from the node: the pseudonym key for ``pseudonym`` and per-patient
date shifts, the encryption key for ``encrypt``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd

from medspace.deid import operators
from medspace.deid.profiles import Profile, Rule
from medspace.deid.text import scrub

_DATE_LEVELS = ("month", "year", "5-year")
_PLACE_LEVELS = ("city", "province")


class ApplyError(ValueError):
    """A table the profile cannot be applied to (a missing patient column for date shifts)."""


def _date(value: Any) -> dt.date | None:
    if value is None or (isinstance(value, float) and pd.isna(value)) or value == "":
        return None
    return pd.Timestamp(value).date()


def _number(value: Any) -> int | None:
    if value is None or (isinstance(value, float) and pd.isna(value)) or value == "":
        return None
    return int(float(value))


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    return str(value)


def _generalise(rule: Rule) -> Callable[[Any], Any]:
    to = str(rule.to)
    if to in _DATE_LEVELS:
        return lambda v: operators.generalise_date(_date(v), to)  # type: ignore[arg-type]
    if to in _PLACE_LEVELS:
        return lambda v: operators.generalise_place(_text(v), to)  # type: ignore[arg-type]
    if to == "3-characters":
        return lambda v: operators.generalise_icd10(_text(v))
    if to == "zip3":
        return lambda v: operators.zip3(_text(v))
    if to.isdigit():
        return lambda v: operators.generalise_number(_number(v), int(to))
    raise ApplyError(f"unknown generalisation {to!r}")


def _operator(field: str, rule: Rule, key: bytes) -> Callable[[Any], Any]:
    """The function one cell of ``field`` goes through (``shift`` is per row, see below)."""
    if rule.action == "keep":
        return lambda v: v
    if rule.action == "suppress":
        return operators.suppress
    if rule.action == "scrub":
        return lambda v: None if (text := _text(v)) is None else scrub(text)
    if rule.action == "mask":
        start, end = rule.keep_start or 3, rule.keep_end or 4
        return lambda v: operators.mask(_text(v), start, end)
    if rule.action == "pseudonym":
        return lambda v: operators.pseudonym(_text(v), key, field)
    if rule.action == "encrypt":
        return lambda v: operators.encrypt(_text(v), key, field)
    if rule.action == "top_code":
        ceiling, label = int(rule.ceiling or 0), str(rule.label)
        return lambda v: operators.top_code(_number(v), ceiling, label)
    return _generalise(rule)


def apply_profile(table: pd.DataFrame, profile: Profile, key: bytes, *,
                  fields: Mapping[str, str] | None = None,
                  patient: str | None = None) -> pd.DataFrame:
    """``table`` de-identified by ``profile``; dropped columns are gone from the result.

    ``patient`` names the column that tells patients apart, needed when a rule shifts dates
    (every date of one patient moves by the same days, so intervals survive).
    """
    fields = dict(fields or {})
    out: dict[str, pd.Series] = {}
    shifts: pd.Series | None = None
    for column in table.columns:
        field = fields.get(column, column)
        rule = profile.rule(field)
        if rule.action == "drop":
            continue
        values = table[column]
        if rule.action == "shift":
            if patient is None or patient not in table.columns:
                raise ApplyError(f"{column}: shifting dates needs the patient column (--patient)")
            if shifts is None:
                shifts = table[patient].map(
                    lambda p: operators.date_shift_days(str(p), key))
            out[column] = pd.Series(
                [operators.shift_date(_date(v), int(d)) for v, d in zip(values, shifts,
                                                                        strict=True)],
                index=table.index, dtype=object)
            continue
        out[column] = values.map(_operator(field, rule, key))
    return pd.DataFrame(out, index=table.index)
