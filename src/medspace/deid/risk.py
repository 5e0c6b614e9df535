"""Measures of the re-identification risk that remains in a table.

A node reports these before a record-level extract leaves it, so that a data-use committee can
judge whether the de-identification profile went far enough.  Every function is pure: it reads
a :class:`pandas.DataFrame` and a list of quasi-identifier columns (and, where the measure needs
one, a sensitive column) and returns a number; nothing loops over rows in Python.

Equivalence classes are the groups of records that share every quasi-identifier value.  A
missing value (NaN or None) counts as a value of its own: two records that both lack a birth
year and agree on everything else fall in one class, because an attacker sees the same thing
for both of them (``groupby(..., dropna=False)``).  An empty list of quasi-identifiers puts every
record in a single class.

Sources:

* k-anonymity: L. Sweeney, "k-anonymity: a model for protecting privacy", 2002.
* l-diversity: A. Machanavajjhala, D. Kifer, J. Gehrke, M. Venkitasubramaniam,
  "l-Diversity: Privacy Beyond k-Anonymity", ACM TKDD 1(1), 2007.
* t-closeness: N. Li, T. Li, S. Venkatasubramanian, "t-Closeness: Privacy Beyond k-Anonymity
  and l-Diversity", ICDE 2007.
* prosecutor, journalist and marketer risk: K. El Emam, "Guide to the De-Identification of
  Personal Health Information", CRC Press, 2013, and the risk analysis of the ARX
  anonymisation tool (https://arx.deidentifier.org/).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

__all__ = [
    "RiskFigures",
    "equivalence_classes",
    "journalist_risk",
    "k_anonymity",
    "l_diversity_distinct",
    "l_diversity_entropy",
    "marketer_risk",
    "prosecutor_risk",
    "sample_uniqueness",
    "t_closeness",
]

DEFAULT_THRESHOLD = 0.2
"""Record risk above which ARX counts a record as "at risk" (a class of fewer than 5)."""


@dataclass(frozen=True)
class RiskFigures:
    """The three figures ARX reports for an attacker model.

    ``highest`` is the largest risk of any record, ``average`` the mean risk over all records
    and ``records_at_risk`` the share of records whose risk exceeds ``threshold`` (strictly).
    All are probabilities in [0, 1]; an empty table has all three at 0.
    """

    highest: float
    average: float
    records_at_risk: float
    threshold: float

    def to_dict(self) -> dict[str, float]:
        """Return the figures as a plain dict, for JSON reports."""
        return asdict(self)


def _class_codes(df: pd.DataFrame, quasi: Sequence[Hashable]) -> np.ndarray:
    """Number each row's equivalence class 0..n_classes-1, missing values included."""
    if not quasi:
        return np.zeros(len(df), dtype=np.int64)
    codes = df.groupby(list(quasi), dropna=False, sort=False).ngroup()
    return codes.to_numpy(dtype=np.int64)


def _class_sizes(df: pd.DataFrame, quasi: Sequence[Hashable]) -> np.ndarray:
    """Size of each equivalence class, one entry per class."""
    return np.bincount(_class_codes(df, quasi))


def equivalence_classes(df: pd.DataFrame, quasi: Sequence[Hashable]) -> pd.Series:
    """Return, for every row, the size of the equivalence class the row falls in.

    The result is indexed like ``df`` so that it can be joined back to the records (to find,
    say, the rows of classes smaller than k); the per-class sizes are its distinct values.
    """
    codes = _class_codes(df, quasi)
    sizes = np.bincount(codes)[codes] if len(codes) else np.zeros(0, dtype=np.int64)
    return pd.Series(sizes, index=df.index, name="class_size", dtype=np.int64)


def k_anonymity(df: pd.DataFrame, quasi: Sequence[Hashable]) -> int:
    """Return k, the size of the smallest equivalence class (Sweeney 2002); 0 if ``df`` is empty.

    A table is k-anonymous when every record shares its quasi-identifiers with at least k-1
    others, so the largest k it satisfies is its smallest class size.
    """
    sizes = _class_sizes(df, quasi)
    return int(sizes.min()) if len(sizes) else 0


