"""The mapping file of CSV and Excel exports: what each file holds and where each column goes.

A hospital's LIS or registry extract has no standard shape, so the hospital declares it once in
a YAML file (``docs/examples/lis-mapping.yaml`` is a worked example): per source file its
layout, the table its rows become, and per target column a source column or a constant, with
an optional value map, date formats and code system. The file is checked whole when it is
loaded, so that a mistake is a clear error naming the file, line and field, before any row is
read — in particular a direct identifier routed into a clinical column is refused there, since
the clinical store must never receive one (DESIGN §4).

YAML scalars are read as text, never as YAML 1.1 booleans, numbers or dates: value-map keys
must match the cells exactly (``N``, ``01`` and ``2024-01-01`` stay what they say).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal, get_args

import yaml
from openpyxl.utils.datetime import from_excel
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from medspace.connector.encoding import decode
from medspace.connector.mapping import atc, icd10, loinc, ucum
from medspace.connector.quarantine import Rejected
from medspace.store.codes import ATC_PATTERN, ICD10_PATTERN, LOINC_PATTERN, UNIT_PATTERN
from medspace.store.schema import SEXES, TABLES_BY_NAME

CodeSystem = Literal["icd10", "atc", "loinc", "ucum"]
#: One cell of a routed row: text (CSV), or what a workbook holds — a number, or a real Excel
#: date as ``{"date": ISO date}``.
Cell = str | int | float | dict[str, str] | None
Value = str | float | dt.date | None
Loc = tuple[str | int, ...]

TableName = Literal[
    "person", "visit", "condition", "drug_exposure", "measurement", "observation", "allergy",
    "procedure", "immunization", "consent",
]  # fmt: skip
CLINICAL_TABLES: tuple[str, ...] = tuple(t for t in get_args(TableName) if t != "person")
Kind = Literal["text", "date", "number"]
_TEXT_IDENTIFIERS = ("name", "id_number", "phone", "address")
#: The person's direct identifiers: read only into the identity vault, never into a row.
IDENTITY_FIELDS = (*_TEXT_IDENTIFIERS, "birth_date")
#: A real Excel date, or a number in a date column whose formats include ``excel``.
EXCEL = "excel"
DEFAULT_DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y%m%d")

_SYSTEM_OF_PATTERN = {ICD10_PATTERN: "icd10", ATC_PATTERN: "atc", LOINC_PATTERN: "loinc",
                      UNIT_PATTERN: "ucum"}
_NORMALISE: dict[str, Callable[[str], str]] = {"icd10": icd10, "atc": atc, "loinc": loinc,
                                               "ucum": ucum}
_KINDS: dict[str, Kind] = {"TEXT": "text", "DATE": "date", "DOUBLE PRECISION": "number"}
_DERIVED = frozenset({"person_id", "visit_id", "record_id", "recorded_ms"})
#: Header names that hold direct identifiers in Chinese and English exports: a safety net for
#: identifiers a mapping file does not declare (compared case-folded, without spaces, ``_``, ``-``).
_KNOWN_IDENTIFIERS = frozenset({
    "姓名", "患者姓名", "病人姓名", "name", "patientname", "fullname",
    "身份证", "身份证号", "身份证号码", "证件号", "证件号码", "idnumber", "idcard", "residentid",
    "电话", "联系电话", "手机", "手机号", "手机号码", "phone", "telephone", "mobile",
    "地址", "住址", "家庭住址", "现住址", "address",
    "出生日期", "birthdate", "dateofbirth", "dob",
    "病历号", "病案号", "mrn", "medicalrecordnumber",
})  # fmt: skip
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_SERIAL = re.compile(r"\d+(\.\d+)?")
#: The usual formats, read without ``strptime`` (which costs more than the rest of a row) as it
#: reads them — a date, then optionally a time after a space or ``T`` — except that ``%Y%m%d``
#: needs all eight digits (``strptime`` reads ``2024016`` as 6 January).
_FAST_FORMATS = {
    "%Y-%m-%d": re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T].*)?"),
    "%Y/%m/%d": re.compile(r"(\d{4})/(\d{1,2})/(\d{1,2})(?:[ T].*)?"),
    "%Y%m%d": re.compile(r"(\d{4})(\d{2})(\d{2})(?:[ T].*)?"),
}
_LAST_SERIAL = 2958465  # 9999-12-31
_PROBE = dt.datetime(2001, 2, 3, 4, 5, 6)
_NULL_TAG = "tag:yaml.org,2002:null"


@dataclass(frozen=True)
class Target:
    """A column a mapping may fill: its kind, whether a row needs it, and the form of its values.

    ``system`` is the code system the store keeps for the column (ICD-10 for conditions, ATC for
    drugs, LOINC for measurements), ``identity`` marks the person's direct identifiers.
    """

    table: str
    name: str
    kind: Kind
    required: bool = False
    pattern: re.Pattern[str] | None = None
    choices: tuple[str, ...] | None = None
    system: str | None = None
    identity: bool = False


def _targets() -> dict[str, dict[str, Target]]:
    """Every table's mappable columns, read from the store's schema (ids are derived)."""
    out: dict[str, dict[str, Target]] = {
        "person": {
            "sex": Target("person", "sex", "text", choices=SEXES),
            "death_date": Target("person", "death_date", "date"),
            **{name: Target("person", name, "text", identity=True) for name in _TEXT_IDENTIFIERS},
            "birth_date": Target("person", "birth_date", "date", required=True, identity=True),
        }
    }
    for table in CLINICAL_TABLES:
        columns = out[table] = {}
        for column in TABLES_BY_NAME[table].columns:
            if column.name in _DERIVED:
                continue
            pattern = column.pattern
            columns[column.name] = Target(
                table,
                column.name,
                _KINDS[column.sql_type],
                required=not column.nullable,
                pattern=re.compile(pattern) if pattern is not None else None,
                choices=column.allowed,
                system=_SYSTEM_OF_PATTERN.get(pattern or ""),
            )
    return out


TARGETS = _targets()


class MappingFileError(ValueError):
    """A mapping file that cannot be used; the message names the file, line and field."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "\n  ".join(["invalid mapping file", *problems]))


