"""The demo's report: the study's answer and the regulator's findings, as one HTML page."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from medspace.demo.audit import AuditOutcome


def pooled_count(cell: dict[str, Any]) -> str:
    """A pooled cell in words: exact, at least (some hospitals withheld theirs), or withheld."""
    if not cell["suppressed_at"]:
        return f"{cell['count']:,}"
    return f"≥ {cell['count']:,}" if cell["count"] else "suppressed"


def write_report(path: Path, study: dict[str, Any], audit: AuditOutcome,
                 hospitals: dict[str, dict[str, int]]) -> None:
    """Write ``report.html``: what was asked, who answered, what left, and the proof of it."""
    environment = Environment(loader=PackageLoader("medspace.demo", "templates"),
                              autoescape=select_autoescape(["html"]))
    result = study["result"]
    cells = result.get("result", {})
    html = environment.get_template("report.html.j2").render(
        generated=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        study=study,
        outcome=result,
        group_by=cells.get("group_by", []),
        by_hospital=cells.get("by_hospital", []),
        pooled=cells.get("pooled", []),
        hospitals=hospitals,
        audit=audit,
        pooled_count=pooled_count,
    )
    path.write_text(html, encoding="utf-8")
