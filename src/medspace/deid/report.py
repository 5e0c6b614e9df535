"""Risk and de-identification reports: what a privacy officer reads before an extract leaves.

:func:`measure` gathers the measures of :mod:`medspace.deid.risk` for one table into a
:class:`RiskReport`; a :class:`DeidReport` puts the risk before and after a de-identification
side by side with what the profile did to each column and what the anonymiser cost.  Both are
plain frozen data: the CLI writes them for an extract, and a node can keep one with every
dataset it publishes.

A report holds counts, shares and column names only, never a record's values, so it can be
shown, logged or sent to a data-use committee without disclosing anyone.

``to_dict`` / ``to_json`` give stable keys (documented on each ``to_dict``); ``write_html``
renders the templates in ``templates/`` in plain words, with a bar chart drawn in CSS: the page
loads nothing from the network and runs no script.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape

from medspace.deid import risk
from medspace.deid.anonymise import Anonymised
from medspace.deid.profiles import Profile

__all__ = [
    "Anonymisation",
    "ClassSize",
    "ColumnTreatment",
    "DeidReport",
    "ProfileApplied",
    "RiskReport",
    "SizeBand",
    "describe_anonymisation",
    "describe_profile",
    "measure",
]

# Lower edges of the bars of the class-size chart; the threshold's safe size is added, so
# that no bar mixes records at risk with records that are not.
_BAND_EDGES = (1, 2, 3, 4, 5, 10, 20, 50, 100)


@dataclass(frozen=True)
class ClassSize:
    """``classes`` equivalence classes hold exactly ``size`` records each."""

    size: int
    classes: int

    @property
    def records(self) -> int:
        """Records in classes of this size."""
        return self.size * self.classes


@dataclass(frozen=True)
class SizeBand:
    """One bar of the class-size chart: classes of ``low`` to ``high`` records.

    ``at_risk`` is true when the band's records are above the report's threshold (the bands
    are cut at the threshold, so a band is all at risk or not at all).
    """

    low: int
    high: int
    classes: int
    records: int
    at_risk: bool

    @property
    def label(self) -> str:
        """``"1"`` or ``"5–9"``."""
        return str(self.low) if self.low == self.high else f"{self.low}–{self.high}"


@dataclass(frozen=True)
class RiskReport:
    """The re-identification risk of one table over its quasi-identifiers.

    The l and t figures are None without a sensitive column, ``journalist`` without a
    population to match against.  ``records_at_risk`` counts the records whose prosecutor risk
    (1 / the size of their class) exceeds ``threshold``.
    """

    records: int
    quasi_identifiers: tuple[str, ...]
    sensitive: str | None
    threshold: float
    k_anonymity: int
    equivalence_classes: int
    sample_uniqueness: float
    records_at_risk: int
    prosecutor: risk.RiskFigures
    journalist: risk.RiskFigures | None
    marketer: float
    l_diversity_distinct: int | None
    l_diversity_entropy: float | None
    t_closeness: float | None
    class_sizes: tuple[ClassSize, ...]
    """Every class size that occurs, smallest first."""

    @property
    def safe_size(self) -> int:
        """The smallest class whose records are not at risk: 5 for a threshold of 0.2."""
        size = max(1, math.floor(1.0 / self.threshold))
        while 1.0 / size > self.threshold:
            size += 1
        while size > 1 and not 1.0 / (size - 1) > self.threshold:
            size -= 1
        return size

    def bands(self) -> tuple[SizeBand, ...]:
        """The class sizes grouped into bars, from 1 up to the band of the largest class.

        Empty bars below the largest class are kept: a bar at zero for records alone in their
        class is the news a reader looks for.
        """
        if not self.class_sizes:
            return ()
        largest = self.class_sizes[-1].size
        edges = sorted({*_BAND_EDGES, self.safe_size})
        edges = [e for e in edges if e <= largest]
        bands = []
        for position, low in enumerate(edges):
            high = edges[position + 1] - 1 if position + 1 < len(edges) else largest
            inside = [c for c in self.class_sizes if low <= c.size <= high]
            bands.append(SizeBand(
                low=low,
                high=high,
                classes=sum(c.classes for c in inside),
                records=sum(c.records for c in inside),
                at_risk=low < self.safe_size,
            ))
        return tuple(bands)

    def to_dict(self) -> dict[str, Any]:
        """The figures as JSON-ready data.

        Keys: ``records``, ``quasi_identifiers``, ``sensitive``, ``threshold``,
        ``k_anonymity``, ``equivalence_classes``, ``sample_uniqueness`` (share),
        ``records_at_risk`` (count), ``prosecutor`` and ``journalist`` (each ``highest``,
        ``average``, ``records_at_risk`` as a share, ``threshold``), ``marketer`` (share),
        ``l_diversity_distinct``, ``l_diversity_entropy``, ``t_closeness`` and ``class_sizes``
        (a list of ``{"size", "classes", "records"}``).  A figure that was not measured is null.
        """
        return {
            "records": self.records,
            "quasi_identifiers": list(self.quasi_identifiers),
            "sensitive": self.sensitive,
            "threshold": self.threshold,
            "k_anonymity": self.k_anonymity,
            "equivalence_classes": self.equivalence_classes,
            "sample_uniqueness": self.sample_uniqueness,
            "records_at_risk": self.records_at_risk,
            "prosecutor": self.prosecutor.to_dict(),
            "journalist": None if self.journalist is None else self.journalist.to_dict(),
            "marketer": self.marketer,
            "l_diversity_distinct": self.l_diversity_distinct,
            "l_diversity_entropy": self.l_diversity_entropy,
            "t_closeness": self.t_closeness,
            "class_sizes": [{"size": c.size, "classes": c.classes, "records": c.records}
                            for c in self.class_sizes],
        }

    def to_json(self) -> str:
        """:meth:`to_dict` as indented JSON."""
        return _json(self.to_dict())

    def to_html(self, title: str = "") -> str:
        """The report as a self-contained HTML page; ``title`` names the table measured."""
        return _render("risk.html.j2", title=title, report=self)

    def write_html(self, path: Path, title: str = "") -> None:
        """Write :meth:`to_html` to ``path``."""
        path.write_text(self.to_html(title), encoding="utf-8")


def measure(
    df: pd.DataFrame,
    quasi: Sequence[Hashable],
    sensitive: Hashable | None = None,
    threshold: float = risk.DEFAULT_THRESHOLD,
    *,
    population: pd.DataFrame | None = None,
) -> RiskReport:
    """Measure the risk of ``df`` over ``quasi`` (and ``sensitive``) into one report.

    ``threshold`` is the re-identification probability above which a record counts as at
    risk (0.2: a class of fewer than 5).  With ``population``, the table the extract was drawn
    from, the journalist risk is measured and the marketer risk matches against the population.
    t-closeness treats the sensitive values as categories.  Raises ``ValueError`` for a
    threshold outside (0, 1], a column not in ``df`` or a sensitive column that is also a
    quasi-identifier.
    """
    quasi = list(quasi)
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"the threshold is a probability in (0, 1], got {threshold}")
    wanted = [*quasi, *([] if sensitive is None else [sensitive])]
    missing = [str(c) for c in wanted if c not in df.columns]
    if missing:
        raise ValueError(f"no column {', '.join(missing)} in the table")
    if sensitive is not None and sensitive in quasi:
        raise ValueError(f"the sensitive column {sensitive} cannot be a quasi-identifier")
    per_record = risk.equivalence_classes(df, quasi)
    records_per_size = per_record.value_counts().sort_index()
    sizes = tuple(ClassSize(int(size), int(records) // int(size))
                  for size, records in records_per_size.items())
    return RiskReport(
        records=len(df),
        quasi_identifiers=tuple(str(c) for c in quasi),
        sensitive=None if sensitive is None else str(sensitive),
        threshold=threshold,
        k_anonymity=risk.k_anonymity(df, quasi),
        equivalence_classes=sum(c.classes for c in sizes),
        sample_uniqueness=risk.sample_uniqueness(df, quasi),
        records_at_risk=sum(c.records for c in sizes if 1.0 / c.size > threshold),
        prosecutor=risk.prosecutor_risk(df, quasi, threshold),
        journalist=(None if population is None
                    else risk.journalist_risk(df, population, quasi, threshold)),
        marketer=risk.marketer_risk(df, quasi, population),
        l_diversity_distinct=(None if sensitive is None
                              else risk.l_diversity_distinct(df, quasi, sensitive)),
        l_diversity_entropy=(None if sensitive is None
                             else risk.l_diversity_entropy(df, quasi, sensitive)),
        t_closeness=(None if sensitive is None
                     else risk.t_closeness(df, quasi, sensitive, ordered=False)),
        class_sizes=sizes,
    )


@dataclass(frozen=True)
class ColumnTreatment:
    """What the profile did to one column: its field, the action and the action's settings."""

    column: str
    field: str
    action: str
    detail: str
    """The rule's parameters in words (``"to year"``, ``"keeps 3 + 4 characters"``)."""


