"""Kaplan–Meier curves and the log-rank test across hospitals, exactly, from per-time counts.

Both statistics depend on the data only through, for each distinct time, how many events and
how many censorings happened then: the number at risk at a time is everyone whose time is not
earlier.  A node therefore releases those counts (:func:`survival_partial`), the hub adds them
up time by time (:func:`pool_partials`) and computes the curve (:func:`kaplan_meier`) or the
test (:func:`log_rank`) that a single analyst would compute on the pooled rows — the same
numbers as statsmodels' ``SurvfuncRight`` and ``survdiff``.

Per-time counts are disclosive when they are small: a single death on a given day at a given
hospital may identify the patient, and the difference of two releases may isolate one.  This
module does no disclosure control of its own.  The caller applies it before the node releases
a partial: coarsening the times to intervals with :func:`coarsen_times` (days to months, say),
suppressing or merging times whose counts fall below the hospital's minimum (DESIGN §6), and
adding differential-privacy noise at the hub.

Sources:

* E. L. Kaplan, P. Meier, "Nonparametric estimation from incomplete observations", JASA 53,
  1958 (the product-limit estimator; censorings tied with events count as later).
* M. Greenwood, "The natural duration of cancer", Reports on Public Health and Medical
  Subjects 33, HMSO, 1926 (the variance of the product-limit estimate).
* J. D. Kalbfleisch, R. L. Prentice, "The Statistical Analysis of Failure Time Data", 2nd ed.,
  Wiley, 2002, §1.4 (the log-log confidence interval, which stays inside [0, 1]).
* N. Mantel, "Evaluation of survival data and two new rank order statistics arising in its
  consideration", Cancer Chemotherapy Reports 50, 1966, and R. Peto, J. Peto, "Asymptotically
  efficient rank invariant test procedures", JRSS A 135, 1972 (the log-rank test and its
  hypergeometric variance for k groups).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats

__all__ = [
    "KaplanMeierCurve",
    "LogRankTest",
    "SurvivalPartial",
    "coarsen_times",
    "kaplan_meier",
    "log_rank",
    "pool_partials",
    "survival_partial",
]

Vector = NDArray[np.float64]
Counts = NDArray[np.int64]


def _counts(values: Any, size: int, name: str) -> tuple[int, ...]:
    """``size`` non-negative whole counts; floats and booleans are refused."""
    if not isinstance(values, Sequence) or len(values) != size:
        raise ValueError(f"{name} must hold {size} counts, one per time")
    if any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in values):
        raise ValueError(f"{name} must be non-negative integers")
    return tuple(values)


@dataclass(frozen=True)
class SurvivalPartial:
    """A node's counts at each distinct time, in increasing order: events and censorings.

    Times with neither are not listed; a time is listed once.  Together with the times
    listed, the counts are everything Kaplan–Meier and the log-rank test need from a node.
    """

    times: tuple[float, ...]
    events: tuple[int, ...]
    censored: tuple[int, ...]

    def __post_init__(self) -> None:
        times = np.asarray(self.times, dtype=np.float64)
        if times.ndim != 1 or not np.isfinite(times).all() or (times < 0).any():
            raise ValueError("times must be finite and non-negative")
        if (np.diff(times) <= 0).any():
            raise ValueError("times must be distinct and increasing")
        _counts(self.events, len(times), "events")
        _counts(self.censored, len(times), "censored")
        if any(e + c == 0 for e, c in zip(self.events, self.censored, strict=True)):
            raise ValueError("every listed time must hold an event or a censoring")

    @property
    def n(self) -> int:
        """The number of patients the partial counts."""
        return sum(self.events) + sum(self.censored)

    def to_dict(self) -> dict[str, Any]:
        """Return the partial as JSON-safe lists."""
        return {
            "times": list(self.times),
            "events": list(self.events),
            "censored": list(self.censored),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SurvivalPartial:
        """Rebuild a partial from :meth:`to_dict`'s form, refusing any malformed field."""
        if set(data) != {"times", "events", "censored"}:
            raise ValueError("a survival partial has exactly the fields censored, events, times")
        times = data["times"]
        if not isinstance(times, Sequence) or any(
            isinstance(t, bool) or not isinstance(t, int | float) for t in times
        ):
            raise ValueError("times must be a list of numbers")
        return cls(
            times=tuple(float(t) for t in times),
            events=_counts(data["events"], len(times), "events"),
            censored=_counts(data["censored"], len(times), "censored"),
        )


