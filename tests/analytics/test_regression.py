"""Federated linear and logistic regression: equal to statsmodels on the pooled rows, and refusing
what DESIGN §6 and identifiability forbid."""

from __future__ import annotations

import json
from collections.abc import Callable
from itertools import pairwise

import numpy as np
import pytest
import statsmodels.api as sm
from hypothesis import given, settings
from hypothesis import strategies as st

from medspace.analytics.regression import (
    LinearPartial,
    LogisticPartial,
    combine_linear,
    combine_logistic,
    dummy_code,
    fit_linear,
    fit_logistic,
    linear_partial,
    logistic_partial,
)

STAGES = ["I", "II", "III", "IV"]
HOSPITAL_SHARES = [0.41, 0.27, 0.16, 0.10, 0.06]
TOLERANCE = 1e-6


def _cohort(n: int = 2400, seed: int = 20240611) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A synthetic cohort: design (intercept, age, sex, biomarker, stage dummies), a hospital per
    row with a case mix that differs by stage, and the raw stage labels."""
    rng = np.random.default_rng(seed)
    age = rng.normal(62.0, 11.0, n)
    sex = rng.integers(0, 2, n).astype(float)
    biomarker = rng.lognormal(1.0, 0.4, n)
    stage = rng.choice(STAGES, n, p=[0.35, 0.3, 0.2, 0.15])
    design = np.column_stack([np.ones(n), age, sex, biomarker, dummy_code(list(stage), STAGES)])
    mix = {
        "I": [0.5, 0.2, 0.1, 0.1, 0.1],
        "II": [0.4, 0.3, 0.2, 0.05, 0.05],
        "III": [0.3, 0.3, 0.2, 0.15, 0.05],
        "IV": [0.35, 0.25, 0.15, 0.1, 0.15],
    }
    hospital = np.array([rng.choice(5, p=mix[s]) for s in stage])
    return design, hospital, stage


def _linear_outcome(design: np.ndarray, seed: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    beta = np.array([40.0, 0.3, -2.0, 1.5, 3.0, 6.0, 11.0])
    return design @ beta + rng.normal(0.0, 8.0, design.shape[0])


def _logistic_outcome(design: np.ndarray, seed: int = 11) -> np.ndarray:
    rng = np.random.default_rng(seed)
    beta = np.array([-5.0, 0.05, 0.4, 0.3, 0.5, 1.1, 1.8])
    return (rng.random(design.shape[0]) < 1.0 / (1.0 + np.exp(-design @ beta))).astype(float)


def _nodes(
    design: np.ndarray, y: np.ndarray, hospital: np.ndarray
) -> list[Callable[[np.ndarray], LogisticPartial]]:
    """One callable per hospital, as the hub's round trip to that node's own rows."""
    return [
        (lambda beta, rows=hospital == h: logistic_partial(design[rows], y[rows], beta))
        for h in range(5)
    ]


def test_hospitals_are_uneven() -> None:
    _, hospital, _ = _cohort()
    sizes = np.bincount(hospital)
    assert sizes.max() > 3 * sizes.min()


def test_linear_fit_equals_statsmodels_ols_on_pooled_data() -> None:
    design, hospital, _ = _cohort()
    y = _linear_outcome(design)
    partials = [linear_partial(design[hospital == h], y[hospital == h]) for h in range(5)]

    fit = fit_linear(partials)
    reference = sm.OLS(y, design).fit()

    np.testing.assert_allclose(fit.coefficients, reference.params, rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(fit.standard_errors, reference.bse, rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(fit.t_values, reference.tvalues, rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(fit.p_values, reference.pvalues, rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(fit.covariance, reference.cov_params(), rtol=0, atol=TOLERANCE)
    assert fit.log_likelihood == pytest.approx(reference.llf, abs=TOLERANCE)
    assert fit.sigma2 == pytest.approx(reference.scale, abs=TOLERANCE)
    assert fit.df_resid == reference.df_resid
    assert fit.n == len(y)
    assert fit.converged and fit.iterations == 1


def test_logistic_fit_equals_statsmodels_logit_on_pooled_data() -> None:
    design, hospital, _ = _cohort()
    y = _logistic_outcome(design)

    fit = fit_logistic(_nodes(design, y, hospital), n_parameters=design.shape[1])
    reference = sm.Logit(y, design).fit(disp=0)

    np.testing.assert_allclose(fit.coefficients, reference.params, rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(fit.standard_errors, reference.bse, rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(fit.z_values, reference.tvalues, rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(fit.p_values, reference.pvalues, rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(fit.covariance, reference.cov_params(), rtol=0, atol=TOLERANCE)
    assert fit.log_likelihood == pytest.approx(reference.llf, abs=TOLERANCE)
    assert fit.n == len(y)
    assert fit.converged


def test_logistic_fit_converges_in_as_few_newton_steps_as_statsmodels() -> None:
    design, hospital, _ = _cohort()
    y = _logistic_outcome(design)

    fit = fit_logistic(_nodes(design, y, hospital), n_parameters=design.shape[1])
    reference = sm.Logit(y, design).fit(disp=0)

    # statsmodels counts the final step that falls below the tolerance; the hub evaluates it
    # in one more round but does not take it.
    assert fit.iterations <= 8
    assert fit.iterations == reference.mle_retvals["iterations"] - 1
    assert fit.rounds == fit.iterations + 1


def test_fit_equals_pooled_when_a_level_is_missing_at_one_hospital() -> None:
    design, hospital, stage = _cohort()
    keep = ~((hospital == 4) & (stage == "IV"))
    design, hospital = design[keep], hospital[keep]
    y = _logistic_outcome(design)
    local = design[hospital == 4]
    assert np.linalg.matrix_rank(local.T @ local) < design.shape[1]

    fit = fit_logistic(_nodes(design, y, hospital), n_parameters=design.shape[1])
    reference = sm.Logit(y, design).fit(disp=0)

    np.testing.assert_allclose(fit.coefficients, reference.params, rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(fit.standard_errors, reference.bse, rtol=0, atol=TOLERANCE)


def test_intercept_option_prepends_a_column_of_ones() -> None:
    design, _, _ = _cohort()
    y = _linear_outcome(design)
    with_option = linear_partial(design[:, 1:], y, intercept=True)
    by_caller = linear_partial(design, y)
    np.testing.assert_array_equal(with_option.xtx, by_caller.xtx)
    np.testing.assert_array_equal(with_option.xty, by_caller.xty)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(min_value=40, max_value=400), min_size=1, max_size=5))
def test_linear_fit_does_not_depend_on_how_rows_are_split(cuts: list[int]) -> None:
    design, _, _ = _cohort(n=600, seed=3)
    y = _linear_outcome(design, seed=5)
    edges = np.unique(np.clip(np.cumsum([0, *cuts]), 0, 600))
    edges = np.append(edges[edges < 560], 600)
    parts = [linear_partial(design[a:b], y[a:b]) for a, b in pairwise(edges)]
    reference = sm.OLS(y, design).fit()
    np.testing.assert_allclose(fit_linear(parts).coefficients, reference.params, atol=TOLERANCE)


def test_linear_partial_survives_a_json_round_trip() -> None:
    design, _, _ = _cohort(n=200)
    partial = linear_partial(design, _linear_outcome(design))
    again = LinearPartial.from_dict(json.loads(json.dumps(partial.to_dict())))
    np.testing.assert_array_equal(again.xtx, partial.xtx)
    np.testing.assert_array_equal(again.xty, partial.xty)
    assert (again.yty, again.n) == (partial.yty, partial.n)


def test_logistic_partial_survives_a_json_round_trip() -> None:
    design, _, _ = _cohort(n=200)
    beta = np.linspace(-1.0, 1.0, design.shape[1]) / 10
    partial = logistic_partial(design, _logistic_outcome(design), beta)
    again = LogisticPartial.from_dict(json.loads(json.dumps(partial.to_dict())))
    for name in ("beta", "gradient", "hessian"):
        np.testing.assert_array_equal(getattr(again, name), getattr(partial, name))
    assert (again.log_likelihood, again.n) == (partial.log_likelihood, partial.n)


def test_fits_serialise_to_json() -> None:
    design, hospital, _ = _cohort()
    y = _logistic_outcome(design)
    fit = fit_logistic(_nodes(design, y, hospital), n_parameters=design.shape[1])
    released = json.loads(json.dumps(fit.to_dict()))
    assert released["coefficients"] == list(fit.coefficients)
    assert released["iterations"] == fit.iterations


@pytest.mark.parametrize(
    "data",
    [
        {"xtx": [[1.0]], "xty": [1.0], "yty": 1.0, "n": 10, "extra": 1},
        {"xtx": [[1.0]], "xty": [1.0, 2.0], "yty": 1.0, "n": 10},
        {"xtx": [[1.0]], "xty": [1.0], "yty": 1.0, "n": 10.0},
        {"xtx": [[1.0]], "xty": [1.0], "yty": 1.0, "n": -1},
        {"xtx": [[float("nan")]], "xty": [1.0], "yty": 1.0, "n": 10},
        {"xtx": [[1.0]], "xty": ["one"], "yty": 1.0, "n": 10},
        {"xtx": [[1.0]], "xty": [1.0], "yty": [1.0, 2.0], "n": 10},
    ],
)
def test_malformed_linear_partial_is_refused(data: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        LinearPartial.from_dict(data)


def test_malformed_logistic_partial_is_refused() -> None:
    data = {"beta": [0.0, 0.0], "gradient": [1.0], "hessian": [[1.0]], "log_likelihood": 0.0}
    with pytest.raises(ValueError):
        LogisticPartial.from_dict({**data, "n": 10})


def test_singular_design_is_refused_by_linear_fit() -> None:
    design, hospital, _ = _cohort()
    y = _linear_outcome(design)
    collinear = np.column_stack([design, 2.0 * design[:, 1] - design[:, 2]])
    partials = [linear_partial(collinear[hospital == h], y[hospital == h]) for h in range(5)]
    with pytest.raises(ValueError, match="singular"):
        fit_linear(partials)


def test_singular_design_is_refused_by_logistic_fit() -> None:
    design, hospital, stage = _cohort()
    y = _logistic_outcome(design)
    every_level = np.column_stack([design, (stage == "I").astype(float)])
    with pytest.raises(ValueError, match="singular"):
        fit_logistic(_nodes(every_level, y, hospital), n_parameters=every_level.shape[1])


def test_perfect_separation_is_refused() -> None:
    design, hospital, _ = _cohort()
    y = (design[:, 1] > 62.0).astype(float)
    with pytest.raises(ValueError, match="separated"):
        fit_logistic(_nodes(design, y, hospital), n_parameters=design.shape[1])


@pytest.mark.parametrize("max_iter", [25, 100])
def test_quasi_complete_separation_is_refused(max_iter: int) -> None:
    design, hospital, stage = _cohort()
    y = _logistic_outcome(design)
    y[stage == "II"] = 0.0
    with pytest.raises(ValueError, match="separated"):
        fit_logistic(_nodes(design, y, hospital), max_iter=max_iter, n_parameters=design.shape[1])


def test_node_refuses_more_than_a_fifth_as_many_parameters_as_rows() -> None:
    design, _, _ = _cohort(n=34)
    with pytest.raises(ValueError, match=r"this node.*disclosure limit"):
        linear_partial(design, _linear_outcome(design))
    with pytest.raises(ValueError, match=r"this node.*disclosure limit"):
        logistic_partial(design, _logistic_outcome(design), np.zeros(design.shape[1]))


def test_node_accepts_exactly_a_fifth_as_many_parameters_as_rows() -> None:
    design, _, _ = _cohort(n=35)
    assert linear_partial(design, _linear_outcome(design)).n == 35


def test_hub_refuses_a_node_partial_over_the_ratio() -> None:
    design, hospital, _ = _cohort()
    y = _linear_outcome(design)
    partials = [linear_partial(design[hospital == h], y[hospital == h]) for h in range(5)]
    loose = linear_partial(design[:20], y[:20], max_parameter_ratio=0.5)
    with pytest.raises(ValueError, match=r"node 5.*disclosure limit"):
        combine_linear([*partials, loose])


def test_hub_refuses_a_pool_over_the_ratio_under_a_stricter_rule() -> None:
    design, _, _ = _cohort(n=100)
    y = _logistic_outcome(design)
    halves = [logistic_partial(design[i::2], y[i::2], np.zeros(7)) for i in range(2)]
    with pytest.raises(ValueError, match=r"pooled data.*disclosure limit"):
        combine_logistic(halves, max_parameter_ratio=0.05)


def test_hub_refuses_partials_from_different_rounds() -> None:
    design, _, _ = _cohort(n=200)
    y = _logistic_outcome(design)
    first = logistic_partial(design[:100], y[:100], np.zeros(7))
    second = logistic_partial(design[100:], y[100:], np.full(7, 0.01))
    with pytest.raises(ValueError, match="different coefficients"):
        combine_logistic([first, second])


def test_logistic_outcome_must_be_binary() -> None:
    design, _, _ = _cohort(n=100)
    with pytest.raises(ValueError, match="0 or 1"):
        logistic_partial(design, np.full(100, 0.5), np.zeros(7))


def test_dummy_code_uses_the_studys_levels_with_the_first_as_reference() -> None:
    coded = dummy_code(["b", "a", "c"], ["a", "b", "c", "d"])
    np.testing.assert_array_equal(coded, [[1, 0, 0], [0, 0, 0], [0, 1, 0]])


def test_dummy_code_refuses_a_value_outside_the_levels() -> None:
    with pytest.raises(ValueError, match="outside"):
        dummy_code(["a", "x"], ["a", "b"])
