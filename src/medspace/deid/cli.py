"""``medspace deid``: measure the re-identification risk of a CSV, and de-identify one."""

from __future__ import annotations

import io
import math
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.table import Table

from medspace.deid.anonymise import Anonymised, anonymise
from medspace.deid.apply import ApplyError, apply_profile
from medspace.deid.profiles import BUILT_IN, QUASI_IDENTIFIERS, ProfileError, load_profile
from medspace.deid.report import (
    DeidReport,
    RiskReport,
    describe_anonymisation,
    describe_profile,
    measure,
)
from medspace.deid.risk import DEFAULT_THRESHOLD
from medspace.keyfiles import KeyFileError, read_private
from medspace.terminal import fail, out

_KEY_BYTES = 32

deid_app = typer.Typer(help="De-identify tables and measure what risk remains.",
                       no_args_is_help=True)

_Threshold = Annotated[float, typer.Option(
    help="A record is at risk when the chance of picking it out exceeds this (0.2: a group of "
         "fewer than 5).")]
_JsonReport = Annotated[Path | None, typer.Option(
    "--json", help="Write the report's figures as JSON here.")]
_HtmlReport = Annotated[Path | None, typer.Option(
    "--html", help="Write the report as an HTML page here, for the privacy officer.")]


def _read(path: Path, what: str = "") -> pd.DataFrame:
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise fail(f"{what}{path}: cannot read it as CSV ({exc})") from None


def _columns(table: pd.DataFrame, names: str, what: str) -> list[str]:
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    if not wanted:
        raise fail(f"{what}: name at least one column")
    missing = [n for n in wanted if n not in table.columns]
    if missing:
        raise fail(f"{what}: no column {', '.join(missing)}; the file has "
                   f"{', '.join(map(str, table.columns))}")
    return wanted


def _sensitive(table: pd.DataFrame, name: str | None, quasi: list[str]) -> str | None:
    if name is None:
        return None
    [column] = _columns(table, name, "--sensitive")
    if column in quasi:
        raise fail(f"--sensitive: {column} is also a quasi-identifier; l-diversity and "
                   "t-closeness measure what the quasi-identifiers do not reveal")
    return column


def _check_threshold(threshold: float) -> None:
    if not 0.0 < threshold <= 1.0:
        raise fail(f"--threshold: a chance between 0 (excluded) and 1, got {threshold}")


def _write_all(files: Mapping[Path, str]) -> None:
    """Write every file or none, so that a failure leaves no partial output behind.

    Each text goes to a temporary file beside its target (created like any file, so the
    umask sets its mode); only when all are written are they renamed into place.
    """
    written: dict[Path, Path] = {}
    target: Path | None = None
    try:
        for target, text in files.items():
            temporary = target.with_name(f".{target.name}.{secrets.token_hex(6)}.part")
            with temporary.open("x", encoding="utf-8", newline="") as stream:
                written[target] = temporary
                stream.write(text)
        for target, temporary in written.items():
            temporary.replace(target)
    except OSError as exc:
        for temporary in written.values():
            temporary.unlink(missing_ok=True)
        raise fail(f"{target}: cannot write it ({exc.strerror or exc})") from None


def _reports(report: RiskReport | DeidReport, json_path: Path | None, html: Path | None,
             title: str) -> dict[Path, str]:
    files: dict[Path, str] = {}
    if json_path is not None:
        files[json_path] = report.to_json()
    if html is not None:
        files[html] = report.to_html(title)
    return files


def _risk_table(report: RiskReport, title: str) -> Table:
    shown = Table("measure", "value", title=title)
    rows: list[tuple[str, int | float]] = [
        ("records", report.records),
        ("k_anonymity", report.k_anonymity),
        ("equivalence_classes", report.equivalence_classes),
        ("sample_uniqueness", report.sample_uniqueness),
        ("records_at_risk", report.records_at_risk),
    ]
    for name, figures in (("prosecutor", report.prosecutor), ("journalist", report.journalist)):
        if figures is not None:
            rows += [(f"{name} {part}", number) for part, number in figures.to_dict().items()]
    rows.append(("marketer", report.marketer))
    if (report.l_diversity_distinct is not None and report.l_diversity_entropy is not None
            and report.t_closeness is not None):
        rows += [("l_diversity_distinct", report.l_diversity_distinct),
                 ("l_diversity_entropy", report.l_diversity_entropy),
                 ("t_closeness", report.t_closeness)]
    for name, value in rows:
        shown.add_row(name, f"{value:,}" if isinstance(value, int) else f"{value:.4g}")
    return shown