@dataclass(frozen=True)
class ProfileApplied:
    """The profile as applied to one table: every column kept, with its operator, and those
    dropped."""

    name: str
    reference: str
    columns: tuple[ColumnTreatment, ...]
    dropped: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """Keys: ``name``, ``reference``, ``columns`` (a list of ``{"column", "field",
        "action", "detail"}``) and ``dropped`` (column names)."""
        return {
            "name": self.name,
            "reference": self.reference,
            "columns": [{"column": c.column, "field": c.field, "action": c.action,
                         "detail": c.detail} for c in self.columns],
            "dropped": list(self.dropped),
        }


def describe_profile(
    profile: Profile, columns: Sequence[str], fields: Mapping[str, str] | None = None
) -> ProfileApplied:
    """Say what ``profile`` does to each of ``columns``, named as :func:`apply_profile` names
    them (``fields`` maps a column to its profile field; a column is otherwise its own field)."""
    fields = dict(fields or {})
    kept: list[ColumnTreatment] = []
    dropped: list[str] = []
    for column in columns:
        field = fields.get(column, column)
        rule = profile.rule(field)
        if rule.action == "drop":
            dropped.append(column)
            continue
        if rule.action == "generalise":
            detail = f"to {rule.to}"
        elif rule.action == "mask":
            detail = f"keeps the first {rule.keep_start or 3} and last {rule.keep_end or 4}"
        elif rule.action == "top_code":
            detail = f"above {rule.ceiling:g} becomes {rule.label}"
        elif rule.action == "shift":
            detail = "by the same days for all of a patient's dates"
        else:
            detail = ""
        kept.append(ColumnTreatment(column, field, rule.action, detail))
    return ProfileApplied(profile.name, profile.reference, tuple(kept), tuple(dropped))