class ColumnRule(BaseModel):
    """Where one target column's value comes from: a source ``column`` or a ``constant``.

    ``values`` maps source values to stored ones (``男: male``) and is exhaustive: a value it
    does not list is refused rather than stored unmapped. ``date_format`` lists the accepted
    ``strptime`` formats (``excel`` admits Excel serial day numbers); ``code_system`` has codes
    normalised and checked as ICD-10, ATC or LOINC. A bare string is short for ``{column: ...}``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    column: str | None = Field(None, min_length=1)
    constant: str | None = Field(None, min_length=1)
    values: dict[str, str] | None = None
    date_format: tuple[str, ...] | None = Field(None, min_length=1)
    code_system: CodeSystem | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"column": data} if isinstance(data, str) else data

    @field_validator("date_format", mode="before")
    @classmethod
    def _one_format(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("date_format")
    @classmethod
    def _full_dates(cls, formats: tuple[str, ...] | None) -> tuple[str, ...] | None:
        for fmt in formats or ():
            if fmt != EXCEL and not _gives_full_date(fmt):
                raise ValueError(f"{fmt!r} does not read a full date (year, month and day)")
        return formats

    @model_validator(mode="after")
    def _one_source(self) -> ColumnRule:
        if (self.column is None) == (self.constant is None):
            raise ValueError("give exactly one of 'column' and 'constant'")
        if self.constant is not None and self.values is not None:
            raise ValueError("a constant needs no value map")
        return self


def _gives_full_date(fmt: str) -> bool:
    """Whether ``fmt`` reads back the year, month and day it writes."""
    try:
        return dt.datetime.strptime(_PROBE.strftime(fmt), fmt).date() == _PROBE.date()
    except ValueError:
        return False


class FileMapping(BaseModel):
    """One kind of source file: which files, their layout, and what their rows become.

    ``name`` prefixes the record ids (``lis/R123``); it is lower-case so that it can never
    coincide with a FHIR resource type (``Observation/7``). ``mrn`` is the column holding the
    patient's medical record number, the routing key. ``record_id`` names the column of the
    source's own row id, so a corrected row replaces the old one; without it a row is
    identified by its content. ``visit`` names the column of the encounter id. A row whose
    ``only_rows_with`` column is empty is no record of this mapping (a registry row of a patient
    without treatment has no drug exposure). ``identifiers`` lists further columns of the file
    that hold direct identifiers: they may never be mapped.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")
    pattern: str = Field(min_length=1)
    table: TableName
    sheet: str | None = Field(None, min_length=1)
    encoding: Literal["auto", "utf-8", "gb18030"] = "auto"
    delimiter: Literal["auto", ",", ";", "\t", "|"] = "auto"
    header_row: int = Field(1, ge=1)
    mrn: str = Field(min_length=1)
    record_id: str | None = Field(None, min_length=1)
    visit: str | None = Field(None, min_length=1)
    only_rows_with: str | None = Field(None, min_length=1)
    identifiers: tuple[str, ...] = ()
    columns: dict[str, ColumnRule]

    @field_validator("pattern")
    @classmethod
    def _inside_export(cls, pattern: str) -> str:
        path = PurePosixPath(pattern)
        if path.is_absolute() or ".." in path.parts or "\\" in pattern:
            raise ValueError("the pattern must name files inside the export folder")
        return pattern

    def source_columns(self) -> tuple[str, ...]:
        """The header names a file of this mapping must have (each once)."""
        named = [self.mrn, self.record_id, self.visit, self.only_rows_with,
                 *(rule.column for rule in self.columns.values())]  # fmt: skip
        return tuple(dict.fromkeys(c for c in named if c is not None))


