"""k-anonymisation of a table by Mondrian multidimensional partitioning.

:mod:`medspace.deid.risk` measures how identifiable a table is; this module makes it less so.
Mondrian (K. LeFevre, D. J. DeWitt, R. Ramakrishnan, "Mondrian Multidimensional
K-Anonymity", ICDE 2006) cuts the records into boxes of at least k records and replaces every
quasi-identifier value by a description of its box.  It needs no generalisation hierarchy and
runs in O(n log n), which is why it suits ad-hoc extracts better than a lattice search.  We
use strict partitioning: a cut sends every record with a value up to the cut left and the
rest right, so boxes never overlap.

A box is cut on the quasi-identifier with the widest normalised range (numeric: value range
over the table's range; categorical: (distinct values - 1) over (table's distinct values - 1)),
at the boundary between distinct values nearest the median.  Categorical values follow their
sorted order.  A cut is allowed when both halves keep at least k records and, with ``l``, at
least l distinct sensitive values (distinct l-diversity, Machanavajjhala et al. 2007, which
Mondrian enforces the same way as k).  When the widest attribute admits no cut the next is
tried; a box that admits none is released.  Every released box therefore satisfies k (and l),
so records are suppressed only when the whole table does not: fewer than k records, or fewer
than l distinct sensitive values.

Utility follows the usual measures:

* discernibility (R. J. Bayardo, R. Agrawal, "Data Privacy through Optimal k-Anonymization",
  ICDE 2005): the sum of squared class sizes, a suppressed record costing n;
* normalised certainty penalty (J. Xu, W. Wang, J. Pei, X. Wang, B. Shi, A. W.-C. Fu,
  "Utility-Based Anonymization Using Local Recoding", KDD 2006) over the numeric
  quasi-identifiers: the width of a record's range over the attribute's range, averaged over
  records and attributes, a suppressed record costing 1;
* the Kullback-Leibler divergence between each quasi-identifier's original marginal and the
  marginal a user reconstructs from the release by spreading every record's mass uniformly
  over the original values its generalisation covers (D. Kifer, J. Gehrke, "Injecting Utility
  into Anonymized Datasets", SIGMOD 2006, use the same uniform reading of a generalisation).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["Anonymised", "Utility", "anonymise"]


@dataclass(frozen=True)
class Utility:
    """What the anonymisation cost, by three measures (see the module docstring).

    ``discernibility`` is Bayardo and Agrawal's metric, at least n (every record alone) and at
    most n**2.  ``certainty_penalty`` is the mean normalised width of the numeric
    quasi-identifiers' ranges in [0, 1]: 0 when nothing was generalised (or no quasi-identifier
    is numeric), 1 when everything was suppressed.  ``kl_divergence`` maps each
    quasi-identifier to KL(original marginal || reconstructed marginal) in nats, 0 when the
    marginal is kept exactly.
    """

    discernibility: int
    certainty_penalty: float
    kl_divergence: dict[Hashable, float]


@dataclass(frozen=True)
class Anonymised:
    """The result of :func:`anonymise`.

    ``table`` holds the released records with their original index and columns; each
    quasi-identifier column holds strings: ``"lo-hi"`` or the single value for a numeric
    attribute, the sorted distinct values joined by ``"|"`` or the single value for a
    categorical one.  Suppressed records are left out and counted in ``suppressed``;
    ``partitions`` is the number of released equivalence classes.
    """

    table: pd.DataFrame
    suppressed: int
    partitions: int
    utility: Utility


def _is_numeric(values: pd.Series) -> bool:
    """Numeric attributes are cut and generalised by value; booleans count as categories."""
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


def _check(
    df: pd.DataFrame,
    quasi: Sequence[Hashable],
    k: int,
    diversity: int | None,
    sensitive: Hashable | None,
    max_suppression: float,
) -> None:
    """Refuse arguments Mondrian cannot honour, before any work is done."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if diversity is not None and (diversity < 1 or sensitive is None):
        raise ValueError("l-diversity needs l >= 1 and a sensitive column")
    if not 0.0 <= max_suppression <= 1.0:
        raise ValueError(f"max_suppression must lie in [0, 1], got {max_suppression}")
    wanted = [*quasi, sensitive] if diversity is not None else list(quasi)
    missing = [c for c in wanted if c not in df]
    if missing:
        raise ValueError(f"columns not in the table: {missing!r}")
    if diversity is not None and sensitive in quasi:
        raise ValueError(f"the sensitive column {sensitive!r} cannot be a quasi-identifier")
    if len(quasi) and df[list(quasi)].isna().any().any():
        raise ValueError("quasi-identifiers must not have missing values")


