"""Federated Kaplan–Meier curves and log-rank tests: equal to statsmodels on the pooled rows."""

from __future__ import annotations

import json
from itertools import pairwise

import numpy as np
import pytest
from scipy import stats
from statsmodels.duration.survfunc import SurvfuncRight, survdiff

from medspace.analytics.survival import (
    SurvivalPartial,
    coarsen_times,
    kaplan_meier,
    log_rank,
    pool_partials,
    survival_partial,
)

EXACT = 1e-9
HOSPITAL_EDGES = [0, 410, 680, 840, 940, 1000]
ARMS = {"control": 420.0, "drug A": 610.0, "drug B": 360.0}


def _cohort(seed: int = 1958) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Follow-up in whole days (so that times tie, across hospitals too), event flags and arms."""
    rng = np.random.default_rng(seed)
    n = HOSPITAL_EDGES[-1]
    arm = rng.choice(list(ARMS), n)
    scale = np.array([ARMS[a] for a in arm])
    event = np.ceil(rng.exponential(scale))
    censor = np.ceil(rng.uniform(30.0, 1100.0, n))
    return np.minimum(event, censor), (event <= censor).astype(int), arm


def _hospitals(time: np.ndarray, status: np.ndarray) -> list[SurvivalPartial]:
    """Five hospitals of uneven size, each releasing its own per-time counts."""
    return [survival_partial(time[a:b], status[a:b]) for a, b in pairwise(HOSPITAL_EDGES)]


def _by_arm(
    time: np.ndarray, status: np.ndarray, arm: np.ndarray, arms: list[str]
) -> dict[str, list[SurvivalPartial]]:
    return {name: _hospitals(time[arm == name], status[arm == name]) for name in arms}


def _assert_same(actual: tuple[float, ...], expected: np.ndarray) -> None:
    np.testing.assert_allclose(actual, expected, rtol=0, atol=EXACT, equal_nan=True)


def test_cohort_ties_times_across_hospitals() -> None:
    time, status, _ = _cohort()
    partials = _hospitals(time, status)
    assert len(pool_partials(partials).times) < sum(len(p.times) for p in partials)


def test_kaplan_meier_equals_statsmodels_on_pooled_data() -> None:
    time, status, _ = _cohort()

    curve = kaplan_meier(_hospitals(time, status))
    reference = SurvfuncRight(time, status)

    np.testing.assert_array_equal(curve.times, reference.surv_times)
    np.testing.assert_array_equal(curve.n_at_risk, reference.n_risk)
    np.testing.assert_array_equal(curve.n_events, reference.n_events)
    _assert_same(curve.survival, reference.surv_prob)
    _assert_same(curve.std_error, reference.surv_prob_se)


def test_log_log_limits_follow_kalbfleisch_and_prentice() -> None:
    time, status, _ = _cohort()
    curve = kaplan_meier(_hospitals(time, status), alpha=0.1)
    reference = SurvfuncRight(time, status)
    s, se = reference.surv_prob, reference.surv_prob_se
    spread = stats.norm.ppf(0.95) * se / (s * np.abs(np.log(s)))

    _assert_same(curve.lower, s ** np.exp(spread))
    _assert_same(curve.upper, s ** np.exp(-spread))
    assert all(
        0 < lo < p < hi < 1
        for lo, p, hi in zip(curve.lower, curve.survival, curve.upper, strict=True)
    )


def test_curve_that_reaches_zero_matches_statsmodels_and_has_no_limits_there() -> None:
    time = np.array([1, 2, 2, 3, 4, 4, 5, 6, 7, 7], dtype=float)
    status = np.array([1, 1, 0, 1, 1, 1, 0, 1, 1, 1])
    partials = [survival_partial(time[:4], status[:4]), survival_partial(time[4:], status[4:])]

    curve = kaplan_meier(partials)
    reference = SurvfuncRight(time, status)

    _assert_same(curve.survival, reference.surv_prob)
    _assert_same(curve.std_error, reference.surv_prob_se)
    assert curve.survival[-1] == 0.0
    assert np.isnan(curve.lower[-1]) and np.isnan(curve.upper[-1])
    assert json.loads(json.dumps(curve.to_dict()))["std_error"][-1] is None


def test_censoring_tied_with_events_counts_as_later() -> None:
    time = np.array([5.0, 5.0, 5.0, 9.0])
    status = np.array([1, 0, 0, 1])
    curve = kaplan_meier(
        [survival_partial(time[:2], status[:2]), survival_partial(time[2:], status[2:])]
    )
    assert curve.n_at_risk == (4, 1)
    assert curve.survival == (0.75, 0.0)


def test_log_rank_equals_statsmodels_for_two_groups() -> None:
    time, status, arm = _cohort()
    arms = ["control", "drug A"]
    chosen = np.isin(arm, arms)

    test = log_rank(_by_arm(time, status, arm, arms))
    statistic, p_value = survdiff(time[chosen], status[chosen], arm[chosen])

    assert test.df == 1
    assert test.statistic == pytest.approx(statistic, abs=EXACT)
    assert test.p_value == pytest.approx(p_value, abs=EXACT)
    assert test.p_value < 0.05


def test_log_rank_equals_statsmodels_for_three_groups() -> None:
    time, status, arm = _cohort()

    test = log_rank(_by_arm(time, status, arm, list(ARMS)))
    statistic, p_value = survdiff(time, status, arm)

    assert test.groups == tuple(sorted(ARMS))
    assert test.df == 2
    assert test.statistic == pytest.approx(statistic, abs=EXACT)
    assert test.p_value == pytest.approx(p_value, abs=EXACT)
    assert sum(test.observed) == status.sum()
    assert sum(test.expected) == pytest.approx(status.sum(), abs=EXACT)


def test_log_rank_finds_no_difference_between_identical_groups() -> None:
    time, status, _ = _cohort()
    partials = _hospitals(time, status)
    test = log_rank({"a": partials, "b": partials})
    assert test.statistic == pytest.approx(0.0, abs=EXACT)
    assert test.p_value == pytest.approx(1.0, abs=EXACT)


def test_log_rank_refuses_a_single_group() -> None:
    time, status, _ = _cohort()
    with pytest.raises(ValueError, match="two groups"):
        log_rank({"all": _hospitals(time, status)})


def test_log_rank_refuses_a_group_without_patients() -> None:
    time, status, _ = _cohort()
    empty = SurvivalPartial(times=(), events=(), censored=())
    with pytest.raises(ValueError, match="undefined"):
        log_rank({"a": _hospitals(time, status), "b": [empty]})


def test_pooling_does_not_depend_on_the_order_of_hospitals() -> None:
    time, status, _ = _cohort()
    partials = _hospitals(time, status)
    assert pool_partials(partials) == pool_partials(partials[::-1])
    assert pool_partials(partials) == survival_partial(time, status)


def test_partial_survives_a_json_round_trip() -> None:
    time, status, _ = _cohort()
    partial = survival_partial(time[:200] + 0.1, status[:200])
    assert SurvivalPartial.from_dict(json.loads(json.dumps(partial.to_dict()))) == partial


@pytest.mark.parametrize(
    "data",
    [
        {"times": [1.0], "events": [1], "censored": [0], "site": "x"},
        {"times": [2.0, 1.0], "events": [1, 1], "censored": [0, 0]},
        {"times": [1.0, 1.0], "events": [1, 1], "censored": [0, 0]},
        {"times": [1.0], "events": [1.0], "censored": [0]},
        {"times": [1.0], "events": [-1], "censored": [2]},
        {"times": [1.0], "events": [0], "censored": [0]},
        {"times": [-1.0], "events": [1], "censored": [0]},
        {"times": ["1"], "events": [1], "censored": [0]},
        {"times": [1.0], "events": [1, 2], "censored": [0]},
    ],
)
def test_malformed_partial_is_refused(data: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        SurvivalPartial.from_dict(data)


def test_node_refuses_status_other_than_event_or_censoring() -> None:
    with pytest.raises(ValueError, match="status"):
        survival_partial([1.0, 2.0], [1, 2])


def test_node_refuses_negative_or_missing_times() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        survival_partial([1.0, -2.0], [1, 0])
    with pytest.raises(ValueError, match="non-negative"):
        survival_partial([1.0, np.nan], [1, 0])


def test_coarsen_times_moves_each_time_to_the_end_of_its_interval() -> None:
    np.testing.assert_array_equal(
        coarsen_times([0.0, 1.0, 30.0, 31.0, 45.0, 61.0], 30.0), [0.0, 30.0, 30.0, 60.0, 60.0, 90.0]
    )


def test_coarse_curve_equals_statsmodels_on_the_coarse_pooled_data() -> None:
    time, status, _ = _cohort()
    months = coarsen_times(time, 30.4375)
    curve = kaplan_meier(_hospitals(months, status))
    reference = SurvfuncRight(months, status)
    assert len(curve.times) < len(set(time[status == 1]))
    _assert_same(curve.survival, reference.surv_prob)
    _assert_same(curve.std_error, reference.surv_prob_se)


def test_coarse_curve_equals_the_exact_curve_at_interval_ends_without_censoring() -> None:
    rng = np.random.default_rng(26)
    time = np.ceil(rng.exponential(200.0, 300))
    status = np.ones(300, dtype=int)
    exact = kaplan_meier([survival_partial(time, status)])
    coarse = kaplan_meier([survival_partial(coarsen_times(time, 30.0), status)])
    for end, value in zip(coarse.times, coarse.survival, strict=True):
        before = [s for t, s in zip(exact.times, exact.survival, strict=True) if t <= end]
        assert value == pytest.approx(before[-1], abs=EXACT)


@pytest.mark.parametrize("width", [0.0, -1.0, float("inf")])
def test_coarsen_times_refuses_a_width_that_is_not_positive_and_finite(width: float) -> None:
    with pytest.raises(ValueError, match="width"):
        coarsen_times([1.0], width)