class TabularMapping(BaseModel):
    """A whole mapping file: the file mappings of one hospital's tabular exports."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    files: tuple[FileMapping, ...]


def _problems(mapping: TabularMapping) -> Iterator[tuple[Loc, str]]:
    """What the models cannot check alone: names, tables' columns and identifier routing."""
    if not mapping.files:
        yield ("files",), "the mapping names no files"
    seen: set[str] = set()
    for i, fm in enumerate(mapping.files):
        if fm.name in seen:
            yield ("files", i, "name"), f"the name {fm.name!r} is used twice"
        seen.add(fm.name)
    identifiers = _identifier_columns(mapping)
    for i, fm in enumerate(mapping.files):
        yield from ((("files", i, *loc), message) for loc, message in _file_problems(fm))
        for target, rule in fm.columns.items():
            why = identifiers.get(rule.column or "") or _known_identifier(rule.column)
            spec = TARGETS[fm.table].get(target)
            if why and spec is not None and not spec.identity:
                yield ("files", i, "columns", target, "column"), (
                    f"source column {rule.column!r} holds a direct identifier ({why}); "
                    f"identifiers go only to the identity vault, never into {fm.table}.{target}"
                )


def _identifier_columns(mapping: TabularMapping) -> dict[str, str]:
    """Every source column the mapping itself declares as holding a direct identifier."""
    found: dict[str, str] = {}
    for fm in mapping.files:
        found.setdefault(fm.mrn, f"the MRN of {fm.name!r}")
        for column in fm.identifiers:
            found.setdefault(column, f"listed in the identifiers of {fm.name!r}")
        if fm.table == "person":
            for target, rule in fm.columns.items():
                if target in IDENTITY_FIELDS and rule.column is not None:
                    found.setdefault(rule.column, f"the {target} of {fm.name!r}")
    return found


def _known_identifier(column: str | None) -> str | None:
    folded = re.sub(r"[\s_\-]", "", (column or "").casefold())
    return "a well-known identifier column" if folded in _KNOWN_IDENTIFIERS else None


