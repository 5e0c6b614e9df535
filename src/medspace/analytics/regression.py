"""Linear and logistic regression fitted across hospitals, exactly, without pooling a row.

Both models are fitted by Newton's method on the pooled log-likelihood, whose gradient and
Hessian are sums over patients and therefore sums over hospitals.  Each node computes its own
terms on its own rows (:func:`linear_partial`, :func:`logistic_partial`); the hub adds them up
and takes the step (:func:`combine_linear`, :func:`combine_logistic`, :func:`newton_step`).
The pooled fit is therefore the fit a single analyst would get on the pooled table, not an
approximation of it: the same coefficients, standard errors and p-values as ordinary least
squares and the logistic maximum-likelihood fit of statsmodels.

* Linear regression needs one round: the node releases X'X, X'y, y'y and n, the sufficient
  statistics of the normal linear model, and the hub solves the normal equations.
* Logistic regression needs one round per Newton step: for the hub's current coefficients the
  node releases the score X'(y - p), the information X'WX with W = diag(p(1 - p)), its
  log-likelihood and n.  With the canonical logit link Newton's method is exactly iteratively
  reweighted least squares (IRLS) and converges quadratically, typically in 5-7 rounds.

Disclosure control (DESIGN §6): a model with more parameters than 0.2 of its observations is
refused, by the node for its own rows and by the hub for every node and for the pool, because
a saturated model hands back the data it was fitted on.  A singular design is refused, since
its coefficients are not identified, and so is separation, where the maximum-likelihood
estimates do not exist: the fitted probabilities reach 0 or 1 and the coefficients diverge.
The hub sees only the pooled sums, so separation shows as a Newton iteration that does not
converge or whose information matrix becomes singular.

The summed partials are exact up to floating-point rounding.  The residual sum of squares is
recovered as y'y - b'X'y, which loses relative precision of order eps * y'y / RSS; for clinical
outcomes measured on their natural scales this is far below the 1e-6 the fits are checked to.

Sources:

* P. McCullagh, J. A. Nelder, "Generalized Linear Models", 2nd ed., Chapman & Hall, 1989,
  §2.5 (IRLS as Newton's method with the canonical link) and §4.4 (binary data).
* A. Albert, J. A. Anderson, "On the existence of maximum likelihood estimates in logistic
  regression models", Biometrika 71(1), 1984 (complete and quasi-complete separation).
* DataSHIELD ``ds.glm``: the federated IRLS scheme and its parameter/observation ratio check
  (A. Gaye et al., "DataSHIELD: taking the analysis to the data, not the data to the
  analysis", Int. J. Epidemiology 43(6), 2014).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats
from scipy.special import expit, log_expit

__all__ = [
    "DEFAULT_MAX_PARAMETER_RATIO",
    "LinearFit",
    "LinearPartial",
    "LogisticFit",
    "LogisticPartial",
    "combine_linear",
    "combine_logistic",
    "dummy_code",
    "fit_linear",
    "fit_logistic",
    "linear_partial",
    "logistic_partial",
    "newton_step",
]

DEFAULT_MAX_PARAMETER_RATIO = 0.2
"""Largest number of parameters per observation a model may have (DESIGN §6)."""

Matrix = NDArray[np.float64]
Vector = NDArray[np.float64]


def dummy_code(values: Sequence[Hashable], levels: Sequence[Hashable]) -> Matrix:
    """Code a categorical covariate as 0/1 columns, one per level after the first.

    The levels come from the study, not from the node's data, so that every hospital builds
    the same columns in the same order even when some level is absent from its rows; the first
    level is the reference.  A value outside ``levels`` is refused rather than dropped.
    """
    if len(set(levels)) != len(levels) or len(levels) < 2:
        raise ValueError("a categorical covariate needs at least two distinct levels")
    position = {level: i for i, level in enumerate(levels)}
    unknown = {v for v in values if v not in position}
    if unknown:
        raise ValueError(f"values outside the study's levels: {sorted(map(str, unknown))}")
    codes = np.fromiter((position[v] for v in values), dtype=np.int64, count=len(values))
    return (codes[:, None] == np.arange(1, len(levels))[None, :]).astype(np.float64)


def _design(x: ArrayLike, intercept: bool) -> Matrix:
    """The design matrix as a finite 2-D float array, with a leading column of ones if asked."""
    design = np.asarray(x, dtype=np.float64)
    if design.ndim == 1:
        design = design[:, None]
    if design.ndim != 2:
        raise ValueError("the design matrix must be two-dimensional")
    if intercept:
        design = np.hstack([np.ones((design.shape[0], 1)), design])
    if design.shape[1] == 0:
        raise ValueError("the model has no parameters")
    if not np.isfinite(design).all():
        raise ValueError("the design matrix holds missing or infinite values")
    return design


def _outcome(y: ArrayLike, n: int) -> Vector:
    """The outcome as a finite float vector of length ``n``."""
    outcome = np.asarray(y, dtype=np.float64)
    if outcome.shape != (n,):
        raise ValueError(f"the outcome must be a vector of {n} values, one per design row")
    if not np.isfinite(outcome).all():
        raise ValueError("the outcome holds missing or infinite values")
    return outcome


def _check_ratio(parameters: int, observations: int, ratio: float, where: str) -> None:
    """Refuse a model with more than ``ratio`` parameters per observation at ``where``."""
    if observations == 0 or parameters / observations > ratio:
        raise ValueError(
            f"{where}: {parameters} parameters for {observations} observations exceed the "
            f"disclosure limit of {ratio:g} parameters per observation"
        )


def _full_rank(matrix: Matrix) -> bool:
    """Whether a symmetric positive semi-definite matrix is numerically non-singular."""
    return int(np.linalg.matrix_rank(matrix, hermitian=True)) == matrix.shape[0]


def _numbers(values: Any, name: str) -> NDArray[np.float64]:
    """Finite floats from a partial's JSON lists; anything else is refused, naming the field."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must hold numbers") from None
    if not np.isfinite(array).all():
        raise ValueError(f"{name} holds missing or infinite values")
    return array