def _class_value_counts(
    df: pd.DataFrame, quasi: Sequence[Hashable], sensitive: Hashable, *, ordered: bool = False
) -> np.ndarray:
    """Matrix of counts: one row per equivalence class, one column per sensitive value.

    With ``ordered`` the columns follow the sort order of the sensitive values; a missing
    sensitive value has no place in that order and is refused.  Otherwise a missing value is a
    category of its own.
    """
    classes = _class_codes(df, quasi)
    values = df[sensitive]
    if ordered:
        if values.isna().any():
            raise ValueError(f"ordered t-closeness needs {sensitive!r} without missing values")
        codes, uniques = pd.factorize(values, sort=True)
    else:
        codes, uniques = pd.factorize(values, use_na_sentinel=False)
    n_classes = int(classes.max()) + 1 if len(classes) else 0
    counts = np.zeros((n_classes, len(uniques)), dtype=np.int64)
    np.add.at(counts, (classes, codes), 1)
    return counts


def l_diversity_distinct(df: pd.DataFrame, quasi: Sequence[Hashable], sensitive: Hashable) -> int:
    """Return distinct l: the fewest distinct sensitive values in any class; 0 if ``df`` is empty.

    Machanavajjhala et al. 2007 (section 4.1): a class with l distinct sensitive values stops
    an attacker who knows the quasi-identifiers from learning the value with certainty unless
    he can rule out l-1 of them.  A missing sensitive value counts as one value.
    """
    counts = _class_value_counts(df, quasi, sensitive)
    if counts.shape[0] == 0:
        return 0
    return int((counts > 0).sum(axis=1).min())


def l_diversity_entropy(df: pd.DataFrame, quasi: Sequence[Hashable], sensitive: Hashable) -> float:
    """Return entropy l: the minimum over classes of exp(entropy); 0.0 if ``df`` is empty.

    Machanavajjhala et al. 2007 (definition 4.1): a table is entropy l-diverse when every class
    E has ``-sum_s p(E, s) log p(E, s) >= log l``, p(E, s) being the share of E's records with
    sensitive value s.  The largest such l is ``min_E exp(H(E))``; unlike distinct l it
    penalises a class where one value dominates.  Natural logarithms; the base cancels.
    """
    counts = _class_value_counts(df, quasi, sensitive)
    if counts.shape[0] == 0:
        return 0.0
    shares = counts / counts.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(shares > 0, shares * np.log(shares), 0.0)
    return float(np.exp(-terms.sum(axis=1)).min())


def t_closeness(
    df: pd.DataFrame, quasi: Sequence[Hashable], sensitive: Hashable, ordered: bool
) -> float:
    """Return t: the largest Earth Mover's Distance between a class and the whole table.

    Li et al. 2007 measure how much an attacker learns from a record's class by the distance
    between the distribution Q of the sensitive value in the table and P in the class:

    * categorical values (``ordered=False``), equal ground distance 1 between any two values:
      ``EMD(P, Q) = 1/2 sum_i |p_i - q_i|``, the total variation distance;
    * ordered values (``ordered=True``) v_1 < ... < v_m, ground distance ``|i - j| / (m - 1)``:
      ``EMD(P, Q) = 1/(m - 1) sum_i |sum_{j <= i} (p_j - q_j)|``; only the order of the
      values counts, not their magnitude.  Missing sensitive values raise ``ValueError``.

    The table is t-close for any t at least the result.  An empty table, or a sensitive
    column with a single value, gives 0.0.
    """
    counts = _class_value_counts(df, quasi, sensitive, ordered=ordered)
    n_classes, m = counts.shape
    if n_classes == 0 or m < 2:
        return 0.0
    overall = counts.sum(axis=0) / counts.sum()
    diff = counts / counts.sum(axis=1, keepdims=True) - overall
    if ordered:
        distances = np.abs(np.cumsum(diff, axis=1)).sum(axis=1) / (m - 1)
    else:
        distances = np.abs(diff).sum(axis=1) / 2
    return float(distances.max())