@deid_app.command("risk")
def risk_command(
    csv: Annotated[Path, typer.Argument(help="The table to measure (CSV with a header row).")],
    quasi: Annotated[str, typer.Option(
        help="Comma-separated quasi-identifier columns, e.g. age,sex,zip.")],
    sensitive: Annotated[str | None, typer.Option(
        help="The sensitive column, for l-diversity and t-closeness.")] = None,
    threshold: _Threshold = DEFAULT_THRESHOLD,
    population: Annotated[Path | None, typer.Option(
        help="The table the extract was drawn from (CSV), for the journalist risk.")] = None,
    json_path: _JsonReport = None,
    html: _HtmlReport = None,
) -> None:
    """Measure k-anonymity, l-diversity, t-closeness and the risk of re-identification."""
    _check_threshold(threshold)
    table = _read(csv)
    columns = _columns(table, quasi, "--quasi")
    column = _sensitive(table, sensitive, columns)
    everyone = None
    if population is not None:
        everyone = _read(population, "--population ")
        _columns(everyone, ",".join(columns), f"--population {population}")
    try:
        report = measure(table, columns, column, threshold, population=everyone)
    except ValueError as exc:
        # The columns and threshold are checked above: what is left is a population that
        # does not contain the extract.
        raise fail(f"--population {population}: {exc}") from None
    out.print(_risk_table(report, f"{csv.name}: {len(table):,} records"))
    files = _reports(report, json_path, html, csv.name)
    _write_all(files)
    for path in files:
        out.print(f"report written to {path}")


def _fields(table: pd.DataFrame, fields: str) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for pair in (p.strip() for p in fields.split(",")):
        if not pair:
            continue
        column, sign, field = pair.partition("=")
        if not sign or not column.strip() or not field.strip():
            raise fail(f"--fields: {pair!r} is not column=field")
        mapping[column.strip()] = field.strip()
    missing = [c for c in mapping if c not in table.columns]
    if missing:
        raise fail(f"--fields: no column {', '.join(missing)}; the file has "
                   f"{', '.join(map(str, table.columns))}")
    return mapping


def _written(table: pd.DataFrame, names: str, what: str, result: pd.DataFrame) -> list[str]:
    """The columns ``names`` lists, which must survive the profile."""
    columns = _columns(table, names, what)
    dropped = [c for c in columns if c not in result.columns]
    if dropped:
        raise fail(f"{what}: the profile drops {', '.join(dropped)}; keep it in a profile of "
                   "your own or leave it out")
    return columns


def _for_mondrian(table: pd.DataFrame, quasi: list[str]) -> pd.DataFrame:
    """The table with its quasi-identifiers typed for the anonymiser.

    A column whose every value reads back unchanged as a finite number is cut by value, into
    ranges such as ``30-39``; any other is cut as sorted text (``007`` stays text, keeping its
    zeros).  The anonymiser refuses missing quasi-identifiers, so a missing value becomes the
    empty string: one more category, as the risk measures count it.
    """
    typed = table.copy()
    for column in quasi:
        text = table[column].map(lambda v: "" if pd.isna(v) else str(v))
        numbers = pd.to_numeric(text, errors="coerce")
        exact = numbers.notna().all() and (numbers.astype(str) == text).all()
        typed[column] = numbers if exact and bool(numbers.abs().lt(math.inf).all()) else text
    return typed


def _anonymise(table: pd.DataFrame, quasi: list[str], k: int, diversity: int | None,
               sensitive: str | None, max_suppression: float) -> Anonymised:
    """Run the anonymiser; when it refuses, say how many records it would suppress and what
    would let it through."""
    typed = _for_mondrian(table, quasi)
    try:
        return anonymise(typed, quasi, k, l=diversity, sensitive=sensitive,
                         max_suppression=max_suppression)
    except ValueError as exc:
        refused = exc
    try:
        unbounded = anonymise(typed, quasi, k, l=diversity, sensitive=sensitive,
                              max_suppression=1.0)
    except ValueError:
        raise fail(f"cannot anonymise: {refused}") from None
    n, suppressed = len(table), unbounded.suppressed
    target = f"k = {k}" + (f" with l = {diversity} on {sensitive}" if diversity else "")
    if suppressed == n:
        advice = [f"--k of at most {n:,}, the records the table holds"] if n < k else []
        if diversity is not None and sensitive is not None:
            distinct = table[sensitive].nunique(dropna=False)
            if distinct < diversity:
                advice.append(f"--l of at most {distinct}, the values {sensitive} takes")
        remedy = "; use a " + " and a ".join(advice) if advice else ""
    else:
        remedy = (f"; try a smaller --k{' or --l' if diversity else ''}, a --max-suppression "
                  f"of at least {math.ceil(100 * suppressed / n) / 100:.2f}, or a profile "
                  f"that generalises {', '.join(quasi)} more")
    raise fail(f"{target} cannot be reached within the suppression budget: it would suppress "
               f"{suppressed:,} of {n:,} records, more than --max-suppression "
               f"{max_suppression:g} allows ({math.floor(max_suppression * n):,}){remedy}")


def _as_read(text: str) -> pd.DataFrame:
    """The CSV text as its recipient reads it, so the risk measured is the risk released."""
    return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, na_values=[""])