def survival_partial(time: ArrayLike, status: ArrayLike) -> SurvivalPartial:
    """Node side: count events (status 1) and censorings (status 0) at each distinct time.

    ``time`` is the follow-up time of each patient, ``status`` whether it ended in the event.
    """
    times = np.asarray(time, dtype=np.float64)
    flags = np.asarray(status)
    if times.ndim != 1 or flags.shape != times.shape:
        raise ValueError("time and status must be vectors of the same length")
    if not np.isin(flags, (0, 1)).all():
        raise ValueError("status must be 1 (event) or 0 (censored)")
    if not np.isfinite(times).all() or (times < 0).any():
        raise ValueError("times must be finite and non-negative")
    unique, index = np.unique(times, return_inverse=True)
    events = np.bincount(index, weights=flags == 1, minlength=len(unique)).astype(np.int64)
    censored = np.bincount(index, weights=flags == 0, minlength=len(unique)).astype(np.int64)
    return SurvivalPartial(
        times=tuple(float(t) for t in unique),
        events=tuple(int(e) for e in events),
        censored=tuple(int(c) for c in censored),
    )


def coarsen_times(time: ArrayLike, width: float) -> Vector:
    """Node side, before release: move each time to the end of its interval of ``width``.

    A time t becomes ceil(t / width) * width, so 45 days with ``width`` 30 becomes 60: the
    event is reported as having happened by the end of its interval, never before it did, and
    without censoring inside an interval the coarse curve equals the exact one at the
    interval ends.  A censoring is moved later too, which keeps its patient at risk to the
    end of the interval.  Coarse times make fewer, larger counts; the caller still applies
    the minimum-count rule to them.
    """
    if not width > 0 or not np.isfinite(width):
        raise ValueError("the interval width must be positive and finite")
    times = np.asarray(time, dtype=np.float64)
    if not np.isfinite(times).all() or (times < 0).any():
        raise ValueError("times must be finite and non-negative")
    return np.ceil(times / width) * width


def _pooled_counts(partials: Sequence[SurvivalPartial]) -> tuple[Vector, Counts, Counts]:
    """Distinct times of all partials, with the events and censorings summed at each."""
    if not partials:
        raise ValueError("no node contributed")
    times = np.concatenate([np.asarray(p.times, dtype=np.float64) for p in partials])
    events = np.concatenate([np.asarray(p.events, dtype=np.int64) for p in partials])
    censored = np.concatenate([np.asarray(p.censored, dtype=np.int64) for p in partials])
    unique, index = np.unique(times, return_inverse=True)
    summed_events = np.zeros(len(unique), dtype=np.int64)
    summed_censored = np.zeros(len(unique), dtype=np.int64)
    np.add.at(summed_events, index, events)
    np.add.at(summed_censored, index, censored)
    return unique, summed_events, summed_censored


def pool_partials(partials: Sequence[SurvivalPartial]) -> SurvivalPartial:
    """Hub side: one partial for all nodes, the counts added time by time."""
    times, events, censored = _pooled_counts(partials)
    return SurvivalPartial(
        times=tuple(float(t) for t in times),
        events=tuple(int(e) for e in events),
        censored=tuple(int(c) for c in censored),
    )


def _at_risk(events: Counts, censored: Counts) -> Counts:
    """Number at risk just before each time: everyone whose time is that time or later."""
    return np.cumsum((events + censored)[::-1])[::-1]


@dataclass(frozen=True)
class KaplanMeierCurve:
    """The product-limit survival curve at the times where an event happened.

    ``survival`` is S(t) just after each time; ``std_error`` is Greenwood's, undefined (NaN)
    from the first time at which everyone at risk had the event; ``lower`` and ``upper`` are
    the pointwise ``1 - alpha`` log-log confidence limits, undefined where S(t) is 0 or the
    standard error is.
    """

    times: tuple[float, ...]
    n_at_risk: tuple[int, ...]
    n_events: tuple[int, ...]
    survival: tuple[float, ...]
    std_error: tuple[float, ...]
    lower: tuple[float, ...]
    upper: tuple[float, ...]
    alpha: float

    def to_dict(self) -> dict[str, Any]:
        """Return the curve as JSON-safe lists; undefined values become None."""
        return {
            name: (
                [None if isinstance(v, float) and np.isnan(v) else v for v in value]
                if isinstance(value, tuple)
                else value
            )
            for name, value in ((f, getattr(self, f)) for f in self.__dataclass_fields__)
        }