@dataclass(frozen=True)
class Anonymisation:
    """What the anonymiser was asked for and what it did: targets, suppression and utility.

    ``discernibility`` is the sum of squared class sizes (a suppressed record costing the
    table's size); ``certainty_penalty`` the mean share of their column's range the numeric
    quasi-identifiers were widened to (0 to 1); ``kl_divergence`` how far each
    quasi-identifier's distribution moved, in nats (0: unchanged).
    """

    k: int
    l: int | None  # noqa: E741 - the letter of the l-diversity literature
    sensitive: str | None
    quasi_identifiers: tuple[str, ...]
    max_suppression: float
    records: int
    suppressed: int
    partitions: int
    discernibility: int
    certainty_penalty: float
    kl_divergence: Mapping[str, float]

    @property
    def mean_class_size(self) -> float:
        """Discernibility over records: the size of the class the average record sits in."""
        return self.discernibility / self.records if self.records else 0.0

    def to_dict(self) -> dict[str, Any]:
        """Keys: ``k``, ``l``, ``sensitive``, ``quasi_identifiers``, ``max_suppression``,
        ``records`` (before suppression), ``suppressed``, ``partitions`` and ``utility``
        (``discernibility``, ``certainty_penalty``, ``kl_divergence`` per quasi-identifier)."""
        return {
            "k": self.k,
            "l": self.l,
            "sensitive": self.sensitive,
            "quasi_identifiers": list(self.quasi_identifiers),
            "max_suppression": self.max_suppression,
            "records": self.records,
            "suppressed": self.suppressed,
            "partitions": self.partitions,
            "utility": {
                "discernibility": self.discernibility,
                "certainty_penalty": self.certainty_penalty,
                "kl_divergence": dict(self.kl_divergence),
            },
        }


