"""Exact federated statistics: each node computes a partial on its own values, the hub combines.

A partial holds aggregates only (counts, sums, sums of squares, bin counts, cell counts), never
a record.  ``combine`` merges the partials of any number of nodes, in any order, into the
partial the pooled data would have given, and the functions that turn a partial into a
statistic run on the hub.  With differential privacy off the results equal pandas and SciPy on
the pooled data; suppression and noise are applied by the caller (DESIGN §6), not here.

Numerical approach.  Sums and sums of squares are kept *exactly*, as rationals: every finite
double is ``m * 2**e`` with an integer ``|m| < 2**53`` (IEEE 754-2008, §3.4), so Python's
integers add them without rounding, as CPython's ``statistics`` module does.  The pooled
partial is then identical, to the last bit, to the partial of the pooled data, whatever the
split and the order of combination, and a statistic is rounded once at the end: the mean and
the variance are the correctly rounded values of the data as given.  The textbook
``(Σx² - (Σx)²/n) / (n-1)`` loses every digit in floating point when the values sit far from
zero (1e9 plus noise); in exact arithmetic it is exact.  Chan, Golub and LeVeque's pairwise
update of (n, mean, M2) ("Algorithms for computing the sample variance", The American
Statistician 37(3), 1983) is stable but rounds at every merge, so the result would depend on
how the data were split; exact sums also suit secure aggregation, which masks integers.  The
cost is one pass in NumPy and a few big-integer additions per distinct binary exponent
(about 0.3 s for a million values).

Quantiles.  An exact quantile is one patient's value, and finding it across nodes takes
either the values or a search of threshold counts that closes in on that value; neither is a
release this data space makes.  Quantiles therefore come from histograms over bin edges the
nodes agreed in advance: the order statistics that define the quantile lie in known bins, so
the estimate is reported with the interval that must contain the exact (pandas ``linear``)
quantile, and the interval's width is the error bound.

Sources: E. B. Wilson, "Probable inference, the law of succession, and statistical
inference", JASA 22, 1927; C. J. Clopper, E. S. Pearson, "The use of confidence or fiducial
limits illustrated in the case of the binomial", Biometrika 26, 1934; F. Garwood, "Fiducial
limits for the Poisson distribution", Biometrika 28, 1936; B. L. Welch, "The generalization of
'Student's' problem when several different population variances are involved", Biometrika 34,
1947; K. Pearson's chi-square test of independence as in ``scipy.stats.chi2_contingency``.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_right
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import reduce
from itertools import accumulate, pairwise
from operator import mul
from typing import Any, ClassVar, Literal, Protocol, Self, TypeVar

import numpy as np
import pandas as pd
from scipy import stats

__all__ = [
    "ChiSquareResult",
    "CountPartial",
    "ExtremaPartial",
    "HistogramPartial",
    "Interval",
    "MomentsPartial",
    "ProportionPartial",
    "QuantileEstimate",
    "RatePartial",
    "SumPartial",
    "TTestResult",
    "TablePartial",
    "chi_square",
    "combine",
    "count_partial",
    "extrema_partial",
    "histogram_partial",
    "mean",
    "moments_partial",
    "proportion_interval",
    "proportion_partial",
    "quantile",
    "rate_interval",
    "rate_partial",
    "std",
    "sum_partial",
    "t_test_one_sample",
    "t_test_two_sample",
    "table_array",
    "table_partial",
    "total",
    "variance",
]

Values = np.ndarray | pd.Series
Alternative = Literal["two-sided", "less", "greater"]


# Validation shared by the partials, whether built at a node or read from the wire.


def _check_count(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, not {value!r}")


def _check_fraction(name: str, value: object) -> None:
    if not isinstance(value, Fraction):
        raise ValueError(f"{name} must be an exact Fraction, not {type(value).__name__}")


def _check_empty_sum(n: int, name: str, value: Fraction) -> None:
    if n == 0 and value != 0:
        raise ValueError(f"{name} of no values must be 0, not {value}")


def _fields(data: Mapping[str, Any], kind: str, names: Sequence[str]) -> list[Any]:
    """Return ``data[name]`` for each name, refusing another kind or unknown or absent fields."""
    if not isinstance(data, Mapping):
        raise ValueError(f"a {kind} partial must be a JSON object, not {type(data).__name__}")
    if data.get("kind") != kind:
        raise ValueError(f"expected a {kind!r} partial, got kind {data.get('kind')!r}")
    expected = {"kind", *names}
    if set(data) != expected:
        wrong = sorted(set(data) ^ expected)
        raise ValueError(f"a {kind} partial has the fields {sorted(expected)}; check {wrong}")
    return [data[name] for name in names]


def _parse_fraction(name: str, text: object) -> Fraction:
    """Read 'p/q' or 'p'; decimal and exponent forms are refused, since '1e999999999' would
    make the reader build an enormous integer."""
    if not isinstance(text, str) or not re.fullmatch(r"-?[0-9]+(/[0-9]+)?", text):
        raise ValueError(f"{name} must be an exact number written 'p/q', not {text!r}")
    try:
        return Fraction(text)
    except (ValueError, ZeroDivisionError):
        raise ValueError(f"{name} is not an exact number: {text!r}") from None


def _parse_float(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number, not {value!r}")
    return float(value)


# Node side: turning a column into clean numbers.


def _array(values: Values, what: str) -> np.ndarray:
    """Return ``values`` as a 1-D NumPy array, refusing other containers and shapes."""
    if isinstance(values, pd.Series):
        return values.to_numpy()
    if not isinstance(values, np.ndarray):
        raise ValueError(
            f"{what} must be a numpy array or a pandas Series, not {type(values).__name__}"
        )
    if values.ndim != 1:
        raise ValueError(f"{what} must be one-dimensional, not of shape {values.shape}")
    return values


def _floats(values: Values, what: str, *, allow_bool: bool = False) -> np.ndarray:
    """Return ``values`` as float64 with NaN where missing, refusing what is not a finite number.

    Values are taken as float64, as pandas does; booleans are refused where a measurement is
    meant, since summing a yes/no column as one is more often a slip than a wish.
    """
    array = _array(values, what)
    if values.dtype.kind not in ("biuf" if allow_bool else "iuf"):
        raise ValueError(f"{what} must be numbers, not of dtype {values.dtype}")
    if isinstance(values, pd.Series):
        array = values.to_numpy(dtype=np.float64, na_value=np.nan)
    array = array.astype(np.float64)
    if np.isinf(array).any():
        raise ValueError(f"{what} hold infinite values; remove or recode them first")
    return array


def _numbers(values: Values, what: str, *, allow_bool: bool = False) -> tuple[np.ndarray, int]:
    """Return the non-missing values as float64 and the number of missing (NaN) ones."""
    array = _floats(values, what, allow_bool=allow_bool)
    missing = np.isnan(array)
    return array[~missing], int(missing.sum())


def _exact_sums(x: np.ndarray) -> tuple[Fraction, Fraction]:
    """Return Σx and Σx² of finite float64 values, exactly.

    ``frexp`` splits each value into ``m * 2**e`` with an integer ``|m| < 2**53``; the values
    are grouped by ``e`` so that each group's mantissas (and their squares) add as plain
    integers, and a shift aligns the groups on the smallest exponent.
    """
    if len(x) == 0:
        return Fraction(0), Fraction(0)
    fraction, exponent = np.frexp(x)
    mantissa = np.ldexp(fraction, 53).astype(np.int64)
    exponent = exponent.astype(np.int64) - 53
    order = np.argsort(exponent, kind="stable")
    mantissa, exponent = mantissa[order], exponent[order]
    levels, starts = np.unique(exponent, return_index=True)
    ends = [*starts[1:].tolist(), len(exponent)]
    lowest = int(levels[0])
    linear = squares = 0
    for level, start, end in zip(levels.tolist(), starts.tolist(), ends, strict=True):
        group = mantissa[start:end].tolist()
        shift = level - lowest
        linear += sum(group) << shift
        squares += sum(map(mul, group, group)) << (2 * shift)
    scale = Fraction(2) ** lowest
    return linear * scale, squares * scale * scale


# The partials.


class _Partial(Protocol):
    def merge(self, other: Self) -> Self: ...


P = TypeVar("P", bound=_Partial)


def combine(partials: Sequence[P]) -> P:
    """Merge the partials of several nodes into the partial of their pooled data.

    Every merge is exact and commutative, so the result does not depend on the order in which
    nodes answered.  Partials of different kinds, or over different bin edges or variables,
    are refused with ``ValueError``.
    """
    if not partials:
        raise ValueError("nothing to combine: no partials were given")
    kind = type(partials[0])
    for partial in partials:
        if type(partial) is not kind:
            raise ValueError(f"cannot combine a {type(partial).__name__} with a {kind.__name__}")
    return reduce(lambda a, b: a.merge(b), partials)


@dataclass(frozen=True)
class CountPartial:
    """How many values a node holds (``n``) and how many were missing."""

    n: int
    missing: int
    kind: ClassVar[str] = "count"

    def __post_init__(self) -> None:
        _check_count("n", self.n)
        _check_count("missing", self.missing)

    def merge(self, other: CountPartial) -> CountPartial:
        """Add the counts."""
        return CountPartial(self.n + other.n, self.missing + other.missing)

    def to_dict(self) -> dict[str, Any]:
        """Return the partial as JSON-ready data."""
        return {"kind": self.kind, "n": self.n, "missing": self.missing}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CountPartial:
        """Read a partial written by :meth:`to_dict`, refusing malformed data."""
        n, missing = _fields(data, cls.kind, ["n", "missing"])
        return cls(n, missing)


def count_partial(values: Values) -> CountPartial:
    """Count the non-missing values of a node's column."""
    finite, missing = _numbers(values, "values")
    return CountPartial(len(finite), missing)