def kaplan_meier(partials: Sequence[SurvivalPartial], alpha: float = 0.05) -> KaplanMeierCurve:
    """Hub side: the pooled Kaplan–Meier curve with Greenwood errors and log-log limits.

    S(t) is the product over event times up to t of (1 - d / n).  Greenwood's variance is
    S(t)^2 times the sum of d / (n (n - d)); the log-log interval is built on
    log(-log S), whose standard error is that sum's square root over |log S|, and mapped back
    as S^exp(±z se).  Equal to statsmodels' ``SurvfuncRight`` on the pooled rows.
    """
    if not 0 < alpha < 1:
        raise ValueError("alpha must lie strictly between 0 and 1")
    times, events, censored = _pooled_counts(partials)
    at_risk = _at_risk(events, censored)
    keep = events > 0
    times, events, at_risk = times[keep], events[keep], at_risk[keep]
    d = events.astype(np.float64)
    n = at_risk.astype(np.float64)
    survival = np.cumprod(1.0 - d / n)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(n > d, d / (n * (n - d)), np.nan)
        greenwood = np.cumsum(terms)
        std_error = survival * np.sqrt(greenwood)
        spread = stats.norm.isf(alpha / 2) * np.sqrt(greenwood) / np.abs(np.log(survival))
        lower = survival ** np.exp(spread)
        upper = survival ** np.exp(-spread)
    undefined = ~np.isfinite(spread) | (survival <= 0)
    lower[undefined] = np.nan
    upper[undefined] = np.nan
    return KaplanMeierCurve(
        times=tuple(float(t) for t in times),
        n_at_risk=tuple(int(v) for v in at_risk),
        n_events=tuple(int(v) for v in events),
        survival=tuple(float(v) for v in survival),
        std_error=tuple(float(v) for v in std_error),
        lower=tuple(float(v) for v in lower),
        upper=tuple(float(v) for v in upper),
        alpha=alpha,
    )


@dataclass(frozen=True)
class LogRankTest:
    """The log-rank test that two or more groups share one survival function.

    ``observed`` and ``expected`` are each group's events and the events expected under the
    null hypothesis, in the order of ``groups``; ``statistic`` is chi-square with
    ``df`` = groups - 1 degrees of freedom.
    """

    groups: tuple[str, ...]
    observed: tuple[int, ...]
    expected: tuple[float, ...]
    statistic: float
    df: int
    p_value: float

    def to_dict(self) -> dict[str, Any]:
        """Return the test as JSON-safe lists and numbers."""
        return {
            name: list(value) if isinstance(value, tuple) else value
            for name, value in ((f, getattr(self, f)) for f in self.__dataclass_fields__)
        }


def log_rank(groups: Mapping[str, Sequence[SurvivalPartial]]) -> LogRankTest:
    """Hub side: the log-rank test from each group's partials, one partial per node.

    At each time, group g's expected events are the total events times its share of those at
    risk, and with N at risk and d events the counts have the multivariate hypergeometric
    covariance d (N - d) / (N - 1) r_g (δ_gh - r_h).  The statistic is the
    quadratic form of observed minus expected in the inverse covariance, over all groups but
    the first (any one can be dropped; the sums over groups are zero).  Equal to statsmodels'
    ``survdiff`` on the pooled rows, with the groups in sorted order.
    """
    names = sorted(groups)
    if len(names) < 2:
        raise ValueError("the log-rank test compares at least two groups")
    pooled = [pool_partials(groups[name]) for name in names]
    times = np.unique(np.concatenate([np.asarray(p.times, dtype=np.float64) for p in pooled]))
    events = np.zeros((len(names), len(times)), dtype=np.int64)
    censored = np.zeros((len(names), len(times)), dtype=np.int64)
    for g, part in enumerate(pooled):
        where = np.searchsorted(times, np.asarray(part.times, dtype=np.float64))
        events[g, where] = part.events
        censored[g, where] = part.censored
    at_risk = np.vstack([_at_risk(events[g], censored[g]) for g in range(len(names))])
    n = at_risk.sum(axis=0).astype(np.float64)
    d = events.sum(axis=0).astype(np.float64)
    share = at_risk / n
    expected = share @ d
    observed = events.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(n > 1, d * (n - d) / (n - 1.0), 0.0)
    rest = share[1:]
    covariance = np.diag(rest @ scale) - (rest * scale) @ rest.T
    difference = observed[1:] - expected[1:]
    if np.linalg.matrix_rank(covariance, hermitian=True) < len(names) - 1:
        raise ValueError("the log-rank test is undefined here: some group has no events at risk")
    statistic = float(difference @ np.linalg.solve(covariance, difference))
    df = len(names) - 1
    return LogRankTest(
        groups=tuple(names),
        observed=tuple(int(v) for v in observed),
        expected=tuple(float(v) for v in expected),
        statistic=statistic,
        df=df,
        p_value=float(stats.chi2.sf(statistic, df)),
    )