def _figures(record_risk: np.ndarray, threshold: float) -> RiskFigures:
    """Summarise the risk of each record the way ARX does."""
    if len(record_risk) == 0:
        return RiskFigures(highest=0.0, average=0.0, records_at_risk=0.0, threshold=threshold)
    return RiskFigures(
        highest=float(record_risk.max()),
        average=float(record_risk.mean()),
        records_at_risk=float((record_risk > threshold).mean()),
        threshold=threshold,
    )


def prosecutor_risk(
    df: pd.DataFrame, quasi: Sequence[Hashable], threshold: float = DEFAULT_THRESHOLD
) -> RiskFigures:
    """Return the risk against a prosecutor, who knows his target is in ``df``.

    El Emam (2013, ch. 14) and ARX: a record in a class of size f is re-identified with
    probability 1/f.  Hence ``highest = 1 / min f`` and ``average`` = the mean of 1/f over the
    records = number of classes / number of records; ``records_at_risk`` is the share of records
    with 1/f > ``threshold``.
    """
    return _figures(1.0 / equivalence_classes(df, quasi).to_numpy(dtype=float), threshold)


def _sample_population_sizes(
    sample: pd.DataFrame, population: pd.DataFrame, quasi: Sequence[Hashable]
) -> tuple[np.ndarray, np.ndarray]:
    """Per sample record: its sample class size f and the population size F of that class.

    Refuses a population that lacks a sample class or holds fewer of its records than the
    sample does, since the sample must be drawn from the population.
    """
    columns = list(quasi)
    both = pd.concat([sample[columns], population[columns]], ignore_index=True)
    codes = _class_codes(both, columns)
    sample_codes, population_codes = codes[: len(sample)], codes[len(sample) :]
    n_classes = int(codes.max()) + 1 if len(codes) else 0
    f = np.bincount(sample_codes, minlength=n_classes)[sample_codes]
    big_f = np.bincount(population_codes, minlength=n_classes)[sample_codes]
    if (big_f < f).any():
        raise ValueError(
            "the population must contain every sample record's class at least as often"
        )
    return f, big_f


def journalist_risk(
    sample: pd.DataFrame,
    population: pd.DataFrame,
    quasi: Sequence[Hashable],
    threshold: float = DEFAULT_THRESHOLD,
) -> RiskFigures:
    """Return the risk against a journalist, who does not know whether his target is sampled.

    El Emam (2013, ch. 14) and ARX: the classes are those of the released ``sample``, but the
    attacker matches against the ``population`` it was drawn from, so a sample record whose
    class holds F population records is re-identified with probability 1/F.  ``highest`` is
    ``1 / min F`` over the sample's classes, ``average`` the mean of 1/F over the sample's
    records (``sum_j f_j / F_j / n``, equal to :func:`marketer_risk` with a population) and
    ``records_at_risk`` the share of sample records with 1/F > ``threshold``.
    """
    _, big_f = _sample_population_sizes(sample, population, quasi)
    return _figures(1.0 / big_f.astype(float), threshold)


def marketer_risk(
    df: pd.DataFrame, quasi: Sequence[Hashable], population: pd.DataFrame | None = None
) -> float:
    """Return the expected share of records a marketer re-identifies by matching them all.

    El Emam (2013, ch. 14) and ARX: a marketer matches every record and cares how many he gets
    right.  Without a population (prosecutor model) each class of f records yields one correct
    match, so the share is ``number of classes / number of records``.  With the population
    ``df`` was sampled from (journalist model) a class with f sample and F population records
    yields f/F correct matches: ``sum_j f_j / F_j / n``.  0.0 for an empty ``df``.
    """
    if len(df) == 0:
        return 0.0
    if population is None:
        return float(len(_class_sizes(df, quasi)) / len(df))
    _, big_f = _sample_population_sizes(df, population, quasi)
    return float((1.0 / big_f).mean())


def sample_uniqueness(df: pd.DataFrame, quasi: Sequence[Hashable]) -> float:
    """Return the share of records alone in their class; 0.0 for an empty ``df``.

    Sample uniques are the records a prosecutor re-identifies with certainty (El Emam 2013);
    their share is the usual first look at a release.
    """
    sizes = equivalence_classes(df, quasi)
    return float((sizes == 1).mean()) if len(sizes) else 0.0