def _scalar(value: Any, name: str) -> float:
    """A finite float from a partial's JSON number."""
    number = _numbers(value, name)
    if number.ndim != 0:
        raise ValueError(f"{name} must be a single number")
    return float(number)


def _vector(values: Any, name: str) -> Vector:
    """A finite float vector from a partial's JSON list."""
    vector = _numbers(values, name)
    if vector.ndim != 1:
        raise ValueError(f"{name} must be a vector")
    return vector


def _square(rows: Any, size: int, name: str) -> Matrix:
    """A finite ``size`` x ``size`` float matrix from a partial's nested JSON lists."""
    matrix = _numbers(rows, name)
    if matrix.shape != (size, size):
        raise ValueError(f"{name} must be a {size} x {size} matrix")
    return matrix


def _fields(data: Mapping[str, Any], expected: set[str], kind: str) -> None:
    """Fail closed on a partial whose fields are not exactly the ones ``kind`` defines."""
    if set(data) != expected:
        raise ValueError(f"a {kind} partial has exactly the fields {sorted(expected)}")


def _count(value: Any) -> int:
    """A non-negative whole number of observations; floats and booleans are refused."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError("n must be a non-negative integer")
    return value


@dataclass(frozen=True, eq=False)
class LinearPartial:
    """A node's sufficient statistics for the normal linear model: X'X, X'y, y'y and n."""

    xtx: Matrix
    xty: Vector
    yty: float
    n: int

    def to_dict(self) -> dict[str, Any]:
        """Return the partial as JSON-safe lists and numbers."""
        return {
            "xtx": self.xtx.tolist(),
            "xty": self.xty.tolist(),
            "yty": float(self.yty),
            "n": int(self.n),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LinearPartial:
        """Rebuild a partial from :meth:`to_dict`'s form, refusing any malformed field."""
        _fields(data, {"xtx", "xty", "yty", "n"}, "linear")
        xty = _vector(data["xty"], "xty")
        return cls(
            xtx=_square(data["xtx"], xty.shape[0], "xtx"),
            xty=xty,
            yty=_scalar(data["yty"], "yty"),
            n=_count(data["n"]),
        )


