"""CSV and Excel exports (LIS results, registry extracts): route rows to patients, map them.

What each file holds is declared in a mapping file (:mod:`medspace.connector.tabular_mapping`).
:func:`route` streams every file a mapping names — CSV through the ``csv`` module a line at a
time, ``.xlsx`` through openpyxl's read-only mode — person files first, and yields each row with
its patient's MRN, its origin (file, line or sheet row, target table) and the row as one line of
JSON holding only the columns the mapping reads, so identifiers the mapping ignores never leave
the export file. Rows that cannot be routed (no MRN, undecodable bytes, a wrong number of
fields, a column missing from the header) are quarantined there. :class:`TabularMapper` then
turns each row into the patient's identity and person row, or into one clinical fact.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import openpyxl

from medspace.connector.encoding import decode, shown
from medspace.connector.mapping import (
    Fact,
    Origin,
    PatientRows,
    PersonFacts,
    Routed,
    birth_date_in_range,
    known_patient,
    required,
    unexpected_shape,
)
from medspace.connector.quarantine import Quarantine, Rejected
from medspace.connector.tabular_mapping import (
    TARGETS,
    Cell,
    FileMapping,
    TabularMapping,
    Value,
    read_value,
    text_of,
)
from medspace.store.vault import Identity

CSV_SUFFIXES = frozenset({".csv", ".tsv", ".txt"})
XLSX_SUFFIXES = frozenset({".xlsx", ".xlsm"})
_DELIMITERS = (",", ";", "\t", "|")
#: A physical line longer than this is refused unread, so one line cannot fill the memory.
_MAX_LINE = 1 << 20
_SHOWN_BYTES = 1 << 16
_MAX_MRN = 64
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_LINE_END = re.compile(rb"\r\n|\r|\n")
#: One line of JSON (control characters escaped), readable in the quarantine.
_COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


class _Row(NamedTuple):
    """One record of a file: its record number (for ``header_row``), its position for people
    (line or sheet row), its cells, its text for the quarantine, and why it is unreadable."""

    index: int
    position: int
    cells: list[Cell]
    text: str
    problem: Rejected | None


def files(export_dir: Path, mapping: TabularMapping) -> list[tuple[FileMapping, Path]]:
    """Every file of the export with the mapping that reads it, person mappings first.

    A file may be read by several mappings (a registry sheet giving diagnoses and drugs).
    """
    ordered = sorted(mapping.files, key=lambda fm: fm.table != "person")
    return [(fm, path) for fm in ordered
            for path in sorted(export_dir.glob(fm.pattern)) if path.is_file()]  # fmt: skip


def route(
    export_dir: Path, quarantine: Quarantine, skipped: Counter[str], mapping: TabularMapping
) -> Iterator[Routed]:
    """Every row as ``(MRN, origin, row as one line of JSON)``; the rest quarantined or counted.

    Tabular files that no mapping names are counted in ``skipped``, as are rows without the
    ``only_rows_with`` value; blank rows and rows above the header are not records.
    """
    export_dir = Path(export_dir)
    claimed: set[Path] = set()
    for fm, path in files(export_dir, mapping):
        claimed.add(path)
        yield from _route_file(fm, path, path.relative_to(export_dir).as_posix(), quarantine,
                               skipped)
    for path in export_dir.iterdir():
        if path.suffix.lower() in CSV_SUFFIXES | XLSX_SUFFIXES and path not in claimed:
            skipped["file without a mapping"] += 1


def _route_file(
    fm: FileMapping, path: Path, source: str, quarantine: Quarantine, skipped: Counter[str]
) -> Iterator[Routed]:
    suffix = path.suffix.lower()
    if suffix not in CSV_SUFFIXES | XLSX_SUFFIXES:
        detail = f"{suffix or 'no suffix'}: save it as CSV or .xlsx"
        quarantine.add(source, 0, "file", Rejected("unsupported file", detail), "")
        return
    rows = _xlsx_rows(path, fm) if suffix in XLSX_SUFFIXES else _csv_rows(path, fm)
    wanted = fm.source_columns()
    header: _Header | None = None
    unusable: Rejected | None = None
    while True:
        try:
            row = next(rows, None)
        except Rejected as rejected:  # the workbook broke off: the rows read so far stand
            quarantine.add(source, 0, "file", rejected, "")
            return
        if row is None:
            break
        if row.index < fm.header_row:
            continue
        if header is None:
            header, unusable = _header(row, wanted, source)
            continue
        if row.problem is None and all(text_of(c) == "" for c in row.cells):
            continue
        try:
            problem = unusable or row.problem
            if problem is not None:
                raise problem
            cells = _cells(row.cells, header)
            if fm.only_rows_with is not None and text_of(cells[fm.only_rows_with]) == "":
                skipped[f"{fm.name}: rows without {fm.only_rows_with}"] += 1
                continue
            key = _mrn(cells[fm.mrn], fm.mrn)
        except Rejected as rejected:
            quarantine.add(source, row.position, fm.table, rejected, row.text)
            continue
        raw = _COMPACT.encode({"file": fm.name, "row": cells})
        yield key, Origin(source, row.position, fm.table), raw
    if header is None:
        detail = f"the file has no row {fm.header_row} to read the header from"
        quarantine.add(source, 0, "file", Rejected("missing header", detail), "")


class _Header(NamedTuple):
    """Where each wanted column is, and how many columns the header has."""

    at: dict[str, int]
    width: int


def _header(row: _Row, wanted: tuple[str, ...], source: str) -> tuple[_Header, Rejected | None]:
    """The header's wanted columns, and why the file's rows cannot be read if it lacks one
    (each row is then quarantined with that reason, so that nothing is lost)."""
    names = [text_of(c) for c in row.cells]
    header = _Header({name: names.index(name) for name in wanted if name in names}, len(names))
    if row.problem is not None:
        return header, Rejected("unreadable header", f"{row.problem.reason}: {row.problem.detail}")
    missing = [c for c in wanted if c not in names]
    if missing:
        columns = "1 column" if len(names) == 1 else f"{len(names)} columns"
        detail = f"{', '.join(missing)} not in the header of {source} ({columns})"
        return header, Rejected("missing mapped column", detail)
    twice = [c for c in wanted if names.count(c) > 1]
    if twice:
        return header, Rejected("ambiguous column", f"{', '.join(twice)} twice in the header")
    return header, None


def _cells(cells: list[Cell], header: _Header) -> dict[str, Cell]:
    """The wanted cells of a row that has the header's shape; cells past the header's last
    column may only be empty (a trailing delimiter, a sheet's unused columns)."""
    if len(cells) < header.width or any(text_of(c) for c in cells[header.width:]):
        detail = f"{len(cells)} fields where the header has {header.width}"
        raise Rejected("wrong column count", detail)
    return {name: cells[at] for name, at in header.at.items()}


def _mrn(cell: Cell, column: str) -> str:
    """The routing key: a medical record number that fits on one line of the spill file."""
    mrn = required(text_of(cell), f"{column} (MRN)")
    if _CONTROL.search(mrn) or len(mrn) > _MAX_MRN:
        raise Rejected("invalid value", f"{column} (MRN) is not a plain identifier")
    return str(mrn)


class _Lines:
    """The decoded physical lines of a CSV file, numbered, for :func:`csv.reader`.

    Any of ``\n``, ``\r\n`` and ``\r`` ends a line. It notes which lines the current record
    took, so that the record can be quarantined as it stood, and why one of them was unreadable:
    bytes neither UTF-8 nor GB 18030 (or not the declared encoding), or a line over
    :data:`_MAX_LINE` bytes, which is skipped to its end rather than held. An unreadable line is
    passed on as its escaped bytes, or as an empty line if too long, so the reader stays in step.
    """

    def __init__(self, path: Path, encoding: str) -> None:
        self.path = path
        self.encoding = encoding
        self.number = 0
        self.taken: list[str] = []
        self.problem: Rejected | None = None

    def start_record(self) -> int:
        """Forget the previous record's lines; the number of the line the next one starts on."""
        self.taken, self.problem = [], None
        return self.number + 1

    def __iter__(self) -> Iterator[str]:
        with self.path.open("rb") as handle:
            pending = b""  # the start of a line whose end is not read yet
            overlong = False  # inside a line already refused: drop it up to its end
            while chunk := handle.readline(_MAX_LINE):
                data = pending + chunk
                if overlong:
                    end = _LINE_END.search(data)
                    if end is None:
                        pending = b""
                        continue
                    data, overlong = data[end.end():], False
                pieces = data.splitlines(keepends=True)
                pending = pieces.pop() if pieces and not pieces[-1].endswith(b"\n") else b""
                for piece in pieces:
                    yield self._line(piece) if len(piece) <= _MAX_LINE else self._too_long(piece)
                if len(pending) >= _MAX_LINE:
                    yield self._too_long(pending)
                    pending, overlong = b"", True
            if pending:
                yield self._line(pending)

    def _line(self, data: bytes) -> str:
        self.number += 1
        try:
            text = decode(data) if self.encoding == "auto" else data.decode(self.encoding)
        except (Rejected, UnicodeDecodeError):
            expected = "UTF-8 or GB 18030" if self.encoding == "auto" else self.encoding
            self.problem = self.problem or Rejected(
                "not decodable", f"line {self.number} is not {expected}")
            text = shown(data)
        if self.number == 1:
            text = text.removeprefix("\ufeff")
        self.taken.append(text)
        return text

    def _too_long(self, start: bytes) -> str:
        self.number += 1
        detail = f"line {self.number} is longer than {_MAX_LINE} bytes"
        self.problem = self.problem or Rejected("row too long", detail)
        self.taken.append(shown(start[:_SHOWN_BYTES]) + "…")
        return "\n"


def sniff_delimiter(line: str) -> str:
    """The delimiter of a header line: the candidate it holds most of outside quotes, else
    ``,``; ties go to the more common delimiter (``,`` then ``;``, tab, ``|``)."""
    unquoted = re.sub(r'"[^"]*"', "", line)
    counts = [unquoted.count(d) for d in _DELIMITERS]
    best = max(range(len(_DELIMITERS)), key=lambda i: (counts[i], -i))
    return _DELIMITERS[best] if counts[best] else ","


def _delimiter(path: Path, fm: FileMapping) -> str:
    if fm.delimiter != "auto":
        return fm.delimiter
    lines = iter(_Lines(path, fm.encoding))
    line = ""
    for _ in range(fm.header_row):
        line = next(lines, "")
    return sniff_delimiter(line)


def _csv_rows(path: Path, fm: FileMapping) -> Iterator[_Row]:
    """The records of a CSV file, each with the line it starts on and the text it was read
    from; a record the ``csv`` module refuses (a field over its size limit) is quarantined."""
    lines = _Lines(path, fm.encoding)
    reader = csv.reader(iter(lines), delimiter=_delimiter(path, fm))
    index = 0
    while True:
        position = lines.start_record()
        try:
            cells: list[Cell] = list(next(reader))
            problem = lines.problem
        except StopIteration:
            return
        except csv.Error as exc:
            cells, problem = [], lines.problem or Rejected("malformed CSV", str(exc))
        index += 1
        yield _Row(index, position, cells, "".join(lines.taken).rstrip("\r\n"), problem)


def _xlsx_rows(path: Path, fm: FileMapping) -> Iterator[_Row]:
    """The rows of a workbook's sheet (the named one, else the first), numbered as in Excel.

    Raises :class:`Rejected` if the workbook cannot be read: openpyxl and the zip and XML
    layers under it raise assorted errors on a damaged file, so any error counts.
    """
    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:
        raise _unreadable(exc) from None
    try:
        if fm.sheet is not None and fm.sheet not in book.sheetnames:
            raise Rejected("missing sheet", f"no sheet {fm.sheet!r} in {path.name}")
        sheet = book[fm.sheet] if fm.sheet is not None else book.worksheets[0]
        rows = sheet.iter_rows(min_row=1, values_only=True)
        number = 0
        while True:
            try:
                values = next(rows, None)
            except Exception as exc:
                raise _unreadable(exc) from None
            if values is None:
                return
            number += 1
            cells = [_cell(v) for v in values]
            text = json.dumps(cells, ensure_ascii=False)
            yield _Row(number, number, cells, text, None)
    finally:
        book.close()


def _unreadable(exc: Exception) -> Rejected:
    return Rejected("unreadable workbook", f"{type(exc).__name__}: {exc}"[:500])


def _cell(value: object) -> Cell:
    """A workbook value as a routed cell: numbers stay numbers (they may be Excel serial dates),
    a real date is marked as one, anything else is text."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return value
    if isinstance(value, dt.datetime):
        return {"date": value.date().isoformat()}
    if isinstance(value, dt.date):
        return {"date": value.isoformat()}
    return str(value)


class TabularMapper:
    """Maps one batch's routed rows into :class:`PatientRows`, quarantining what fails.

    A person row gives the patient's identity (for the vault) and person row; any other row
    gives one fact, for a patient whose own row is in the export or who is in the store. With a
    ``record_id`` column a fact's record is ``"{mapping name}/{id}"``, so a corrected row
    replaces the one loaded before; without one a row is identified by what it says.
    """

    #: Routing keys are the hospital's medical record numbers.
    key_namespace = "mrn"

    def __init__(self, quarantine: Quarantine, mapping: TabularMapping) -> None:
        self.quarantine = quarantine
        self._files = {fm.name: fm for fm in mapping.files}

    def add(self, patients: dict[str, PatientRows], key: str, origin: Origin, raw: str) -> None:
        """Map one routed row; person rows come before the rows that refer to them."""
        try:
            routed = json.loads(raw)
            fm = self._files[routed["file"]]
            cells: dict[str, Cell] = routed["row"]
            if fm.table == "person":
                rows = patients.setdefault(key, PatientRows(key))
                rows.person, rows.person_origin = _person(fm, cells, key), origin
                return
            rows = known_patient(
                patients, key, f"the MRN in {fm.mrn} is neither in this export nor in the store")
            rows.put([_fact(fm, cells, origin)])
        except Rejected as rejected:
            self.quarantine.add(origin.source, origin.position, origin.kind, rejected, raw)
        except (TypeError, ValueError, AttributeError, KeyError) as exc:
            self.quarantine.add(origin.source, origin.position, origin.kind,
                                unexpected_shape(exc), raw)


def _values(fm: FileMapping, cells: dict[str, Cell]) -> dict[str, Value]:
    """Every mapped target's value; a required one that is empty refuses the row."""
    out: dict[str, Value] = {}
    for name, rule in fm.columns.items():
        target = TARGETS[fm.table][name]
        where = f"{rule.column or 'constant'} ({fm.table}.{name})"
        value = read_value(target, rule, cells.get(rule.column) if rule.column else None, where)
        if value is None and target.required:
            raise Rejected("missing required field", where)
        out[name] = value
    return out


def _person(fm: FileMapping, cells: dict[str, Cell], mrn: str) -> PersonFacts:
    values: dict[str, Any] = _values(fm, cells)
    birth = birth_date_in_range(values["birth_date"])
    identity = Identity(
        name=values.get("name") or "",
        mrn=mrn,
        id_number=values.get("id_number"),
        phone=values.get("phone"),
        address=values.get("address"),
        birth_date=birth,
    )
    return PersonFacts(identity, values.get("sex") or "unknown", birth, values.get("death_date"))


def _fact(fm: FileMapping, cells: dict[str, Cell], origin: Origin) -> Fact:
    row = _values(fm, cells)
    visit = text_of(cells.get(fm.visit)) if fm.visit is not None else ""
    if fm.table == "visit" and not visit:
        raise Rejected("missing required field", f"{fm.visit} (visit id)")
    record = None
    if fm.record_id is not None:
        record = f"{fm.name}/{required(text_of(cells.get(fm.record_id)), fm.record_id)}"
    return Fact(fm.table, row, origin, visit or None, record)