def _file_problems(fm: FileMapping) -> Iterator[tuple[Loc, str]]:
    targets = TARGETS[fm.table]
    has_visit = fm.table != "person" and "visit_id" in TABLES_BY_NAME[fm.table].column_names
    if fm.table == "visit" and fm.visit is None:
        yield ("visit",), "a visit mapping needs the column of the visit id"
    if fm.visit is not None and not has_visit:
        yield ("visit",), f"{fm.table} rows are not linked to visits"
    if fm.table == "person" and fm.record_id is not None:
        yield ("record_id",), "a person row is identified by its MRN"
    missing = [t.name for t in targets.values() if t.required and t.name not in fm.columns]
    if missing:
        yield ("columns",), f"{fm.table} needs a mapping for {', '.join(missing)}"
    for name, rule in fm.columns.items():
        target = targets.get(name)
        if target is None:
            yield ("columns", name), _unknown_column(fm.table, name)
            continue
        yield from ((("columns", name, *loc), message) for loc, message in _rule_problems(
            target, rule))


def _unknown_column(table: str, name: str) -> str:
    if name in IDENTITY_FIELDS:
        return (f"{name} is a direct identifier: only a person mapping reads it, into the "
                "identity vault")
    return f"{table} has no column {name!r} (it has {', '.join(TARGETS[table])})"


def _rule_problems(target: Target, rule: ColumnRule) -> Iterator[tuple[Loc, str]]:
    if rule.date_format is not None and target.kind != "date":
        yield ("date_format",), f"{target.name} is not a date"
    if rule.code_system is not None:
        if target.kind != "text" or target.choices is not None or target.identity:
            yield ("code_system",), f"{target.name} holds no codes"
        elif target.system not in (None, rule.code_system):
            yield ("code_system",), f"the store keeps {target.name} as {target.system}"
    stored = [(("constant",), rule.constant)] if rule.constant is not None else []
    stored += [(("values", key), value) for key, value in (rule.values or {}).items()]
    for loc, value in stored:
        try:
            _stored(target, rule, value, f"{target.table}.{target.name}")
        except Rejected as rejected:
            yield loc, f"{rejected.reason}: {rejected.detail}"


def read_value(target: Target, rule: ColumnRule, cell: Cell, where: str) -> Value:
    """The stored value of ``cell`` (or of the rule's constant), or :class:`Rejected`.

    ``where`` names the source column for the rejection's detail. An empty value is None; the
    caller decides whether the row may lack it.
    """
    value: Cell = rule.constant if rule.constant is not None else cell
    if value is None or text_of(value) == "":
        return None
    if rule.values is not None:
        mapped = rule.values.get(text_of(value))
        if mapped is None:
            raise Rejected("unmapped value", f"{where}={text_of(value)!r} is not in the value map")
        value = mapped
    return _stored(target, rule, value, where)


def _stored(target: Target, rule: ColumnRule, value: Cell, where: str) -> Value:
    """A present value in the target's stored form: a date, a number, or checked text."""
    if target.kind == "date":
        return _date(value, rule.date_format or DEFAULT_DATE_FORMATS, where)
    if target.kind == "number":
        return _number(value, where)
    text = text_of(value)
    system = rule.code_system or target.system
    if system is not None:
        text = _NORMALISE[system](text)
    if target.choices is not None and text not in target.choices:
        raise Rejected("invalid code", f"{where}={text!r}, not one of {', '.join(target.choices)}")
    if target.pattern is not None and not target.pattern.search(text):
        raise Rejected("invalid code", f"{where}={text!r}")
    return text


def text_of(cell: Cell) -> str:
    """A cell as text, stripped: a whole-number float without ``.0``, a date in ISO form."""
    if isinstance(cell, dict):
        return str(cell.get("date", ""))
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    return "" if cell is None else str(cell).strip()


def _number(value: Cell, where: str) -> float:
    text = text_of(value)
    if isinstance(value, dict) or not _NUMBER.fullmatch(text):
        raise Rejected("invalid value", f"{where}={text!r} is not a number")
    number = float(text)
    if not math.isfinite(number):
        raise Rejected("invalid value", f"{where}={text!r} is not a finite number")
    return number


