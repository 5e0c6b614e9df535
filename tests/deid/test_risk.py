"""Re-identification risk measures: hand-computed tables and a naive reference on random ones."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medspace.deid.risk import (
    RiskFigures,
    equivalence_classes,
    journalist_risk,
    k_anonymity,
    l_diversity_distinct,
    l_diversity_entropy,
    marketer_risk,
    prosecutor_risk,
    sample_uniqueness,
    t_closeness,
)

QUASI = ["age", "sex"]


def _patients() -> pd.DataFrame:
    """Classes (30, F) x3, (40, M) x2, (50, F) x1."""
    return pd.DataFrame(
        {
            "age": [30, 30, 30, 40, 40, 50],
            "sex": ["F", "F", "F", "M", "M", "F"],
            "diag": ["flu", "flu", "cold", "flu", "asthma", "cold"],
        }
    )


def _two_classes() -> pd.DataFrame:
    """Class A = (30, F) with flu, flu, cold; class B = (40, M) with flu, asthma."""
    return _patients().iloc[:5]


def _population() -> pd.DataFrame:
    """The patients plus 2 more (30, F), 2 more (40, M), 1 more (50, F) and a (60, M) class."""
    extra = pd.DataFrame(
        {
            "age": [30, 30, 40, 40, 50, 60],
            "sex": ["F", "F", "M", "M", "F", "M"],
            "diag": ["flu"] * 6,
        }
    )
    return pd.concat([_patients(), extra], ignore_index=True)


def _empty() -> pd.DataFrame:
    return _patients().iloc[:0]


# --- equivalence classes and k-anonymity --------------------------------------------------------


def test_equivalence_classes_gives_each_row_its_class_size() -> None:
    sizes = equivalence_classes(_patients(), QUASI)
    assert sizes.tolist() == [3, 3, 3, 2, 2, 1]
    assert sizes.index.equals(_patients().index)


def test_equivalence_classes_keeps_the_frame_index() -> None:
    df = _patients().set_index(pd.Index(list("abcdef")))
    assert equivalence_classes(df, QUASI).index.tolist() == list("abcdef")


def test_k_anonymity_is_the_smallest_equivalence_class() -> None:
    assert k_anonymity(_patients(), QUASI) == 1
    assert k_anonymity(_two_classes(), QUASI) == 2


def test_k_anonymity_of_a_single_class_is_the_row_count() -> None:
    assert k_anonymity(_patients(), []) == 6
    assert k_anonymity(_patients().assign(age=1, sex="F"), QUASI) == 6


def test_k_anonymity_of_one_row_is_one() -> None:
    assert k_anonymity(_patients().iloc[:1], QUASI) == 1


def test_k_anonymity_of_an_empty_frame_is_zero() -> None:
    assert k_anonymity(_empty(), QUASI) == 0
    assert equivalence_classes(_empty(), QUASI).empty


def test_missing_quasi_identifiers_form_a_class_of_their_own() -> None:
    # NaN and None are one value: rows 0, 1 and 2 share (missing, F); row 3 is (30, F).
    df = pd.DataFrame({"age": [np.nan, np.nan, None, 30.0], "sex": ["F", "F", "F", "F"]})
    assert equivalence_classes(df, QUASI).tolist() == [3, 3, 3, 1]
    assert k_anonymity(df.iloc[:3], QUASI) == 3


def test_missing_values_in_a_text_quasi_identifier_group_together() -> None:
    df = pd.DataFrame({"age": [30, 30, 30], "sex": [None, np.nan, "F"]})
    assert equivalence_classes(df, QUASI).tolist() == [2, 2, 1]


# --- l-diversity --------------------------------------------------------------------------------


def test_distinct_l_is_the_fewest_sensitive_values_in_a_class() -> None:
    # A has {flu, cold}, B {flu, asthma}, and (50, F) only {cold}.
    assert l_diversity_distinct(_two_classes(), QUASI, "diag") == 2
    assert l_diversity_distinct(_patients(), QUASI, "diag") == 1


def test_entropy_l_is_the_smallest_exponentiated_class_entropy() -> None:
    # A: p = (2/3, 1/3), exp(H) = 3 / 2**(2/3) ≈ 1.88988; B: p = (1/2, 1/2), exp(H) = 2.
    assert l_diversity_entropy(_two_classes(), QUASI, "diag") == pytest.approx(3 / 2 ** (2 / 3))


def test_entropy_l_is_below_distinct_l_when_one_value_dominates() -> None:
    df = pd.DataFrame({"age": [1] * 4, "sex": ["F"] * 4, "diag": ["a", "a", "a", "b"]})
    assert l_diversity_distinct(df, QUASI, "diag") == 2
    assert l_diversity_entropy(df, QUASI, "diag") < 2


def test_a_missing_sensitive_value_counts_as_one_value() -> None:
    df = pd.DataFrame({"age": [1] * 3, "sex": ["F"] * 3, "diag": ["a", None, np.nan]})
    assert l_diversity_distinct(df, QUASI, "diag") == 2


def test_l_diversity_of_one_row_is_one() -> None:
    one = _patients().iloc[:1]
    assert l_diversity_distinct(one, QUASI, "diag") == 1
    assert l_diversity_entropy(one, QUASI, "diag") == pytest.approx(1.0)


def test_l_diversity_of_an_empty_frame_is_zero() -> None:
    assert l_diversity_distinct(_empty(), QUASI, "diag") == 0
    assert l_diversity_entropy(_empty(), QUASI, "diag") == 0.0


# --- t-closeness --------------------------------------------------------------------------------


def test_categorical_t_closeness_is_the_largest_total_variation() -> None:
    # Table: flu 3/5, cold 1/5, asthma 1/5.
    # A (2/3, 1/3, 0):   |1/15| + |2/15| + |-3/15| = 6/15, halved 1/5.
    # B (1/2, 0, 1/2):   |-1/10| + |-1/5| + |3/10| = 6/10, halved 3/10.
    assert t_closeness(_two_classes(), QUASI, "diag", ordered=False) == pytest.approx(0.3)


def test_ordered_t_closeness_matches_li_et_al_salary_example() -> None:
    # Li et al. 2007, section 4: salaries 3k..11k, one record each. The class {3k, 4k, 5k} is
    # at 0.375 from the table, {6k, 8k, 11k} at 0.167 and {7k, 9k, 10k} at 17/72 ≈ 0.236.
    df = pd.DataFrame(
        {
            "zip": ["a"] * 3 + ["b"] * 3 + ["c"] * 3,
            "salary": [3, 4, 5, 6, 8, 11, 7, 9, 10],
        }
    )
    assert t_closeness(df, ["zip"], "salary", ordered=True) == pytest.approx(0.375)
    assert t_closeness(df.iloc[3:6], ["zip"], "salary", ordered=True) == 0.0
    only_b = df.assign(zip=np.where(df["zip"] == "b", "b", "rest"))
    assert t_closeness(only_b, ["zip"], "salary", ordered=True) == pytest.approx(1 / 6)


def test_ordered_t_closeness_depends_on_order_not_magnitude() -> None:
    df = pd.DataFrame({"zip": ["a", "a", "b", "b"], "salary": [1, 2, 3, 4]})
    stretched = df.assign(salary=[1, 2, 3, 1000])
    assert t_closeness(df, ["zip"], "salary", ordered=True) == pytest.approx(
        t_closeness(stretched, ["zip"], "salary", ordered=True)
    )


def test_ordered_t_closeness_refuses_missing_sensitive_values() -> None:
    df = pd.DataFrame({"zip": ["a", "b"], "salary": [1.0, np.nan]})
    with pytest.raises(ValueError, match="missing"):
        t_closeness(df, ["zip"], "salary", ordered=True)


def test_t_closeness_of_a_single_class_is_zero() -> None:
    single = _patients().assign(age=1, sex="F")
    assert t_closeness(single, QUASI, "diag", ordered=False) == 0.0
    assert t_closeness(single.assign(diag=range(6)), QUASI, "diag", ordered=True) == 0.0


def test_t_closeness_of_an_empty_frame_is_zero() -> None:
    assert t_closeness(_empty(), QUASI, "diag", ordered=False) == 0.0
    assert t_closeness(_empty(), QUASI, "diag", ordered=True) == 0.0


# --- prosecutor, journalist, marketer -----------------------------------------------------------


def test_prosecutor_risk_follows_arx() -> None:
    # Record risks 1/3, 1/3, 1/3, 1/2, 1/2, 1: highest 1, average 3 classes / 6 records,
    # and every record is above 0.2.
    figures = prosecutor_risk(_patients(), QUASI)
    assert figures == RiskFigures(highest=1.0, average=0.5, records_at_risk=1.0, threshold=0.2)


def test_prosecutor_records_at_risk_count_only_risks_above_the_threshold() -> None:
    # Above 0.4: the two 1/2 records and the 1 record; at exactly 1/3 nothing more.
    assert prosecutor_risk(_patients(), QUASI, threshold=0.4).records_at_risk == 0.5
    assert prosecutor_risk(_patients(), QUASI, threshold=1 / 3).records_at_risk == 0.5


def test_prosecutor_risk_of_an_empty_frame_is_zero() -> None:
    figures = prosecutor_risk(_empty(), QUASI)
    assert (figures.highest, figures.average, figures.records_at_risk) == (0.0, 0.0, 0.0)


def test_prosecutor_risk_of_one_row_is_certain() -> None:
    figures = prosecutor_risk(_patients().iloc[:1], QUASI)
    assert (figures.highest, figures.average, figures.records_at_risk) == (1.0, 1.0, 1.0)


def test_risk_figures_to_dict_names_every_figure() -> None:
    figures = RiskFigures(highest=1.0, average=0.5, records_at_risk=0.25, threshold=0.2)
    assert figures.to_dict() == {
        "highest": 1.0,
        "average": 0.5,
        "records_at_risk": 0.25,
        "threshold": 0.2,
    }


def test_journalist_risk_takes_class_sizes_from_the_population() -> None:
    # Population sizes F of the sample records: 5, 5, 5, 4, 4, 2.
    # highest 1/2; average (3/5 + 2/4 + 1/2) / 6 = 1.6 / 6; above 0.2: the 1/4s and the 1/2.
    figures = journalist_risk(_patients(), _population(), QUASI)
    assert figures.highest == pytest.approx(0.5)
    assert figures.average == pytest.approx(1.6 / 6)
    assert figures.records_at_risk == pytest.approx(0.5)


def test_journalist_risk_refuses_a_population_missing_a_sample_class() -> None:
    with pytest.raises(ValueError, match="population"):
        journalist_risk(_patients(), _two_classes(), QUASI)


def test_journalist_risk_of_an_empty_sample_is_zero() -> None:
    figures = journalist_risk(_empty(), _population(), QUASI)
    assert (figures.highest, figures.average, figures.records_at_risk) == (0.0, 0.0, 0.0)


def test_marketer_risk_without_population_is_classes_over_records() -> None:
    assert marketer_risk(_patients(), QUASI) == pytest.approx(3 / 6)


def test_marketer_risk_with_population_sums_sample_over_population_sizes() -> None:
    # Population sizes 5, 4 and 2 for sample classes of 3, 2 and 1: 3/5 + 2/4 + 1/2 = 1.6.
    assert marketer_risk(_patients(), QUASI, _population()) == pytest.approx(1.6 / 6)


def test_marketer_risk_of_an_empty_frame_is_zero() -> None:
    assert marketer_risk(_empty(), QUASI) == 0.0
    assert marketer_risk(_empty(), QUASI, _population()) == 0.0


def test_sample_uniqueness_is_the_share_of_singleton_classes() -> None:
    assert sample_uniqueness(_patients(), QUASI) == pytest.approx(1 / 6)
    assert sample_uniqueness(_patients().iloc[:1], QUASI) == 1.0
    assert sample_uniqueness(_empty(), QUASI) == 0.0


# --- against a naive reference ------------------------------------------------------------------


def _key(row: tuple[object, ...]) -> tuple[object, ...]:
    """A class key in which every missing value is the same value."""
    return tuple(None if pd.isna(v) else v for v in row)


def _naive_classes(df: pd.DataFrame, quasi: list[str]) -> list[tuple[object, ...]]:
    return [_key(row) for row in df[quasi].itertuples(index=False, name=None)]


def _naive_groups(df: pd.DataFrame, quasi: list[str], sensitive: str) -> dict[tuple, list]:
    groups: dict[tuple, list] = {}
    for key, value in zip(_naive_classes(df, quasi), df[sensitive], strict=True):
        groups.setdefault(key, []).append(value)
    return groups


def _naive_emd(values: list[int], table: list[int], ordered: bool) -> float:
    domain = sorted(set(table))
    p, q = Counter(values), Counter(table)
    diffs = [p[v] / len(values) - q[v] / len(table) for v in domain]
    if not ordered:
        return sum(abs(d) for d in diffs) / 2
    if len(domain) < 2:
        return 0.0
    total, running = 0.0, 0.0
    for d in diffs:
        running += d
        total += abs(running)
    return total / (len(domain) - 1)


_frames = st.integers(min_value=1, max_value=25).flatmap(
    lambda n: st.fixed_dictionaries(
        {
            "age": st.lists(st.sampled_from([30.0, 40.0, np.nan]), min_size=n, max_size=n),
            "sex": st.lists(st.sampled_from(["F", "M", None]), min_size=n, max_size=n),
            "diag": st.lists(st.integers(min_value=0, max_value=3), min_size=n, max_size=n),
        }
    ).map(pd.DataFrame)
)


@settings(max_examples=150, deadline=None)
@given(df=_frames)
def test_measures_agree_with_a_naive_computation(df: pd.DataFrame) -> None:
    keys = _naive_classes(df, QUASI)
    sizes = Counter(keys)
    groups = _naive_groups(df, QUASI, "diag")
    n = len(df)

    assert equivalence_classes(df, QUASI).tolist() == [sizes[k] for k in keys]
    assert k_anonymity(df, QUASI) == min(sizes.values())
    assert l_diversity_distinct(df, QUASI, "diag") == min(len(set(g)) for g in groups.values())
    entropies = [
        -sum(c / len(g) * math.log(c / len(g)) for c in Counter(g).values())
        for g in groups.values()
    ]
    assert l_diversity_entropy(df, QUASI, "diag") == pytest.approx(math.exp(min(entropies)))
    table = df["diag"].tolist()
    for ordered in (False, True):
        expected = max(_naive_emd(g, table, ordered) for g in groups.values())
        assert t_closeness(df, QUASI, "diag", ordered=ordered) == pytest.approx(expected, abs=1e-12)

    risks = [1 / sizes[k] for k in keys]
    figures = prosecutor_risk(df, QUASI)
    assert figures.highest == pytest.approx(max(risks))
    assert figures.average == pytest.approx(sum(risks) / n)
    assert figures.records_at_risk == pytest.approx(sum(r > 0.2 for r in risks) / n)
    assert marketer_risk(df, QUASI) == pytest.approx(len(sizes) / n)
    assert sample_uniqueness(df, QUASI) == pytest.approx(sum(sizes[k] == 1 for k in keys) / n)


@settings(max_examples=150, deadline=None)
@given(sample=_frames, rest=_frames)
def test_journalist_measures_agree_with_a_naive_computation(
    sample: pd.DataFrame, rest: pd.DataFrame
) -> None:
    population = pd.concat([sample, rest], ignore_index=True)
    keys = _naive_classes(sample, QUASI)
    sample_sizes = Counter(keys)
    population_sizes = Counter(_naive_classes(population, QUASI))
    n = len(sample)

    risks = [1 / population_sizes[k] for k in keys]
    figures = journalist_risk(sample, population, QUASI)
    assert figures.highest == pytest.approx(max(risks))
    assert figures.average == pytest.approx(sum(risks) / n)
    assert figures.records_at_risk == pytest.approx(sum(r > 0.2 for r in risks) / n)
    per_class = sum(f / population_sizes[k] for k, f in sample_sizes.items())
    assert marketer_risk(sample, QUASI, population) == pytest.approx(per_class / n)