def _partition(
    codes: np.ndarray,
    spans: np.ndarray,
    sensitive: np.ndarray | None,
    k: int,
    diversity: int,
) -> list[np.ndarray]:
    """Cut the rows into Mondrian boxes; return each box's row positions.

    ``codes`` has one column per quasi-identifier holding each row's rank among the attribute's
    sorted distinct values; ``spans[j, r]`` places rank r of attribute j in [0, 1], so that
    ``spans[j, hi] - spans[j, lo]`` is a box's normalised range (numeric attributes by value).
    An explicit stack replaces recursion: a skewed attribute can cut off k records at a time.
    """
    boxes: list[np.ndarray] = []
    stack = [np.arange(codes.shape[0])]
    while stack:
        rows = stack.pop()
        halves = _cut(codes[rows], spans, rows, sensitive, k, diversity)
        if halves is None:
            boxes.append(rows)
        else:
            stack.extend(halves)
    return boxes


def _cut(
    box: np.ndarray,
    spans: np.ndarray,
    rows: np.ndarray,
    sensitive: np.ndarray | None,
    k: int,
    diversity: int,
) -> tuple[np.ndarray, np.ndarray] | None:
    """Return the rows of the two halves of the first allowable median cut, or None.

    Attributes are tried from the widest normalised range down.  The boundary nearest the
    median maximises the smaller half, so when it leaves fewer than k records no other
    boundary of that attribute can do better.
    """
    lo, hi = box.min(axis=0), box.max(axis=0)
    attributes = np.arange(len(lo))
    widths = spans[attributes, hi] - spans[attributes, lo]
    for j in np.argsort(-widths, kind="stable"):
        if hi[j] == lo[j]:
            return None
        counts = np.bincount(box[:, j] - lo[j])
        present = np.flatnonzero(counts)
        cumulative = np.cumsum(counts[present])[:-1]
        cut = int(np.argmin(np.abs(cumulative - len(rows) / 2)))
        if min(cumulative[cut], len(rows) - cumulative[cut]) < k:
            continue
        left = box[:, j] - lo[j] <= present[cut]
        if sensitive is not None and (
            len(np.unique(sensitive[rows[left]])) < diversity
            or len(np.unique(sensitive[rows[~left]])) < diversity
        ):
            continue
        return rows[left], rows[~left]
    return None


def _generalise(values: pd.Series, box: np.ndarray) -> pd.Series:
    """Replace each value by its box's description, as strings (see :class:`Anonymised`)."""
    if _is_numeric(values):
        groups = values.groupby(box)
        lo = groups.transform("min").astype(str)
        hi = groups.transform("max").astype(str)
        return lo.where(lo == hi, lo + "-" + hi)
    ranks, uniques = pd.factorize(values, sort=True)
    names = [str(u) for u in uniques]
    pairs = np.unique(box * len(names) + ranks)
    owners, members = np.divmod(pairs, len(names))
    per_box = np.split(members, np.flatnonzero(np.diff(owners)) + 1)
    labels = np.array(["|".join(names[m] for m in ms) for ms in per_box], dtype=object)
    return pd.Series(labels[box], index=values.index, dtype=str)


def _kl(values: pd.Series, box: np.ndarray, released: bool) -> float:
    """KL divergence of the reconstructed marginal of ``values`` from the original.

    Each box's mass is spread uniformly over the table's distinct values that its
    generalisation covers: the values between its lowest and highest for a numeric attribute,
    its own distinct values for a categorical one; unreleased records cover every value.
    """
    ranks, uniques = pd.factorize(values, sort=True)
    n, m = len(ranks), len(uniques)
    original = np.bincount(ranks, minlength=m) / n
    if not released:
        rebuilt = np.full(m, 1.0 / m)
    elif _is_numeric(values):
        frame = pd.DataFrame({"box": box, "rank": ranks}).groupby("box")["rank"]
        lo, hi, size = frame.min(), frame.max(), frame.size()
        steps = np.zeros(m + 1)
        np.add.at(steps, lo.to_numpy(), size.to_numpy() / (hi - lo + 1).to_numpy())
        np.add.at(steps, hi.to_numpy() + 1, -size.to_numpy() / (hi - lo + 1).to_numpy())
        rebuilt = np.cumsum(steps)[:m] / n
    else:
        pairs = pd.DataFrame({"box": box, "rank": ranks}).drop_duplicates()
        size = np.bincount(box)
        spread = pairs.groupby("box")["rank"].transform("size").to_numpy()
        rebuilt = np.zeros(m)
        np.add.at(rebuilt, pairs["rank"].to_numpy(), size[pairs["box"].to_numpy()] / spread)
        rebuilt /= n
    return float(np.sum(original * np.log(original / rebuilt)))