def _date(value: Cell, formats: tuple[str, ...], where: str) -> dt.date:
    """A real Excel date as it is; otherwise the first format that reads the value (or its
    date part, before a space or ``T``); an Excel serial number where ``excel`` is allowed."""
    if isinstance(value, dict):
        try:
            return dt.date.fromisoformat(text_of(value)[:10])
        except ValueError:
            raise Rejected("invalid date", f"{where}={value!r}") from None
    text = text_of(value)
    for fmt in formats:
        if fmt == EXCEL:
            if _SERIAL.fullmatch(text):
                return _serial(float(text), where)
            continue
        fast = _FAST_FORMATS.get(fmt)
        if fast is not None:
            match = fast.fullmatch(text)
            if match:
                with contextlib.suppress(ValueError):  # a 30 February: try the next format
                    return dt.date(*map(int, match.groups()))
            continue
        for candidate in (text, re.split(r"[ T]", text, maxsplit=1)[0]):
            try:
                return dt.datetime.strptime(candidate, fmt).date()
            except ValueError:
                continue
    raise Rejected("invalid date", f"{where}={text!r}, not in the formats {', '.join(formats)}")


def _serial(days: float, where: str) -> dt.date:
    """An Excel (1900 date system) serial day number; before March 1900 it is ambiguous."""
    if not 61 <= days <= _LAST_SERIAL:
        raise Rejected("invalid date", f"{where}={days:g} is out of the Excel date range")
    return from_excel(days).date()


class _TextLoader(yaml.SafeLoader):
    """YAML with every plain scalar as text (and ``~``/``null`` as null)."""


_TextLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag == _NULL_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _plain(node: yaml.Node, loc: Loc, lines: dict[Loc, int]) -> Any:
    """A YAML node as dicts, lists, strings and None, noting the line of every location."""
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise _LineError(key_node, "keys must be plain text")
            key = key_node.value
            if key in out:
                raise _LineError(key_node, f"{key!r} is given twice")
            lines[(*loc, key)] = key_node.start_mark.line + 1
            out[key] = _plain(value_node, (*loc, key), lines)
        return out
    if isinstance(node, yaml.SequenceNode):
        items = []
        for index, item in enumerate(node.value):
            lines[(*loc, index)] = item.start_mark.line + 1
            items.append(_plain(item, (*loc, index), lines))
        return items
    return None if node.tag == _NULL_TAG else node.value


class _LineError(Exception):
    def __init__(self, node: yaml.Node, message: str) -> None:
        super().__init__(f"line {node.start_mark.line + 1}: {message}")


def _dotted(loc: Loc) -> str:
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc)[1:]


def _where(loc: Loc, lines: dict[Loc, int]) -> str:
    for end in range(len(loc), 0, -1):
        if loc[:end] in lines:
            return f"line {lines[loc[:end]]}, {_dotted(loc) or 'top'}"
    return _dotted(loc) or "top"


def parse_mapping(text: str, source: str) -> TabularMapping:
    """The mapping in ``text`` (YAML), checked whole; ``source`` names it in errors."""
    lines: dict[Loc, int] = {}
    try:
        root = yaml.compose(text, Loader=_TextLoader)
        if root is None:
            raise MappingFileError(source, ["the file is empty"])
        plain = _plain(root, (), lines)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise MappingFileError(source, [f"{where}{exc.problem or exc.context}"]) from None
    except (yaml.YAMLError, _LineError) as exc:
        raise MappingFileError(source, [str(exc)]) from None
    except RecursionError:
        raise MappingFileError(source, ["nested too deeply"]) from None
    try:
        mapping = TabularMapping.model_validate(plain)
    except ValidationError as exc:
        problems = [f"{_where(tuple(e['loc']), lines)}: {e['msg'].removeprefix('Value error, ')}"
                    for e in exc.errors()]
        raise MappingFileError(source, problems) from None
    problems = [f"{_where(loc, lines)}: {message}" for loc, message in _problems(mapping)]
    if problems:
        raise MappingFileError(source, problems)
    return mapping


def load_mapping(path: Path) -> TabularMapping:
    """The mapping file at ``path`` (UTF-8 or GB 18030), checked whole before any row is read."""
    try:
        text = decode(path.read_bytes())
    except Rejected as rejected:
        raise MappingFileError(path.name, [rejected.detail]) from None
    return parse_mapping(text, path.name)
