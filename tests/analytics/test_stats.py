"""Federated statistics equal the same statistics on the pooled data.

Every test splits one dataset unevenly over five hospitals — one of them empty, one holding a
single value — computes a partial at each, combines the partials and compares with pandas or
SciPy on the pooled data.  Where pandas or SciPy themselves lose digits (values far from zero
with a small spread), the reference is the exact value (``statistics``, ``Fraction``) or the
same library on the data shifted exactly to near zero, which leaves the statistic unchanged.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import stats as scipy_stats
from statsmodels.stats.proportion import proportion_confint
from statsmodels.stats.rates import confint_poisson

from medspace.analytics import stats

OFFSET = 1e9
TOLERANCE = 1e-9

plain = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
# 1e9 plus thousandths: x - OFFSET is exact (Sterbenz), so the shifted data carry the same values.
offset = st.integers(-1_000_000, 1_000_000).map(lambda k: OFFSET + k / 1000)
mixed = st.one_of(plain, offset)

# Exact rational sums take longer than hypothesis' default deadline on a busy machine.
patient = settings(deadline=None)


@st.composite
def hospitals(
    draw: st.DrawFn, elements: st.SearchStrategy[float] = mixed, min_values: int = 3
) -> list[np.ndarray]:
    """Split a drawn dataset over five hospitals: one empty, one with a single value, three of
    uneven size with a few missing values each, in a drawn order."""
    values = draw(st.lists(elements, min_size=min_values, max_size=40))
    first, second = sorted(draw(st.integers(1, len(values))) for _ in range(2))
    groups = [[], values[:1], values[1:first], values[first:second], values[second:]]
    for group in groups[2:]:
        group.extend([math.nan] * draw(st.integers(0, 2)))
    shuffled = [draw(st.permutations(group)) for group in groups]
    return [np.array(shuffled[i], dtype=np.float64) for i in draw(st.permutations(range(5)))]


def node_inputs(parts: list[np.ndarray]) -> list[np.ndarray | pd.Series]:
    """Hand alternate hospitals a NumPy array and a pandas Series, as nodes would."""
    return [pd.Series(part) if i % 2 else part for i, part in enumerate(parts)]


def federated(compute: Callable[[Any], Any], parts: list[np.ndarray]) -> Any:
    return stats.combine([compute(part) for part in node_inputs(parts)])


def pooled(parts: list[np.ndarray]) -> pd.Series:
    return pd.Series(np.concatenate(parts))


def well_conditioned(values: pd.Series) -> bool:
    """True when the spread is large enough against the magnitude for pandas' two-pass
    variance (and SciPy's t-tests) to keep far more than nine digits, and its square is far
    from underflow."""
    finite = values.dropna()
    spread = statistics.pstdev(finite.tolist())
    return spread > 1e-100 and spread >= 1e-4 * float(finite.abs().max())


def recentring(values: pd.Series) -> float:
    """The constant that brings offset data near zero: subtracting OFFSET is exact for values
    within a factor of two of it (Sterbenz), and a shift changes no t statistic."""
    return OFFSET if (values - OFFSET).abs().max() <= 1e4 else 0.0


def close(ours: float, reference: float, scale: float = 0.0) -> bool:
    return math.isclose(ours, reference, rel_tol=TOLERANCE, abs_tol=TOLERANCE * scale)


# Counts, sums, means, variances, extrema.


@patient
@given(hospitals())
def test_count_and_missing_equal_pandas_on_pooled_data(parts: list[np.ndarray]) -> None:
    combined = federated(stats.count_partial, parts)
    data = pooled(parts)
    assert combined.n == data.count()
    assert combined.missing == data.isna().sum()


@patient
@given(hospitals())
def test_sum_and_mean_are_the_exact_pooled_values_rounded_once(parts: list[np.ndarray]) -> None:
    combined = federated(stats.sum_partial, parts)
    data = pooled(parts).dropna()
    exact = sum(map(Fraction, data.tolist()))
    assert stats.total(combined) == float(exact)
    assert stats.mean(combined) == statistics.mean(data.tolist())
    # Summation error scales with the sum of magnitudes, whatever the sum itself is.
    scale = float(data.abs().sum())
    assert close(stats.total(combined), data.sum(), scale)
    assert close(stats.mean(combined), data.mean(), scale / len(data))


@patient
@given(hospitals())
def test_variance_is_the_exact_pooled_variance_rounded_once(parts: list[np.ndarray]) -> None:
    combined = federated(stats.moments_partial, parts)
    data = pooled(parts).dropna().tolist()
    assert stats.variance(combined) == statistics.variance(data)
    assert stats.variance(combined, ddof=0) == statistics.pvariance(data)
    assert math.isclose(stats.std(combined), statistics.stdev(data), rel_tol=1e-15)


@patient
@given(hospitals())
def test_variance_and_std_match_pandas_on_pooled_data(parts: list[np.ndarray]) -> None:
    data = pooled(parts)
    assume(well_conditioned(data))
    combined = federated(stats.moments_partial, parts)
    assert close(stats.variance(combined), data.var())
    assert close(stats.std(combined), data.std())
    assert close(stats.mean(combined), data.mean(), float(data.abs().max()))


@patient
@given(hospitals(elements=offset))
def test_variance_at_a_large_offset_matches_pandas_on_raw_and_recentred_data(
    parts: list[np.ndarray],
) -> None:
    data = pooled(parts)
    assume(well_conditioned(data - OFFSET))
    combined = federated(stats.moments_partial, parts)
    assert close(stats.variance(combined), (data - OFFSET).var())
    assert close(stats.variance(combined), data.var())


def test_variance_keeps_every_digit_where_the_textbook_formula_loses_them() -> None:
    values = OFFSET + np.array([4.0, 7.0, 13.0, 16.0])
    n, s, ss = len(values), values.sum(), (values**2).sum()
    assert (ss - s * s / n) / (n - 1) != 30.0
    parts = [values[:0], values[:1], values[1:3], values[3:], values[:0]]
    assert stats.variance(federated(stats.moments_partial, parts)) == 30.0


@patient
@given(hospitals())
def test_extrema_equal_pandas_min_and_max(parts: list[np.ndarray]) -> None:
    combined = federated(stats.extrema_partial, parts)
    data = pooled(parts)
    assert (combined.minimum, combined.maximum) == (data.min(), data.max())
    assert combined.n == data.count()


# Histograms and quantiles.

edge_lists = st.lists(
    st.floats(-2e6, 2e6, allow_nan=False), min_size=2, max_size=12, unique=True
).map(sorted)


@patient
@given(hospitals(elements=plain), edge_lists)
def test_histogram_counts_equal_numpy_histogram_of_pooled_data(
    parts: list[np.ndarray], edges: list[float]
) -> None:
    combined = federated(lambda part: stats.histogram_partial(part, edges), parts)
    data = pooled(parts).dropna().to_numpy()
    counts, _ = np.histogram(data, bins=np.asarray(edges))
    assert combined.counts == tuple(counts.tolist())
    assert combined.below == (data < edges[0]).sum()
    assert combined.above == (data > edges[-1]).sum()
    assert combined.missing == pooled(parts).isna().sum()


@patient
@given(
    hospitals(elements=st.floats(0, 100, allow_nan=False), min_values=1),
    st.lists(st.floats(1e-3, 100), min_size=0, max_size=8, unique=True),
    st.floats(0, 1),
)
def test_quantile_interval_holds_the_pandas_quantile_within_the_error_bound(
    parts: list[np.ndarray], inner_edges: list[float], q: float
) -> None:
    edges = [0.0, *sorted(e for e in inner_edges if e < 100), 100.0]
    estimate = stats.quantile(
        federated(lambda part: stats.histogram_partial(part, edges), parts), q
    )
    exact = pooled(parts).quantile(q)
    assert estimate.lower <= exact <= estimate.upper
    assert estimate.lower <= estimate.estimate <= estimate.upper
    assert abs(estimate.estimate - exact) <= estimate.error_bound
    assert estimate.error_bound == estimate.upper - estimate.lower


def test_quantile_error_bound_is_the_width_of_the_bin_that_holds_it() -> None:
    values = np.arange(1.0, 100.0)
    parts = [values[:0], values[:1], values[1:10], values[10:60], values[60:]]
    edges = np.linspace(0, 100, 11)
    median = stats.quantile(federated(lambda p: stats.histogram_partial(p, edges), parts), 0.5)
    assert (median.lower, median.upper, median.error_bound) == (50.0, 60.0, 10.0)
    assert abs(median.estimate - np.median(values)) <= median.error_bound


def test_quantile_outside_the_agreed_edges_is_refused() -> None:
    histogram = stats.histogram_partial(np.array([1.0, 2.0, 50.0]), [0.0, 10.0])
    assert stats.quantile(histogram, 0.0).upper == 10.0
    with pytest.raises(ValueError, match="outside the bin edges"):
        stats.quantile(histogram, 1.0)


# Contingency tables and the chi-square test.

levels_a = st.sampled_from(["A", "B", "C"])
levels_b = st.sampled_from(["x", "y", "z", "w"])


@st.composite
def categorical_hospitals(draw: st.DrawFn) -> list[pd.DataFrame]:
    rows = draw(
        st.lists(st.tuples(st.one_of(levels_a, st.none()), levels_b), min_size=3, max_size=80)
    )
    first, second = sorted(draw(st.integers(1, len(rows))) for _ in range(2))
    groups = [[], rows[:1], rows[1:first], rows[first:second], rows[second:]]
    return [pd.DataFrame(group, columns=["a", "b"], dtype=object) for group in groups]


def table_of(frame: pd.DataFrame) -> stats.TablePartial:
    return stats.table_partial({"a": frame["a"], "b": frame["b"].to_numpy()})


@patient
@given(categorical_hospitals())
def test_contingency_table_equals_pandas_crosstab_on_the_union_of_levels(
    frames: list[pd.DataFrame],
) -> None:
    combined = stats.combine([table_of(frame) for frame in frames])
    data = pd.concat(frames, ignore_index=True)
    crosstab = pd.crosstab(data["a"], data["b"])
    levels, dense = stats.table_array(combined)
    assert levels == (tuple(crosstab.index), tuple(crosstab.columns))
    assert (dense == crosstab.to_numpy()).all()
    assert combined.missing == data["a"].isna().sum()


@patient
@given(categorical_hospitals())
def test_chi_square_equals_scipy_chi2_contingency_without_correction(
    frames: list[pd.DataFrame],
) -> None:
    combined = stats.combine([table_of(frame) for frame in frames])
    data = pd.concat(frames, ignore_index=True)
    assume(data["a"].notna().any())
    reference = scipy_stats.chi2_contingency(pd.crosstab(data["a"], data["b"]), correction=False)
    result = stats.chi_square(combined)
    assert result.dof == reference.dof
    assert close(result.statistic, reference.statistic, 1e-12)
    assert close(result.pvalue, reference.pvalue, 1e-12)


def test_chi_square_refuses_a_level_without_observations() -> None:
    table = stats.TablePartial(("a", "b"), ((("A", "x"), 3), (("B", "y"), 0)), 0)
    with pytest.raises(ValueError, match="level 'B' of 'a' has no observations"):
        stats.chi_square(table)


# Proportions and rates.


@patient
@given(
    hospitals(elements=st.sampled_from([0.0, 1.0]), min_values=1),
    st.sampled_from([0.9, 0.95, 0.99]),
)
def test_proportion_intervals_equal_statsmodels_on_pooled_counts(
    parts: list[np.ndarray], level: float
) -> None:
    combined = federated(stats.proportion_partial, parts)
    data = pooled(parts).dropna()
    k, n = int(data.sum()), len(data)
    assert (combined.successes, combined.trials) == (k, n)
    for method, reference in (("wilson", "wilson"), ("clopper-pearson", "beta")):
        interval = stats.proportion_interval(combined, level, method)
        lower, upper = proportion_confint(k, n, alpha=1 - level, method=reference)
        assert interval.estimate == k / n
        assert close(interval.lower, lower, 1e-15)
        assert close(interval.upper, upper, 1e-15)


def test_proportion_accepts_nullable_booleans_and_counts_missing() -> None:
    outcomes = pd.Series([True, False, None, True], dtype="boolean")
    assert stats.proportion_partial(outcomes) == stats.ProportionPartial(2, 3, 1)


@patient
@given(
    st.lists(
        st.tuples(st.integers(0, 5), st.just(0.0) | st.floats(1e-3, 10)), min_size=1, max_size=40
    ),
    st.integers(0, 40),
    st.sampled_from([0.9, 0.95]),
)
def test_rate_interval_is_the_exact_poisson_interval_of_pooled_totals(
    people: list[tuple[int, float]], cut: int, level: float
) -> None:
    events = np.array([e for e, _ in people], dtype=np.float64)
    times = np.array([t for _, t in people])
    times[::7] = np.nan
    cut = min(cut, len(people) - 1)
    bounds = [(0, 0), (0, 1), (1, cut), (cut, len(people)), (len(people), len(people))]
    partials = [stats.rate_partial(events[a:b], pd.Series(times[a:b])) for a, b in bounds]
    combined = stats.combine(partials)
    known = ~np.isnan(times)
    k, exposure = int(events[known].sum()), sum(map(Fraction, times[known].tolist()))
    assert (combined.events, combined.person_time) == (k, exposure)
    assume(exposure > 0)
    interval = stats.rate_interval(combined, level, per=1000)
    lower, upper = confint_poisson(k, float(exposure), method="exact-c", alpha=1 - level)
    assert close(interval.estimate, 1000 * k / float(exposure))
    assert close(interval.lower, 1000 * lower, 1e-300)
    assert close(interval.upper, 1000 * upper)
    assert close(
        scipy_stats.poisson.cdf(k, interval.upper / 1000 * float(exposure)), (1 - level) / 2
    )


# t-tests.


@patient
@given(hospitals(), hospitals(), st.booleans(), st.sampled_from(["two-sided", "less", "greater"]))
def test_two_sample_t_tests_equal_scipy_ttest_ind(
    first: list[np.ndarray], second: list[np.ndarray], equal_var: bool, alternative: str
) -> None:
    a, b = pooled(first).dropna(), pooled(second).dropna()
    shift = recentring(pd.concat([a, b]))
    assume(well_conditioned(a - shift) and well_conditioned(b - shift))
    result = stats.t_test_two_sample(
        federated(stats.moments_partial, first),
        federated(stats.moments_partial, second),
        equal_var=equal_var,
        alternative=alternative,
    )
    reference = scipy_stats.ttest_ind(
        a - shift, b - shift, equal_var=equal_var, alternative=alternative
    )
    assert close(result.statistic, reference.statistic, 1.0)
    assert close(result.pvalue, reference.pvalue)
    assert close(result.df, reference.df)


@patient
@given(hospitals(), st.floats(-1e6, 1e6) | offset)
def test_one_sample_t_test_equals_scipy_ttest_1samp(
    parts: list[np.ndarray], popmean: float
) -> None:
    data = pooled(parts).dropna()
    shift = recentring(data)
    assume(well_conditioned(data - shift))
    result = stats.t_test_one_sample(federated(stats.moments_partial, parts), popmean)
    reference = scipy_stats.ttest_1samp(data - shift, popmean - shift)
    assert close(result.statistic, reference.statistic, 1.0)
    assert close(result.pvalue, reference.pvalue)
    assert result.df == len(data) - 1


def test_t_test_on_raw_offset_data_is_more_accurate_than_scipy_on_the_same_data() -> None:
    rng = np.random.default_rng(7)
    a, b = OFFSET + rng.normal(size=300), OFFSET + 0.3 + rng.normal(size=200)
    ours = stats.t_test_two_sample(stats.moments_partial(a), stats.moments_partial(b), False)
    recentred = scipy_stats.ttest_ind(a - OFFSET, b - OFFSET, equal_var=False)
    raw = scipy_stats.ttest_ind(a, b, equal_var=False)
    assert close(ours.statistic, recentred.statistic, 1e-12)
    assert close(ours.pvalue, recentred.pvalue)
    assert not close(raw.statistic, recentred.statistic)


# Combining: exactness, order, refusal.

KINDS: dict[str, Callable[[np.ndarray], Any]] = {
    "count": stats.count_partial,
    "sum": stats.sum_partial,
    "moments": stats.moments_partial,
    "extrema": stats.extrema_partial,
    "histogram": lambda part: stats.histogram_partial(part, [-1e6, 0.0, 1e3, 1e6]),
    "table": lambda part: stats.table_partial({"sign": np.sign(part), "big": part > 1e3}),
    "proportion": lambda part: stats.proportion_partial(part > 0),
    "rate": lambda part: stats.rate_partial(np.abs(np.round(part)) % 3, np.abs(part)),
}


@pytest.mark.parametrize("kind", sorted(KINDS))
@patient
@given(parts=hospitals(), order=st.permutations(range(5)))
def test_combined_partials_equal_the_partial_of_the_pooled_data_in_any_order(
    kind: str, parts: list[np.ndarray], order: list[int]
) -> None:
    compute = KINDS[kind]
    if kind in ("table", "proportion", "rate"):
        parts = [part[~np.isnan(part)] for part in parts]
    partials = [compute(part) for part in parts]
    combined = stats.combine([partials[i] for i in order])
    assert combined == stats.combine(partials) == compute(np.concatenate(parts))


@pytest.mark.parametrize("kind", sorted(KINDS))
@patient
@given(parts=hospitals())
def test_partials_round_trip_through_json(kind: str, parts: list[np.ndarray]) -> None:
    compute = KINDS[kind]
    if kind in ("table", "proportion", "rate"):
        parts = [part[~np.isnan(part)] for part in parts]
    for part in parts:
        partial = compute(part)
        assert type(partial).from_dict(json.loads(json.dumps(partial.to_dict()))) == partial


def test_histograms_over_different_edges_refuse_to_combine() -> None:
    values = np.array([1.0, 2.0])
    one = stats.histogram_partial(values, [0.0, 5.0])
    other = stats.histogram_partial(values, [0.0, 2.5, 5.0])
    with pytest.raises(ValueError, match="different bin edges"):
        stats.combine([one, other])


def test_tables_over_different_variables_refuse_to_combine() -> None:
    column = pd.Series(["A", "B"])
    with pytest.raises(ValueError, match="different variables"):
        stats.combine([stats.table_partial({"a": column}), stats.table_partial({"b": column})])


def test_tables_that_saw_different_levels_combine_on_the_union_of_keys() -> None:
    one = stats.table_partial({"sex": pd.Series(["F", "F"]), "smoker": pd.Series([True, False])})
    other = stats.table_partial({"sex": pd.Series(["M"]), "smoker": pd.Series([True])})
    combined = stats.combine([one, other])
    assert combined.cells == ((("F", "False"), 1), (("F", "True"), 1), (("M", "True"), 1))
    levels, dense = stats.table_array(combined)
    assert levels == (("F", "M"), ("False", "True"))
    assert dense.tolist() == [[1, 1], [0, 1]]


def test_partials_of_different_kinds_refuse_to_combine() -> None:
    values = np.array([1.0, 2.0])
    with pytest.raises(ValueError, match="cannot combine a SumPartial with a MomentsPartial"):
        stats.combine([stats.moments_partial(values), stats.sum_partial(values)])


def test_combining_nothing_is_refused() -> None:
    with pytest.raises(ValueError, match="no partials"):
        stats.combine([])


# Bad input.


@pytest.mark.parametrize(
    ("compute", "message"),
    [
        (lambda: stats.moments_partial(np.array([1.0, np.inf])), "infinite"),
        (lambda: stats.sum_partial(pd.Series(["1", "2"])), "must be numbers"),
        (lambda: stats.sum_partial(np.array([True, False])), "must be numbers"),
        (lambda: stats.count_partial([1.0, 2.0]), "numpy array or a pandas Series"),
        (lambda: stats.count_partial(np.ones((2, 2))), "one-dimensional"),
        (lambda: stats.histogram_partial(np.ones(3), []), "at least two"),
        (lambda: stats.histogram_partial(np.ones(3), [1.0]), "at least two"),
        (lambda: stats.histogram_partial(np.ones(3), [0.0, 2.0, 1.0]), "strictly increasing"),
        (lambda: stats.histogram_partial(np.ones(3), [0.0, np.nan]), "finite"),
        (lambda: stats.proportion_partial(np.array([0.0, 2.0])), "0/1"),
        (lambda: stats.rate_partial(np.array([1.5]), np.array([1.0])), "whole numbers"),
        (lambda: stats.rate_partial(np.array([-1.0]), np.array([1.0])), "whole numbers"),
        (lambda: stats.rate_partial(np.array([1.0]), np.array([-1.0])), "negative"),
        (lambda: stats.rate_partial(np.array([1.0]), np.array([1.0, 2.0])), "differ in length"),
        (lambda: stats.table_partial({}), "at least one column"),
        (lambda: stats.table_partial({"a": pd.Series([[1], [2]])}), "strings, booleans"),
        (lambda: stats.table_partial({"a": np.array([1.0, np.inf])}), "infinite"),
        (
            lambda: stats.table_partial({"a": np.array([1]), "b": np.array([1, 2])}),
            "differ in length",
        ),
    ],
)
def test_bad_input_is_refused_with_a_clear_reason(compute: Callable[[], Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        compute()


@pytest.mark.parametrize(
    ("cls", "data", "message"),
    [
        (stats.CountPartial, {"kind": "sum", "n": 1, "missing": 0}, "expected a 'count'"),
        (stats.CountPartial, {"kind": "count", "n": 1}, "fields"),
        (stats.CountPartial, {"kind": "count", "n": 1, "missing": 0, "x": 1}, "fields"),
        (stats.CountPartial, {"kind": "count", "n": -1, "missing": 0}, "non-negative"),
        (stats.CountPartial, {"kind": "count", "n": True, "missing": 0}, "non-negative"),
        (stats.SumPartial, {"kind": "sum", "n": 1, "missing": 0, "total": "x"}, "p/q"),
        (stats.SumPartial, {"kind": "sum", "n": 1, "missing": 0, "total": 1.5}, "p/q"),
        (stats.SumPartial, {"kind": "sum", "n": 1, "missing": 0, "total": "1e999999"}, "p/q"),
        (stats.SumPartial, {"kind": "sum", "n": 1, "missing": 0, "total": "1/0"}, "not an exact"),
        (stats.SumPartial, {"kind": "sum", "n": 0, "missing": 0, "total": "1"}, "must be 0"),
        (
            stats.MomentsPartial,
            {"kind": "moments", "n": 2, "missing": 0, "total": "4", "total_sq": "1"},
            "smaller than the sum allows",
        ),
        (
            stats.ExtremaPartial,
            {"kind": "extrema", "n": 1, "missing": 0, "minimum": 2.0, "maximum": 1.0},
            "exceeds",
        ),
        (
            stats.HistogramPartial,
            {
                "kind": "histogram",
                "edges": [0, 1],
                "counts": [1, 2],
                "below": 0,
                "above": 0,
                "missing": 0,
            },
            "need a tuple of 1 counts",
        ),
        (
            stats.TablePartial,
            {
                "kind": "table",
                "variables": ["a"],
                "missing": 0,
                "cells": [{"key": ["y"], "count": 1}, {"key": ["x"], "count": 1}],
            },
            "sorted",
        ),
        (
            stats.ProportionPartial,
            {"kind": "proportion", "successes": 3, "trials": 2, "missing": 0},
            "exceed",
        ),
        (
            stats.RatePartial,
            {"kind": "rate", "events": 1, "person_time": "-1", "n": 1, "missing": 0},
            "negative",
        ),
    ],
)
def test_malformed_partials_from_the_wire_are_refused(
    cls: type, data: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        cls.from_dict(data)


@pytest.mark.parametrize(
    ("compute", "message"),
    [
        (lambda: stats.mean(stats.sum_partial(np.array([np.nan]))), "no values"),
        (lambda: stats.variance(stats.moments_partial(np.array([1.0]))), "more than 1"),
        (lambda: stats.variance(stats.moments_partial(np.ones(3)), ddof=-1), "ddof"),
        (
            lambda: stats.t_test_one_sample(stats.moments_partial(np.array([1.0])), 0.0),
            "at least two",
        ),
        (
            lambda: stats.t_test_one_sample(stats.moments_partial(np.ones(3)), 0.0),
            "standard error is zero",
        ),
        (
            lambda: stats.t_test_two_sample(
                stats.moments_partial(np.ones(3)), stats.moments_partial(np.ones(1)), True
            ),
            "at least two",
        ),
        (
            lambda: stats.t_test_one_sample(
                stats.moments_partial(np.arange(3.0)), 0.0, alternative="both"
            ),
            "alternative",
        ),
        (lambda: stats.proportion_interval(stats.ProportionPartial(0, 0, 0)), "one trial"),
        (
            lambda: stats.proportion_interval(stats.ProportionPartial(1, 2, 0), method="wald"),
            "unknown interval method",
        ),
        (lambda: stats.proportion_interval(stats.ProportionPartial(1, 2, 0), 1.5), "level"),
        (lambda: stats.rate_interval(stats.RatePartial(1, Fraction(0), 1, 0)), "person-time"),
        (
            lambda: stats.rate_interval(stats.RatePartial(1, Fraction(1, 10**400), 1, 0)),
            "too large",
        ),
        (lambda: stats.quantile(stats.histogram_partial(np.ones(0), [0, 1]), 0.5), "no values"),
        (lambda: stats.quantile(stats.histogram_partial(np.ones(2), [0, 1]), 1.5), "between"),
        (lambda: stats.chi_square(stats.table_partial({"a": pd.Series(["x"])})), "two variables"),
    ],
)
def test_statistics_that_are_undefined_are_refused(
    compute: Callable[[], Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        compute()


def test_nullable_pandas_columns_count_their_missing_values() -> None:
    values = pd.Series([1.5, None, 2.5], dtype="Float64")
    assert stats.moments_partial(values) == stats.MomentsPartial(2, 1, Fraction(4), Fraction(17, 2))