def _utility(
    df: pd.DataFrame, quasi: Sequence[Hashable], box: np.ndarray, released: bool
) -> Utility:
    """Measure the cost of generalising ``df`` into the boxes numbered by ``box``."""
    n = len(df)
    if n == 0:
        return Utility(0, 0.0, {c: 0.0 for c in quasi})
    sizes = np.bincount(box)
    discernibility = int((sizes**2).sum()) if released else n * n
    penalties = []
    for column in quasi:
        values = df[column]
        if not _is_numeric(values):
            continue
        full = float(values.max() - values.min())
        if not released:
            penalties.append(1.0)
        elif full > 0:
            groups = values.groupby(box)
            width = (groups.transform("max") - groups.transform("min")).to_numpy(dtype=float)
            penalties.append(float(width.mean() / full))
        else:
            penalties.append(0.0)
    return Utility(
        discernibility=discernibility,
        certainty_penalty=float(np.mean(penalties)) if penalties else 0.0,
        kl_divergence={c: _kl(df[c], box, released) for c in quasi},
    )


def anonymise(
    df: pd.DataFrame,
    quasi: Sequence[Hashable],
    k: int,
    *,
    l: int | None = None,  # noqa: E741 - the letter of the l-diversity literature
    sensitive: Hashable | None = None,
    max_suppression: float = 0.05,
) -> Anonymised:
    """Make ``df`` k-anonymous (and distinct l-diverse) over ``quasi`` by Mondrian partitioning.

    Every released equivalence class holds at least k records and, with ``l``, at least l
    distinct values of ``sensitive`` (a missing value counting as one, as in
    :func:`medspace.deid.risk.l_diversity_distinct`).  Records that cannot be released are
    suppressed; since Mondrian only ever cuts into boxes that satisfy the model, that happens
    to the whole table or not at all.  Raises ``ValueError`` when the suppression would exceed
    ``max_suppression`` (a share of the records), when a quasi-identifier has missing values,
    or on arguments that make no sense.  Columns outside ``quasi`` are released unchanged.
    """
    quasi = list(quasi)
    _check(df, quasi, k, l, sensitive, max_suppression)
    n = len(df)
    needed_l = l or 1
    sensitive_codes = (
        pd.factorize(df[sensitive], use_na_sentinel=False)[0] if l is not None else None
    )
    satisfied = n >= k and (sensitive_codes is None or len(np.unique(sensitive_codes)) >= needed_l)
    if not satisfied:
        if n > max_suppression * n:  # an empty table suppresses nothing
            raise ValueError(
                f"{k}-anonymity{f' with {l}-diversity' if l is not None else ''} needs "
                f"suppressing {n} of {n} records, more than max_suppression={max_suppression}"
            )
        released = df.iloc[:0].astype({c: str for c in quasi})
        return Anonymised(released, n, 0, _utility(df, quasi, np.zeros(n, np.int64), False))

    codes = np.zeros((n, len(quasi)), dtype=np.int64)
    spans = []
    for j, column in enumerate(quasi):
        codes[:, j], uniques = pd.factorize(df[column], sort=True)
        if _is_numeric(df[column]):
            position = np.asarray(uniques, dtype=float) - float(uniques[0])
        else:
            position = np.arange(len(uniques), dtype=float)
        spans.append(position / position[-1] if len(position) > 1 else position)
    width = max((len(s) for s in spans), default=0)
    padded = np.array([np.pad(s, (0, width - len(s))) for s in spans]).reshape(len(quasi), -1)

    box = np.zeros(n, dtype=np.int64)
    boxes = _partition(codes, padded, sensitive_codes, k, needed_l)
    for number, rows in enumerate(boxes):
        box[rows] = number
    table = df.copy()
    for column in quasi:
        table[column] = _generalise(df[column], box)
    return Anonymised(table, 0, len(boxes), _utility(df, quasi, box, True))