@deid_app.command("apply")
def apply_command(
    csv: Annotated[Path, typer.Argument(help="The table to de-identify (CSV with a header).")],
    profile: Annotated[str, typer.Option(
        help=f"A built-in profile ({', '.join(BUILT_IN)}) or a profile YAML file.")],
    key: Annotated[Path, typer.Option(
        help="The node's pseudonym key file (keys/pseudonym.key): keyed pseudonyms, "
             "encryption and date shifts use it.")],
    output: Annotated[Path, typer.Option("--out", help="Where to write the result (CSV).")],
    fields: Annotated[str, typer.Option(
        help="Which profile field each column is, e.g. 姓名=name,出生日期=birth_date; a "
             "column named like its field needs none.")] = "",
    patient: Annotated[str | None, typer.Option(
        help="The column that tells patients apart (for per-patient date shifts).")] = None,
    k: Annotated[int | None, typer.Option(
        "--k", min=1, help="Then generalise the quasi-identifiers until every record shares "
                           "them with at least k-1 others.")] = None,
    diversity: Annotated[int | None, typer.Option(
        "--l", min=1, help="With --k: every group also holds at least l different values of "
                           "--sensitive.")] = None,
    sensitive: Annotated[str | None, typer.Option(
        help="The sensitive column, for --l and for measuring l-diversity and "
             "t-closeness.")] = None,
    quasi: Annotated[str | None, typer.Option(
        help="Comma-separated quasi-identifier columns; by default the columns whose profile "
             "field is a quasi-identifier (birth_date, sex, zip, ...).")] = None,
    max_suppression: Annotated[float, typer.Option(
        min=0.0, max=1.0, help="The largest share of records --k may suppress.")] = 0.05,
    threshold: _Threshold = DEFAULT_THRESHOLD,
    json_path: _JsonReport = None,
    html: _HtmlReport = None,
) -> None:
    """De-identify a CSV with a profile, optionally k-anonymise it, and report the risk left.

    Columns the profile does not name are dropped.  Nothing is written unless everything
    succeeds.
    """
    _check_threshold(threshold)
    if diversity is not None and (k is None or sensitive is None):
        raise fail("--l needs --k and --sensitive (use --k 1 for l-diversity alone)")
    try:
        chosen = load_profile(profile if profile in BUILT_IN else Path(profile))
        secret = read_private(key)
    except (ProfileError, KeyFileError) as exc:
        raise fail(str(exc)) from None
    if len(secret) < _KEY_BYTES:
        raise fail(f"{key} holds {len(secret)} bytes; a key needs {_KEY_BYTES}")
    table = _read(csv)
    mapping = _fields(table, fields)
    try:
        profiled = apply_profile(table, chosen, secret, fields=mapping, patient=patient)
    except (ApplyError, ValueError) as exc:
        raise fail(f"{csv}: {exc}") from None

    if quasi is not None:
        columns = _written(table, quasi, "--quasi", profiled)
    else:
        columns = [c for c in profiled.columns if mapping.get(c, c) in QUASI_IDENTIFIERS]
        if k is not None and not columns:
            raise fail(f"--k: no column written is a quasi-identifier field of profile "
                       f"{chosen.name}; name them with --quasi")
    column = None
    if sensitive is not None:
        [column] = _written(table, sensitive, "--sensitive", profiled)
        if column in columns:
            raise fail(f"--sensitive: {column} is also a quasi-identifier")

    anonymisation = None
    released = profiled
    if k is not None:
        result = _anonymise(profiled, columns, k, diversity, column, max_suppression)
        released = result.table
        anonymisation = describe_anonymisation(
            result, quasi=columns, k=k, records=len(profiled), l=diversity, sensitive=column,
            max_suppression=max_suppression)
    text = released.to_csv(index=False)
    before = after = None
    if columns:
        before = measure(table, columns, column, threshold)
        after = measure(_as_read(text), columns, column, threshold)
    report = DeidReport(
        records_in=len(table), records_out=len(released),
        profile=describe_profile(chosen, [str(c) for c in table.columns], mapping),
        before=before, after=after, anonymisation=anonymisation)
    _write_all({output: text, **_reports(report, json_path, html, csv.name)})

    out.print(f"{len(released):,} records written to {output} with profile {chosen.name}; "
              f"dropped: {', '.join(report.profile.dropped) or 'none'}")
    if anonymisation is not None:
        out.print(f"anonymised over {', '.join(columns)}: {anonymisation.suppressed:,} records "
                  f"suppressed, {anonymisation.partitions:,} groups")
    if after is None:
        out.print("no quasi-identifier among the columns written, so no risk measured "
                  "(name them with --quasi)")
    else:
        reached = f"k = {after.k_anonymity}" + (f" (asked for {k})" if k is not None else "")
        out.print(f"risk after: {reached}; highest chance of picking a record out "
                  f"{after.prosecutor.highest:.0%}; {after.records_at_risk:,} records at risk "
                  f"(above {after.threshold:g})")
    for path in (json_path, html):
        if path is not None:
            out.print(f"report written to {path}")