@dataclass(frozen=True, eq=False)
class LogisticPartial:
    """A node's Newton terms at the hub's coefficients: score, information, log-likelihood, n.

    ``gradient`` is X'(y - p) and ``hessian`` is X'WX, the negative Hessian of the
    log-likelihood (the observed information, which equals the expected one for the logit
    link).  ``beta`` records the coefficients they were computed at, so that the hub can
    refuse a partial computed for a different round.
    """

    beta: Vector
    gradient: Vector
    hessian: Matrix
    log_likelihood: float
    n: int

    def to_dict(self) -> dict[str, Any]:
        """Return the partial as JSON-safe lists and numbers."""
        return {
            "beta": self.beta.tolist(),
            "gradient": self.gradient.tolist(),
            "hessian": self.hessian.tolist(),
            "log_likelihood": float(self.log_likelihood),
            "n": int(self.n),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LogisticPartial:
        """Rebuild a partial from :meth:`to_dict`'s form, refusing any malformed field."""
        _fields(data, {"beta", "gradient", "hessian", "log_likelihood", "n"}, "logistic")
        beta = _vector(data["beta"], "beta")
        gradient = _vector(data["gradient"], "gradient")
        if gradient.shape != beta.shape:
            raise ValueError("beta and gradient must have the same length")
        return cls(
            beta=beta,
            gradient=gradient,
            hessian=_square(data["hessian"], beta.shape[0], "hessian"),
            log_likelihood=_scalar(data["log_likelihood"], "log_likelihood"),
            n=_count(data["n"]),
        )


def linear_partial(
    x: ArrayLike,
    y: ArrayLike,
    *,
    intercept: bool = False,
    max_parameter_ratio: float = DEFAULT_MAX_PARAMETER_RATIO,
) -> LinearPartial:
    """Node side: the sufficient statistics of the linear model on this node's rows.

    The node refuses when its own rows are too few for the parameters, whatever the pool
    would hold: the release is the node's, and so is the check (DESIGN §3.2).
    """
    design = _design(x, intercept)
    n, p = design.shape
    _check_ratio(p, n, max_parameter_ratio, "this node")
    outcome = _outcome(y, n)
    return LinearPartial(
        xtx=design.T @ design, xty=design.T @ outcome, yty=float(outcome @ outcome), n=n
    )


def logistic_partial(
    x: ArrayLike,
    y: ArrayLike,
    beta: ArrayLike,
    *,
    intercept: bool = False,
    max_parameter_ratio: float = DEFAULT_MAX_PARAMETER_RATIO,
) -> LogisticPartial:
    """Node side: one Newton round of the logistic model on this node's rows at ``beta``.

    The log-likelihood is computed from log-sigmoids rather than from p, so that it stays
    finite when a fitted probability rounds to 0 or 1.
    """
    design = _design(x, intercept)
    n, p = design.shape
    _check_ratio(p, n, max_parameter_ratio, "this node")
    outcome = _outcome(y, n)
    if not np.isin(outcome, (0.0, 1.0)).all():
        raise ValueError("a logistic outcome must be 0 or 1")
    coefficients = np.asarray(beta, dtype=np.float64)
    if coefficients.shape != (p,) or not np.isfinite(coefficients).all():
        raise ValueError(f"beta must be {p} finite coefficients, one per design column")
    eta = design @ coefficients
    fitted = expit(eta)
    weights = fitted * (1.0 - fitted)
    log_likelihood = float(outcome @ log_expit(eta) + (1.0 - outcome) @ log_expit(-eta))
    return LogisticPartial(
        beta=coefficients,
        gradient=design.T @ (outcome - fitted),
        hessian=(design * weights[:, None]).T @ design,
        log_likelihood=log_likelihood,
        n=n,
    )


def _check_partials(sizes: Sequence[int], counts: Sequence[int], ratio: float) -> None:
    """Refuse partials that are missing, disagree on the parameters or break the ratio.

    ``sizes`` are the nodes' numbers of parameters and ``counts`` their observations.
    """
    if not sizes:
        raise ValueError("no node contributed to the model")
    if len(set(sizes)) != 1:
        raise ValueError("the nodes' partials have different numbers of parameters")
    _check_ratio(sizes[0], sum(counts), ratio, "the pooled data")
    for i, n in enumerate(counts):
        _check_ratio(sizes[0], n, ratio, f"node {i}")


def combine_linear(
    partials: Sequence[LinearPartial],
    *,
    max_parameter_ratio: float = DEFAULT_MAX_PARAMETER_RATIO,
) -> LinearPartial:
    """Hub side: the pooled sufficient statistics, the sums of the nodes' ones.

    The hub re-checks every node's ratio as well as the pool's, so that a node that skipped
    its own check is still caught before its statistics enter a released model.
    """
    _check_partials(
        [len(part.xty) for part in partials], [part.n for part in partials], max_parameter_ratio
    )
    return LinearPartial(
        xtx=sum((part.xtx for part in partials), start=np.zeros_like(partials[0].xtx)),
        xty=sum((part.xty for part in partials), start=np.zeros_like(partials[0].xty)),
        yty=float(sum(part.yty for part in partials)),
        n=sum(part.n for part in partials),
    )


def combine_logistic(
    partials: Sequence[LogisticPartial],
    *,
    max_parameter_ratio: float = DEFAULT_MAX_PARAMETER_RATIO,
) -> LogisticPartial:
    """Hub side: the pooled score, information and log-likelihood, the sums of the nodes' ones.

    Partials computed at different coefficients belong to different rounds and do not add up
    to anything; they are refused.
    """
    _check_partials(
        [len(part.beta) for part in partials], [part.n for part in partials], max_parameter_ratio
    )
    beta = partials[0].beta
    if any(not np.array_equal(part.beta, beta) for part in partials):
        raise ValueError("the nodes' partials were computed at different coefficients")
    return LogisticPartial(
        beta=beta,
        gradient=sum((part.gradient for part in partials), start=np.zeros_like(beta)),
        hessian=sum((part.hessian for part in partials), start=np.zeros_like(partials[0].hessian)),
        log_likelihood=float(sum(part.log_likelihood for part in partials)),
        n=sum(part.n for part in partials),
    )


def newton_step(pooled: LogisticPartial) -> Vector:
    """Hub side: the Newton (IRLS) step (X'WX)^-1 X'(y - p) from the pooled terms.

    A singular information matrix leaves the step undefined and is refused: at the starting
    coefficients it means a singular design, later it means the fitted probabilities have
    reached 0 or 1 along some direction, which is separation.
    """
    if not _full_rank(pooled.hessian):
        if not pooled.beta.any():
            raise ValueError("the design is singular: its columns are linearly dependent")
        raise ValueError(
            "the information matrix became singular: the outcome is perfectly or "
            "quasi-completely separated and the coefficients diverge"
        )
    return np.linalg.solve(pooled.hessian, pooled.gradient)


def _as_tuple(values: Vector) -> tuple[float, ...]:
    return tuple(float(v) for v in values)


@dataclass(frozen=True)
class LinearFit:
    """An ordinary least squares fit with its classical inference.

    Standard errors are the square roots of the diagonal of sigma^2 (X'X)^-1 with
    sigma^2 = RSS / (n - p); ``t_values`` are coefficient / standard error and ``p_values`` are
    two-sided, from Student's t with n - p degrees of freedom.  ``log_likelihood`` is the
    Gaussian one at the maximum-likelihood variance RSS / n.  The fit takes one round and
    ``iterations`` is 1: one Newton step solves a quadratic objective exactly.
    """

    coefficients: tuple[float, ...]
    standard_errors: tuple[float, ...]
    t_values: tuple[float, ...]
    p_values: tuple[float, ...]
    covariance: tuple[tuple[float, ...], ...]
    sigma2: float
    rss: float
    log_likelihood: float
    n: int
    df_resid: int
    converged: bool
    iterations: int

    def to_dict(self) -> dict[str, Any]:
        """Return the fit as JSON-safe lists and numbers, for release."""
        return {name: _jsonable(getattr(self, name)) for name in self.__dataclass_fields__}


@dataclass(frozen=True)
class LogisticFit:
    """A logistic maximum-likelihood fit with Wald inference.

    Standard errors come from the inverse of the pooled information matrix X'WX at the
    reported coefficients; ``z_values`` are coefficient / standard error and ``p_values`` are
    two-sided, from the standard normal.  ``iterations`` counts the Newton steps taken from
    zero and ``rounds`` the node rounds, one more than the steps, because the last round
    evaluates the terms at the reported coefficients and finds the next step below the
    tolerance.  :func:`fit_logistic` refuses rather than return an unconverged fit, so
    ``converged`` is true on every fit it returns; it is part of the released record.
    """

    coefficients: tuple[float, ...]
    standard_errors: tuple[float, ...]
    z_values: tuple[float, ...]
    p_values: tuple[float, ...]
    covariance: tuple[tuple[float, ...], ...]
    log_likelihood: float
    n: int
    converged: bool
    iterations: int
    rounds: int

    def to_dict(self) -> dict[str, Any]:
        """Return the fit as JSON-safe lists and numbers, for release."""
        return {name: _jsonable(getattr(self, name)) for name in self.__dataclass_fields__}


def _jsonable(value: Any) -> Any:
    return [_jsonable(v) for v in value] if isinstance(value, tuple) else value


def fit_linear(
    partials: Sequence[LinearPartial],
    *,
    max_parameter_ratio: float = DEFAULT_MAX_PARAMETER_RATIO,
) -> LinearFit:
    """Hub side: the pooled ordinary least squares fit from the nodes' sufficient statistics.

    Equal to statsmodels' ``OLS(y, X).fit()`` on the pooled rows.  A singular X'X is refused,
    and so is a model that leaves no residual degree of freedom.
    """
    pooled = combine_linear(partials, max_parameter_ratio=max_parameter_ratio)
    p = pooled.xty.shape[0]
    if not _full_rank(pooled.xtx):
        raise ValueError("the design is singular: its columns are linearly dependent")
    df_resid = pooled.n - p
    if df_resid < 1:
        raise ValueError("the model leaves no residual degrees of freedom")
    inverse = np.linalg.inv(pooled.xtx)
    beta = np.linalg.solve(pooled.xtx, pooled.xty)
    rss = max(pooled.yty - float(beta @ pooled.xty), 0.0)
    sigma2 = rss / df_resid
    covariance = sigma2 * inverse
    se = np.sqrt(np.diag(covariance))
    t = beta / se
    n = pooled.n
    return LinearFit(
        coefficients=_as_tuple(beta),
        standard_errors=_as_tuple(se),
        t_values=_as_tuple(t),
        p_values=_as_tuple(2.0 * stats.t.sf(np.abs(t), df_resid)),
        covariance=tuple(_as_tuple(row) for row in covariance),
        sigma2=sigma2,
        rss=rss,
        log_likelihood=-0.5 * n * (np.log(2.0 * np.pi) + np.log(rss / n) + 1.0),
        n=n,
        df_resid=df_resid,
        converged=True,
        iterations=1,
    )


def _diverging(steps: Sequence[float]) -> bool:
    """Whether the last Newton steps stopped shrinking, the mark of coefficients heading off
    to infinity; near a finite maximum Newton's steps shrink quadratically."""
    last = steps[-3:]
    return len(last) == 3 and all(b >= 0.5 * a for a, b in pairwise(last))


def fit_logistic(
    partial_fns: Sequence[Callable[[Vector], LogisticPartial]],
    max_iter: int = 25,
    tol: float = 1e-8,
    *,
    n_parameters: int,
    max_parameter_ratio: float = DEFAULT_MAX_PARAMETER_RATIO,
) -> LogisticFit:
    """Hub side: drive federated Newton/IRLS rounds from zero until the step is below ``tol``.

    Each element of ``partial_fns`` stands for one node: called with the current coefficients
    it returns that node's :class:`LogisticPartial` (in the data space, a signed task and its
    released result).  ``n_parameters`` is the number of design columns the study defines,
    intercept included.  The fit stops when no coefficient would move by more than ``tol``
    and reports the coefficients the last round was computed at, so that the standard errors
    and the log-likelihood belong to exactly those coefficients.  Equal to statsmodels'
    ``Logit(y, X).fit()`` on the pooled rows, whose Newton solver also starts from zero and
    stops on the same test.

    Refused: a singular design, separation (a singular information matrix, or coefficients
    still diverging after ``max_iter`` steps) and any other failure to converge.
    """
    if max_iter < 1 or not tol > 0 or n_parameters < 1:
        raise ValueError("max_iter and n_parameters must be at least 1 and tol positive")
    if not partial_fns:
        raise ValueError("no node contributed to the model")
    beta = np.zeros(n_parameters)
    steps: list[float] = []
    for iterations in range(max_iter + 1):
        partials = [fn(beta.copy()) for fn in partial_fns]
        if any(not np.array_equal(part.beta, beta) for part in partials):
            raise ValueError("a node answered for coefficients other than the round's")
        pooled = combine_logistic(partials, max_parameter_ratio=max_parameter_ratio)
        step = newton_step(pooled)
        size = float(np.max(np.abs(step)))
        if size <= tol:
            return _logistic_fit(pooled, iterations)
        steps.append(size)
        beta = beta + step
    if _diverging(steps):
        raise ValueError(
            f"no convergence in {max_iter} Newton steps and the coefficients diverge: the "
            "outcome is perfectly or quasi-completely separated"
        )
    raise ValueError(f"no convergence in {max_iter} Newton steps")


def _logistic_fit(pooled: LogisticPartial, iterations: int) -> LogisticFit:
    """The fit at the pooled terms' coefficients, with Wald inference from their information."""
    covariance = np.linalg.inv(pooled.hessian)
    se = np.sqrt(np.diag(covariance))
    z = pooled.beta / se
    return LogisticFit(
        coefficients=_as_tuple(pooled.beta),
        standard_errors=_as_tuple(se),
        z_values=_as_tuple(z),
        p_values=_as_tuple(2.0 * stats.norm.sf(np.abs(z))),
        covariance=tuple(_as_tuple(row) for row in covariance),
        log_likelihood=pooled.log_likelihood,
        n=pooled.n,
        converged=True,
        iterations=iterations,
        rounds=iterations + 1,
    )