@dataclass(frozen=True)
class SumPartial:
    """A node's count and exact sum: all a mean needs."""

    n: int
    missing: int
    total: Fraction
    kind: ClassVar[str] = "sum"

    def __post_init__(self) -> None:
        _check_count("n", self.n)
        _check_count("missing", self.missing)
        _check_fraction("total", self.total)
        _check_empty_sum(self.n, "the total", self.total)

    def merge(self, other: SumPartial) -> SumPartial:
        """Add counts and sums."""
        return SumPartial(self.n + other.n, self.missing + other.missing, self.total + other.total)

    def to_dict(self) -> dict[str, Any]:
        """Return the partial as JSON-ready data; the exact sum travels as a string 'p/q'."""
        return {"kind": self.kind, "n": self.n, "missing": self.missing, "total": str(self.total)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SumPartial:
        """Read a partial written by :meth:`to_dict`, refusing malformed data."""
        n, missing, text = _fields(data, cls.kind, ["n", "missing", "total"])
        return cls(n, missing, _parse_fraction("total", text))


def sum_partial(values: Values) -> SumPartial:
    """Compute a node's count and exact sum of the non-missing values."""
    finite, missing = _numbers(values, "values")
    linear, _ = _exact_sums(finite)
    return SumPartial(len(finite), missing, linear)


@dataclass(frozen=True)
class MomentsPartial:
    """A node's count, exact sum and exact sum of squares: all a variance or t-test needs.

    Together they carry the same information as (n, mean, M2); kept exact, they merge by
    addition without any rounding.
    """

    n: int
    missing: int
    total: Fraction
    total_sq: Fraction
    kind: ClassVar[str] = "moments"

    def __post_init__(self) -> None:
        _check_count("n", self.n)
        _check_count("missing", self.missing)
        _check_fraction("total", self.total)
        _check_fraction("total_sq", self.total_sq)
        _check_empty_sum(self.n, "the total", self.total)
        _check_empty_sum(self.n, "the sum of squares", self.total_sq)
        if self.n * self.total_sq < self.total**2:
            raise ValueError("the sum of squares is smaller than the sum allows (n·Σx² < (Σx)²)")

    def merge(self, other: MomentsPartial) -> MomentsPartial:
        """Add counts, sums and sums of squares."""
        return MomentsPartial(
            self.n + other.n,
            self.missing + other.missing,
            self.total + other.total,
            self.total_sq + other.total_sq,
        )

    @property
    def sum_of_squared_deviations(self) -> Fraction:
        """Σ(x - mean)², exactly: M2 in Chan, Golub and LeVeque's notation."""
        return self.total_sq - self.total**2 / self.n if self.n else Fraction(0)

    def to_dict(self) -> dict[str, Any]:
        """Return the partial as JSON-ready data; exact sums travel as strings 'p/q'."""
        return {
            "kind": self.kind,
            "n": self.n,
            "missing": self.missing,
            "total": str(self.total),
            "total_sq": str(self.total_sq),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MomentsPartial:
        """Read a partial written by :meth:`to_dict`, refusing malformed data."""
        n, missing, linear, squares = _fields(data, cls.kind, ["n", "missing", "total", "total_sq"])
        return cls(
            n, missing, _parse_fraction("total", linear), _parse_fraction("total_sq", squares)
        )


def moments_partial(values: Values) -> MomentsPartial:
    """Compute a node's count, exact sum and exact sum of squares of the non-missing values."""
    finite, missing = _numbers(values, "values")
    linear, squares = _exact_sums(finite)
    return MomentsPartial(len(finite), missing, linear, squares)


@dataclass(frozen=True)
class ExtremaPartial:
    """A node's smallest and largest value (``None`` when it has none).

    Each is one patient's value: whether it may leave the node is for disclosure control.
    """

    n: int
    missing: int
    minimum: float | None
    maximum: float | None
    kind: ClassVar[str] = "extrema"

    def __post_init__(self) -> None:
        _check_count("n", self.n)
        _check_count("missing", self.missing)
        if self.n == 0:
            if self.minimum is not None or self.maximum is not None:
                raise ValueError("a node without values has no minimum or maximum")
            return
        for name, value in (("minimum", self.minimum), ("maximum", self.maximum)):
            if not isinstance(value, float) or not math.isfinite(value):
                raise ValueError(f"the {name} must be a finite float, not {value!r}")
        if self.minimum > self.maximum:  # type: ignore[operator]
            raise ValueError(f"the minimum {self.minimum} exceeds the maximum {self.maximum}")

    def merge(self, other: ExtremaPartial) -> ExtremaPartial:
        """Keep the smaller minimum and the larger maximum; a node without values adds none."""
        missing = self.missing + other.missing
        if self.n == 0 or other.n == 0:
            holder = other if self.n == 0 else self
            return ExtremaPartial(holder.n, missing, holder.minimum, holder.maximum)
        low = min(self.minimum, other.minimum)  # type: ignore[type-var]
        high = max(self.maximum, other.maximum)  # type: ignore[type-var]
        return ExtremaPartial(self.n + other.n, missing, low, high)

    def to_dict(self) -> dict[str, Any]:
        """Return the partial as JSON-ready data."""
        return {
            "kind": self.kind,
            "n": self.n,
            "missing": self.missing,
            "minimum": self.minimum,
            "maximum": self.maximum,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ExtremaPartial:
        """Read a partial written by :meth:`to_dict`, refusing malformed data."""
        n, missing, low, high = _fields(data, cls.kind, ["n", "missing", "minimum", "maximum"])
        low = None if low is None else _parse_float("minimum", low)
        high = None if high is None else _parse_float("maximum", high)
        return cls(n, missing, low, high)


def extrema_partial(values: Values) -> ExtremaPartial:
    """Find a node's smallest and largest non-missing value."""
    finite, missing = _numbers(values, "values")
    if len(finite) == 0:
        return ExtremaPartial(0, missing, None, None)
    return ExtremaPartial(len(finite), missing, float(finite.min()), float(finite.max()))


def _edges(edges: Sequence[float] | np.ndarray) -> tuple[float, ...]:
    """Validate agreed bin edges: at least two, finite, strictly increasing."""
    try:
        grid = np.asarray(edges, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"bin edges must be numbers, not {edges!r}") from None
    if grid.ndim != 1 or len(grid) < 2:
        raise ValueError("bin edges must be a flat list of at least two numbers")
    if not np.isfinite(grid).all():
        raise ValueError("bin edges must be finite")
    if not (np.diff(grid) > 0).all():
        raise ValueError("bin edges must be strictly increasing")
    return tuple(grid.tolist())


@dataclass(frozen=True)
class HistogramPartial:
    """Counts per bin over agreed edges, plus the values below and above them.

    Bins are ``[e0, e1), [e1, e2), ..., [e(k-1), ek]`` — the last one closed — exactly as
    ``numpy.histogram``.  Values outside the edges are counted, not dropped, so that a
    quantile can tell whether the edges cover it.
    """

    edges: tuple[float, ...]
    counts: tuple[int, ...]
    below: int
    above: int
    missing: int
    kind: ClassVar[str] = "histogram"

    def __post_init__(self) -> None:
        if _edges(self.edges) != self.edges:
            raise ValueError("bin edges must be a tuple of floats")
        if not isinstance(self.counts, tuple) or len(self.counts) != len(self.edges) - 1:
            raise ValueError(
                f"{len(self.edges)} edges need a tuple of {len(self.edges) - 1} counts"
            )
        for count in self.counts:
            _check_count("a bin count", count)
        _check_count("below", self.below)
        _check_count("above", self.above)
        _check_count("missing", self.missing)

    @property
    def n(self) -> int:
        """Number of non-missing values, inside the edges or not."""
        return sum(self.counts) + self.below + self.above

    def merge(self, other: HistogramPartial) -> HistogramPartial:
        """Add bin by bin; histograms over different edges cannot be added."""
        if other.edges != self.edges:
            raise ValueError(
                "histograms over different bin edges cannot be combined; "
                "the nodes must agree on the edges before counting"
            )
        return HistogramPartial(
            self.edges,
            tuple(a + b for a, b in zip(self.counts, other.counts, strict=True)),
            self.below + other.below,
            self.above + other.above,
            self.missing + other.missing,
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the partial as JSON-ready data."""
        return {
            "kind": self.kind,
            "edges": list(self.edges),
            "counts": list(self.counts),
            "below": self.below,
            "above": self.above,
            "missing": self.missing,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HistogramPartial:
        """Read a partial written by :meth:`to_dict`, refusing malformed data."""
        edges, counts, below, above, missing = _fields(
            data, cls.kind, ["edges", "counts", "below", "above", "missing"]
        )
        if not isinstance(edges, list) or not isinstance(counts, list):
            raise ValueError("edges and counts must be lists")
        grid = tuple(_parse_float("a bin edge", edge) for edge in edges)
        return cls(grid, tuple(counts), below, above, missing)


def histogram_partial(values: Values, edges: Sequence[float] | np.ndarray) -> HistogramPartial:
    """Count a node's non-missing values in each bin of the agreed ``edges``."""
    finite, missing = _numbers(values, "values")
    grid = _edges(edges)
    bounds = np.asarray(grid)
    inside = finite[(finite >= bounds[0]) & (finite <= bounds[-1])]
    bins = np.searchsorted(bounds, inside, side="right") - 1
    bins[bins == len(bounds) - 1] = len(bounds) - 2  # the last edge belongs to the last bin
    counts = np.bincount(bins, minlength=len(bounds) - 1)
    return HistogramPartial(
        grid,
        tuple(counts.tolist()),
        int((finite < bounds[0]).sum()),
        int((finite > bounds[-1]).sum()),
        missing,
    )


Cell = tuple[tuple[str, ...], int]


@dataclass(frozen=True)
class TablePartial:
    """Counts of each observed combination of categorical levels (a sparse contingency table).

    Levels travel as text, so a column's values must be strings, booleans or numbers; a row
    with a missing value in any variable is counted in ``missing`` and nowhere else.  Cells
    are sorted by key and only observed combinations are kept, so two nodes that saw
    different levels still combine: the result holds the union of their cells.
    """

    variables: tuple[str, ...]
    cells: tuple[Cell, ...]
    missing: int
    kind: ClassVar[str] = "table"

    def __post_init__(self) -> None:
        names = self.variables
        if not isinstance(names, tuple) or not names:
            raise ValueError("a table needs a tuple of at least one variable name")
        if any(not isinstance(name, str) for name in names) or len(set(names)) != len(names):
            raise ValueError(f"variable names must be distinct strings, not {names!r}")
        if not isinstance(self.cells, tuple):
            raise ValueError("cells must be a tuple of (key, count) pairs")
        for key, count in self.cells:
            if (
                not isinstance(key, tuple)
                or len(key) != len(names)
                or any(not isinstance(level, str) for level in key)
            ):
                raise ValueError(f"a cell key must be a tuple of {len(names)} strings: {key!r}")
            _check_count(f"the count of {key!r}", count)
        keys = [key for key, _ in self.cells]
        if any(a >= b for a, b in pairwise(keys)):
            raise ValueError("cell keys must be distinct and sorted")
        _check_count("missing", self.missing)

    def merge(self, other: TablePartial) -> TablePartial:
        """Add cell by cell over the union of the keys; the variables must be the same."""
        if other.variables != self.variables:
            raise ValueError(
                f"tables over different variables cannot be combined: "
                f"{list(self.variables)} and {list(other.variables)}"
            )
        counts = Counter(dict(self.cells))
        counts.update(dict(other.cells))
        return TablePartial(
            self.variables, tuple(sorted(counts.items())), self.missing + other.missing
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the partial as JSON-ready data."""
        return {
            "kind": self.kind,
            "variables": list(self.variables),
            "cells": [{"key": list(key), "count": count} for key, count in self.cells],
            "missing": self.missing,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TablePartial:
        """Read a partial written by :meth:`to_dict`, refusing malformed data."""
        variables, cells, missing = _fields(data, cls.kind, ["variables", "cells", "missing"])
        if not isinstance(variables, list) or not isinstance(cells, list):
            raise ValueError("variables and cells must be lists")
        parsed = []
        for cell in cells:
            if not isinstance(cell, Mapping) or set(cell) != {"key", "count"}:
                raise ValueError(f"a cell must be an object with a key and a count: {cell!r}")
            if not isinstance(cell["key"], list):
                raise ValueError(f"a cell key must be a list: {cell['key']!r}")
            parsed.append((tuple(cell["key"]), cell["count"]))
        return cls(tuple(variables), tuple(parsed), missing)


def _levels(values: Values, name: str) -> list[str | None]:
    """Return each value of a categorical column as text, ``None`` where it is missing."""
    array = _array(values, f"column {name!r}")
    missing = pd.isna(array)
    levels: list[str | None] = []
    for value, absent in zip(array.tolist(), missing.tolist(), strict=True):
        if absent:
            levels.append(None)
            continue
        item = value.item() if isinstance(value, np.generic) else value
        if isinstance(item, float) and not math.isfinite(item):
            raise ValueError(f"column {name!r} holds an infinite value")
        if not isinstance(item, str | bool | int | float):
            raise ValueError(
                f"column {name!r} must hold strings, booleans or numbers, not {type(item).__name__}"
            )
        levels.append(str(item))
    return levels


def table_partial(columns: Mapping[str, Values]) -> TablePartial:
    """Count a node's rows in each combination of the levels of ``columns``."""
    if not columns:
        raise ValueError("a table needs at least one column")
    names = tuple(columns)
    levels = [_levels(columns[name], name) for name in names]
    lengths = {len(column) for column in levels}
    if len(lengths) > 1:
        raise ValueError(f"the columns differ in length: {sorted(lengths)}")
    counts: Counter[tuple[str, ...]] = Counter()
    missing = 0
    for row in zip(*levels, strict=True):
        if None in row:
            missing += 1
        else:
            counts[row] += 1  # type: ignore[index]
    return TablePartial(names, tuple(sorted(counts.items())), missing)


@dataclass(frozen=True)
class ProportionPartial:
    """A node's number of successes among its trials (0/1 or boolean outcomes)."""

    successes: int
    trials: int
    missing: int
    kind: ClassVar[str] = "proportion"

    def __post_init__(self) -> None:
        _check_count("successes", self.successes)
        _check_count("trials", self.trials)
        _check_count("missing", self.missing)
        if self.successes > self.trials:
            raise ValueError(f"{self.successes} successes exceed {self.trials} trials")

    def merge(self, other: ProportionPartial) -> ProportionPartial:
        """Add successes and trials."""
        return ProportionPartial(
            self.successes + other.successes,
            self.trials + other.trials,
            self.missing + other.missing,
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the partial as JSON-ready data."""
        return {
            "kind": self.kind,
            "successes": self.successes,
            "trials": self.trials,
            "missing": self.missing,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ProportionPartial:
        """Read a partial written by :meth:`to_dict`, refusing malformed data."""
        return cls(*_fields(data, cls.kind, ["successes", "trials", "missing"]))


def proportion_partial(outcomes: Values) -> ProportionPartial:
    """Count a node's successes among non-missing boolean or 0/1 outcomes."""
    finite, missing = _numbers(outcomes, "outcomes", allow_bool=True)
    if not np.isin(finite, (0.0, 1.0)).all():
        raise ValueError("outcomes must be booleans or 0/1 (NaN for missing)")
    return ProportionPartial(int(finite.sum()), len(finite), missing)


@dataclass(frozen=True)
class RatePartial:
    """A node's number of events and exact total person-time at risk, over ``n`` people."""

    events: int
    person_time: Fraction
    n: int
    missing: int
    kind: ClassVar[str] = "rate"

    def __post_init__(self) -> None:
        _check_count("events", self.events)
        _check_fraction("person_time", self.person_time)
        if self.person_time < 0:
            raise ValueError(f"person-time must not be negative, not {self.person_time}")
        _check_count("n", self.n)
        _check_count("missing", self.missing)

    def merge(self, other: RatePartial) -> RatePartial:
        """Add events, person-time and people."""
        return RatePartial(
            self.events + other.events,
            self.person_time + other.person_time,
            self.n + other.n,
            self.missing + other.missing,
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the partial as JSON-ready data; person-time travels as a string 'p/q'."""
        return {
            "kind": self.kind,
            "events": self.events,
            "person_time": str(self.person_time),
            "n": self.n,
            "missing": self.missing,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RatePartial:
        """Read a partial written by :meth:`to_dict`, refusing malformed data."""
        events, text, n, missing = _fields(
            data, cls.kind, ["events", "person_time", "n", "missing"]
        )
        return cls(events, _parse_fraction("person_time", text), n, missing)


def rate_partial(events: Values, person_time: Values) -> RatePartial:
    """Total a node's events and person-time, one entry per person.

    A person whose events or person-time is missing is left out of both and counted in
    ``missing``.
    """
    counts = _floats(events, "events")
    times = _floats(person_time, "person-time")
    if len(counts) != len(times):
        raise ValueError(f"events ({len(counts)}) and person-time ({len(times)}) differ in length")
    known = ~(np.isnan(counts) | np.isnan(times))
    counts, times = counts[known], times[known]
    if (counts < 0).any() or (counts != np.floor(counts)).any():
        raise ValueError("events must be non-negative whole numbers")
    if (times < 0).any():
        raise ValueError("person-time must not be negative")
    total_time, _ = _exact_sums(times)
    return RatePartial(int(counts.sum()), total_time, len(counts), int((~known).sum()))


# Hub side: statistics of a combined partial.


def total(partial: SumPartial | MomentsPartial) -> float:
    """Return the sum of the values, correctly rounded."""
    return float(partial.total)


def mean(partial: SumPartial | MomentsPartial) -> float:
    """Return the mean, correctly rounded; the mean of no values is refused."""
    if partial.n == 0:
        raise ValueError("the mean of no values is undefined")
    return float(partial.total / partial.n)


def _exact_variance(partial: MomentsPartial, ddof: int) -> Fraction:
    if isinstance(ddof, bool) or not isinstance(ddof, int) or ddof < 0:
        raise ValueError(f"ddof must be a non-negative integer, not {ddof!r}")
    if partial.n <= ddof:
        raise ValueError(f"a variance with ddof={ddof} needs more than {ddof} values")
    return partial.sum_of_squared_deviations / (partial.n - ddof)


def variance(partial: MomentsPartial, ddof: int = 1) -> float:
    """Return the variance with ``ddof`` delta degrees of freedom (1, the sample variance, as
    pandas), correctly rounded; fewer than ``ddof + 1`` values are refused."""
    return float(_exact_variance(partial, ddof))


def _sqrt(value: Fraction) -> float:
    """Return the square root of a non-negative rational to within one unit in the last place,
    even where the rational itself would underflow or overflow a float: it is scaled by a
    power of four into [1/4, 4] first, and the power of two comes back exactly."""
    if value == 0:
        return 0.0
    shift = (value.numerator.bit_length() - value.denominator.bit_length()) // 2
    return math.ldexp(math.sqrt(float(value / Fraction(4) ** shift)), shift)


def std(partial: MomentsPartial, ddof: int = 1) -> float:
    """Return the standard deviation, the square root of the exact :func:`variance`."""
    return _sqrt(_exact_variance(partial, ddof))


@dataclass(frozen=True)
class QuantileEstimate:
    """A quantile estimated from a histogram, with the interval that holds the exact value.

    The exact quantile (pandas' default, linear interpolation between order statistics) lies
    in ``[lower, upper]``, so ``|estimate - exact| <= error_bound = upper - lower``; the bound
    is one bin's width unless the two order statistics fall in different bins.
    """

    q: float
    estimate: float
    lower: float
    upper: float
    error_bound: float


def quantile(histogram: HistogramPartial, q: float) -> QuantileEstimate:
    """Estimate the ``q``-quantile of the values counted in ``histogram``.

    With n values the exact quantile interpolates between the order statistics of ranks
    ``floor(h)`` and ``ceil(h)``, ``h = (n - 1) q`` (Hyndman and Fan, "Sample quantiles in
    statistical packages", The American Statistician 50(4), 1996, definition 7).  The
    cumulative counts tell which bin holds each; within a bin a rank is placed as if the
    bin's values were spread evenly.  A quantile whose order statistics fall outside the
    edges is refused: its error would be unbounded.
    """
    if not isinstance(q, int | float) or not 0 <= q <= 1:
        raise ValueError(f"q must be a number between 0 and 1, not {q!r}")
    n = histogram.n
    if n == 0:
        raise ValueError("the quantile of no values is undefined")
    h = (n - 1) * q
    low_rank, high_rank = math.floor(h), math.ceil(h)
    starts = [0, *accumulate(histogram.counts)]
    edges = histogram.edges

    def locate(rank: int) -> tuple[float, float, float]:
        inner = rank - histogram.below
        if inner < 0 or inner >= starts[-1]:
            raise ValueError(
                f"the {q} quantile lies outside the bin edges [{edges[0]}, {edges[-1]}]; "
                "widen the edges to estimate it"
            )
        index = bisect_right(starts, inner) - 1
        left, right = edges[index], edges[index + 1]
        share = (inner - starts[index] + 0.5) / histogram.counts[index]
        return left, right, left + (right - left) * share

    lower, _, low_point = locate(low_rank)
    _, upper, high_point = locate(high_rank)
    estimate = low_point + (h - low_rank) * (high_point - low_point)
    return QuantileEstimate(float(q), estimate, lower, upper, upper - lower)


def table_array(table: TablePartial) -> tuple[tuple[tuple[str, ...], ...], np.ndarray]:
    """Return the levels of each variable (sorted) and the dense table of counts over them."""
    levels = tuple(
        tuple(sorted({key[axis] for key, _ in table.cells})) for axis in range(len(table.variables))
    )
    positions = [{level: i for i, level in enumerate(axis)} for axis in levels]
    dense = np.zeros(tuple(len(axis) for axis in levels), dtype=np.int64)
    for key, count in table.cells:
        dense[tuple(position[level] for position, level in zip(positions, key, strict=True))] = (
            count
        )
    return levels, dense


@dataclass(frozen=True)
class ChiSquareResult:
    """Pearson's chi-square test of independence: statistic, p-value, degrees of freedom."""

    statistic: float
    pvalue: float
    dof: int


def chi_square(table: TablePartial) -> ChiSquareResult:
    """Test the variables of the pooled table for independence (Pearson, no continuity
    correction): ``scipy.stats.chi2_contingency(..., correction=False)`` on the dense table.

    A level whose row (or column) holds no count makes an expected frequency zero and the
    statistic undefined; it is refused by name.
    """
    if len(table.variables) < 2:
        raise ValueError("a test of independence needs at least two variables")
    levels, observed = table_array(table)
    if observed.sum() == 0:
        raise ValueError("the table holds no observations")
    for axis, name in enumerate(table.variables):
        others = tuple(i for i in range(observed.ndim) if i != axis)
        for level, margin in zip(levels[axis], observed.sum(axis=others), strict=True):
            if margin == 0:
                raise ValueError(f"level {level!r} of {name!r} has no observations")
    result = stats.chi2_contingency(observed, correction=False)
    return ChiSquareResult(float(result.statistic), float(result.pvalue), int(result.dof))


@dataclass(frozen=True)
class Interval:
    """An estimate with its confidence interval at ``level`` and the method that gave it."""

    estimate: float
    lower: float
    upper: float
    level: float
    method: str


def _alpha(level: float) -> float:
    if not isinstance(level, int | float) or not 0 < level < 1:
        raise ValueError(f"the confidence level must lie strictly between 0 and 1, not {level!r}")
    return 1 - level


def proportion_interval(
    partial: ProportionPartial,
    level: float = 0.95,
    method: Literal["wilson", "clopper-pearson"] = "wilson",
) -> Interval:
    """Return the proportion of successes with a confidence interval.

    ``wilson``: the score interval (Wilson 1927), which keeps its coverage near the nominal
    level for small samples and proportions near 0 or 1, where the Wald interval fails.
    ``clopper-pearson``: the exact interval from beta quantiles (Clopper and Pearson 1934),
    conservative: coverage at least ``level`` for every true proportion.
    """
    alpha = _alpha(level)
    k, n = partial.successes, partial.trials
    if n == 0:
        raise ValueError("a proportion needs at least one trial")
    share = k / n
    if method == "wilson":
        z = float(stats.norm.isf(alpha / 2))
        z2 = z * z
        denominator = 1 + z2 / n
        centre = (share + z2 / (2 * n)) / denominator
        half = z * math.sqrt(share * (1 - share) / n + z2 / (4 * n * n)) / denominator
        return Interval(share, centre - half, centre + half, level, method)
    if method == "clopper-pearson":
        lower = 0.0 if k == 0 else float(stats.beta.ppf(alpha / 2, k, n - k + 1))
        upper = 1.0 if k == n else float(stats.beta.isf(alpha / 2, k + 1, n - k))
        return Interval(share, lower, upper, level, method)
    raise ValueError(f"unknown interval method {method!r}; use 'wilson' or 'clopper-pearson'")


def rate_interval(partial: RatePartial, level: float = 0.95, per: float = 1.0) -> Interval:
    """Return events per ``per`` units of person-time with the exact Poisson interval.

    Garwood (1936): for k events the bounds on the expected count are half the chi-square
    quantiles ``chi2(alpha/2; 2k)`` and ``chi2(1 - alpha/2; 2k + 2)``; dividing by the
    person-time gives the bounds on the rate.  The lower bound is 0 when there are no events.
    """
    alpha = _alpha(level)
    if not isinstance(per, int | float) or not math.isfinite(per) or per <= 0:
        raise ValueError(f"per must be a positive number, not {per!r}")
    if partial.person_time == 0:
        raise ValueError("a rate needs some person-time at risk")
    k = partial.events
    too_large = f"the rate per {per} is too large for a float; choose a smaller unit"
    try:
        scale = float(Fraction(per) / partial.person_time)
    except OverflowError:
        raise ValueError(too_large) from None
    lower = 0.0 if k == 0 else float(stats.chi2.ppf(alpha / 2, 2 * k)) / 2
    upper = float(stats.chi2.isf(alpha / 2, 2 * k + 2)) / 2 * scale
    if not math.isfinite(upper):
        raise ValueError(too_large)
    estimate = float(k * Fraction(per) / partial.person_time)
    return Interval(estimate, lower * scale, upper, level, "exact-poisson")


@dataclass(frozen=True)
class TTestResult:
    """A t-test: the statistic, its p-value under ``alternative`` and the degrees of freedom."""

    statistic: float
    pvalue: float
    df: float
    alternative: str


def _t_result(
    difference: Fraction, se_squared: Fraction, df: float, alternative: str
) -> TTestResult:
    """Finish a t-test from the exact mean difference and squared standard error.

    Both are exact, so the statistic is rounded only by the final square root; the p-value
    follows SciPy's ``_get_pvalue``, so that it agrees with ``scipy.stats`` to the last digits.
    """
    if alternative not in ("two-sided", "less", "greater"):
        raise ValueError(
            f"alternative must be 'two-sided', 'less' or 'greater', not {alternative!r}"
        )
    if se_squared == 0:
        raise ValueError("the standard error is zero: every value within each group is the same")
    statistic = math.copysign(_sqrt(difference**2 / se_squared), difference)
    distribution = stats.t(df)
    if alternative == "less":
        pvalue = distribution.cdf(statistic)
    elif alternative == "greater":
        pvalue = distribution.sf(statistic)
    else:
        pvalue = 2 * distribution.sf(abs(statistic))
    return TTestResult(statistic, float(pvalue), float(df), alternative)


def t_test_one_sample(
    partial: MomentsPartial, popmean: float, alternative: Alternative = "two-sided"
) -> TTestResult:
    """Test whether the mean equals ``popmean``: ``scipy.stats.ttest_1samp`` on pooled data."""
    if not isinstance(popmean, int | float) or not math.isfinite(popmean):
        raise ValueError(f"popmean must be a finite number, not {popmean!r}")
    n = partial.n
    if n < 2:
        raise ValueError("a one-sample t-test needs at least two values")
    difference = partial.total / n - Fraction(popmean)
    se_squared = partial.sum_of_squared_deviations / (n - 1) / n
    return _t_result(difference, se_squared, n - 1, alternative)


def t_test_two_sample(
    first: MomentsPartial,
    second: MomentsPartial,
    equal_var: bool,
    alternative: Alternative = "two-sided",
) -> TTestResult:
    """Compare two means: ``scipy.stats.ttest_ind(first, second, equal_var=...)`` on pooled data.

    ``equal_var=True`` is Student's test with the pooled variance; ``False`` is Welch's
    (1947), with the Welch–Satterthwaite degrees of freedom, which holds its level when the
    groups' variances differ and is the safer default for data from different hospitals.
    """
    n1, n2 = first.n, second.n
    if n1 < 2 or n2 < 2:
        raise ValueError("a two-sample t-test needs at least two values in each group")
    difference = first.total / n1 - second.total / n2
    ss1, ss2 = first.sum_of_squared_deviations, second.sum_of_squared_deviations
    if equal_var:
        pooled = (ss1 + ss2) / (n1 + n2 - 2)
        return _t_result(difference, pooled * Fraction(n1 + n2, n1 * n2), n1 + n2 - 2, alternative)
    part1, part2 = ss1 / (n1 - 1) / n1, ss2 / (n2 - 1) / n2
    se_squared = part1 + part2
    if se_squared == 0:
        raise ValueError("the standard error is zero: every value within each group is the same")
    df = float(se_squared**2 / (part1**2 / (n1 - 1) + part2**2 / (n2 - 1)))
    return _t_result(difference, se_squared, df, alternative)
