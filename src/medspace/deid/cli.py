"""``medspace deid``: measure the re-identification risk of a CSV, and de-identify one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.table import Table

from medspace.deid import risk
from medspace.deid.apply import ApplyError, apply_profile
from medspace.deid.profiles import BUILT_IN, ProfileError, load_profile
from medspace.keyfiles import KeyFileError, read_private
from medspace.terminal import fail, out

_KEY_BYTES = 32

deid_app = typer.Typer(help="De-identify tables and measure what risk remains.",
                       no_args_is_help=True)


def _read(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise fail(f"{path}: cannot read it as CSV ({exc})") from None


def _columns(table: pd.DataFrame, names: str, what: str) -> list[str]:
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    missing = [n for n in wanted if n not in table.columns]
    if missing:
        raise fail(f"{what}: no column {', '.join(missing)}; the file has "
                   f"{', '.join(map(str, table.columns))}")
    return wanted


@deid_app.command("risk")
def risk_command(
    csv: Annotated[Path, typer.Argument(help="The table to measure (CSV with a header row).")],
    quasi: Annotated[str, typer.Option(
        help="Comma-separated quasi-identifier columns, e.g. age,sex,zip.")],
    sensitive: Annotated[str | None, typer.Option(
        help="The sensitive column, for l-diversity and t-closeness.")] = None,
    threshold: Annotated[float, typer.Option(
        help="A record is at risk above this re-identification probability.")] = 0.2,
    report: Annotated[Path | None, typer.Option(help="Also write the figures as JSON here.")] = (
        None),
) -> None:
    """Measure k-anonymity, l-diversity, t-closeness and the prosecutor and marketer risks."""
    table = _read(csv)
    columns = _columns(table, quasi, "--quasi")
    prosecutor = risk.prosecutor_risk(table, columns, threshold)
    figures: dict[str, object] = {
        "records": len(table),
        "k_anonymity": risk.k_anonymity(table, columns),
        "sample_uniqueness": risk.sample_uniqueness(table, columns),
        "prosecutor": prosecutor.to_dict(),
        "marketer": risk.marketer_risk(table, columns),
    }
    if sensitive is not None:
        [column] = _columns(table, sensitive, "--sensitive")
        figures["l_diversity_distinct"] = risk.l_diversity_distinct(table, columns, column)
        figures["l_diversity_entropy"] = risk.l_diversity_entropy(table, columns, column)
        figures["t_closeness"] = risk.t_closeness(table, columns, column, ordered=False)
    shown = Table("measure", "value", title=f"{csv.name}: {len(table):,} records")
    for name, value in figures.items():
        if isinstance(value, dict):
            for part, number in value.items():
                shown.add_row(f"{name} {part}", f"{number:.4g}")
        else:
            shown.add_row(name, f"{value:,}" if isinstance(value, int) else f"{value:.4g}")
    out.print(shown)
    if report is not None:
        report.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
        out.print(f"figures written to {report}")


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
) -> None:
    """De-identify a CSV with a profile; columns the profile does not name are dropped."""
    try:
        chosen = load_profile(profile if profile in BUILT_IN else Path(profile))
        secret = read_private(key)
    except (ProfileError, KeyFileError) as exc:
        raise fail(str(exc)) from None
    if len(secret) < _KEY_BYTES:
        raise fail(f"{key} holds {len(secret)} bytes; a key needs {_KEY_BYTES}")
    mapping = dict(pair.split("=", 1) for pair in fields.split(",") if "=" in pair)
    table = _read(csv)
    try:
        result = apply_profile(table, chosen, secret, fields=mapping, patient=patient)
    except (ApplyError, ValueError) as exc:
        raise fail(f"{csv}: {exc}") from None
    result.to_csv(output, index=False)
    dropped = [c for c in table.columns if c not in result.columns]
    out.print(f"{len(result):,} records written to {output} with profile {chosen.name}; "
              f"dropped: {', '.join(map(str, dropped)) or 'none'}")