def describe_anonymisation(
    result: Anonymised,
    *,
    quasi: Sequence[Hashable],
    k: int,
    records: int,
    l: int | None = None,  # noqa: E741 - the letter of the l-diversity literature
    sensitive: Hashable | None = None,
    max_suppression: float = 0.05,
) -> Anonymisation:
    """The :class:`Anonymisation` of ``result``, with the targets it was asked for."""
    return Anonymisation(
        k=k,
        l=l,
        sensitive=None if sensitive is None else str(sensitive),
        quasi_identifiers=tuple(str(c) for c in quasi),
        max_suppression=max_suppression,
        records=records,
        suppressed=result.suppressed,
        partitions=result.partitions,
        discernibility=result.utility.discernibility,
        certainty_penalty=result.utility.certainty_penalty,
        kl_divergence={str(c): v for c, v in result.utility.kl_divergence.items()},
    )


@dataclass(frozen=True)
class DeidReport:
    """A de-identification from end to end: the profile, the risk before and after, and the
    anonymisation when one ran.

    ``before`` and ``after`` are None when no column was taken as a quasi-identifier, since
    there is then nothing to measure the risk over.
    """

    records_in: int
    records_out: int
    profile: ProfileApplied
    before: RiskReport | None
    after: RiskReport | None
    anonymisation: Anonymisation | None

    def to_dict(self) -> dict[str, Any]:
        """Keys: ``records_in``, ``records_out``, ``profile`` (:meth:`ProfileApplied.to_dict`),
        ``risk_before`` and ``risk_after`` (:meth:`RiskReport.to_dict`, or null) and
        ``anonymisation`` (:meth:`Anonymisation.to_dict`, or null when none ran)."""
        return {
            "records_in": self.records_in,
            "records_out": self.records_out,
            "profile": self.profile.to_dict(),
            "risk_before": None if self.before is None else self.before.to_dict(),
            "risk_after": None if self.after is None else self.after.to_dict(),
            "anonymisation": (None if self.anonymisation is None
                              else self.anonymisation.to_dict()),
        }

    def to_json(self) -> str:
        """:meth:`to_dict` as indented JSON."""
        return _json(self.to_dict())

    def to_html(self, title: str = "") -> str:
        """The report as a self-contained HTML page; ``title`` names the extract."""
        return _render("deid.html.j2", title=title, report=self)

    def write_html(self, path: Path, title: str = "") -> None:
        """Write :meth:`to_html` to ``path``."""
        path.write_text(self.to_html(title), encoding="utf-8")


def _json(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def _words(names: Sequence[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    names = list(names)
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def _percent(share: float) -> str:
    """A share as a percentage, with a decimal only where it matters (0.4%, 12%)."""
    value = 100 * share
    if value == 0 or value >= 10 or value == round(value):
        return f"{value:.0f}%"
    return f"{value:.1f}%"


def _counted(number: int, noun: str) -> str:
    """``1 record``, ``1,204 records``."""
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


def _render(template: str, **context: Any) -> str:
    environment = Environment(loader=PackageLoader("medspace.deid", "templates"),
                              autoescape=select_autoescape(["html", "j2"]),
                              trim_blocks=True, lstrip_blocks=True)
    environment.filters["join_words"] = _words
    environment.filters["percent"] = _percent
    environment.filters["counted"] = _counted
    return environment.get_template(template).render(
        generated=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"), **context)
