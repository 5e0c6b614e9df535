"""Risk figures and the anonymiser on UCI Adult, checked against plain pandas groupbys.

Adult is the data set anonymisation tools are compared on; every figure here is recomputed
independently from ``groupby(...).size()`` and friends, so a slip in the vectorised code of
:mod:`medspace.deid.risk` shows up as a disagreement on 30,162 real records.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from medspace.deid import risk
from medspace.deid.anonymise import anonymise
from medspace.demo.datasets import DatasetMissing, adult

QUASI = ["age", "sex", "race", "marital-status", "education", "native-country", "workclass"]
SENSITIVE = "occupation"


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    try:
        return adult()
    except DatasetMissing as exc:
        pytest.skip(f"UCI ADULT NOT TESTED: {exc}")


@pytest.fixture(scope="module")
def sizes(table: pd.DataFrame) -> pd.Series:
    """Each record's class size, from a groupby independent of medspace.deid.risk."""
    return table.groupby(QUASI)[QUASI[0]].transform("size")


def test_adult_has_the_30162_complete_records_of_the_benchmark(table: pd.DataFrame) -> None:
    assert len(table) == 30162
    assert not table.isna().any().any()


def test_k_anonymity_on_adult_is_the_smallest_groupby_class(table: pd.DataFrame) -> None:
    expected = int(table.groupby(QUASI).size().min())
    assert risk.k_anonymity(table, QUASI) == expected
    assert risk.k_anonymity(table, ["sex", "race"]) == int(
        table.groupby(["sex", "race"]).size().min()
    )


def test_sample_uniqueness_on_adult_is_the_share_of_classes_of_one(
    table: pd.DataFrame, sizes: pd.Series
) -> None:
    assert risk.sample_uniqueness(table, QUASI) == pytest.approx((sizes == 1).mean(), abs=1e-12)


def test_prosecutor_and_marketer_risk_on_adult_follow_from_the_class_sizes(
    table: pd.DataFrame, sizes: pd.Series
) -> None:
    figures = risk.prosecutor_risk(table, QUASI, threshold=0.2)
    assert figures.highest == pytest.approx(1 / sizes.min(), abs=1e-12)
    assert figures.average == pytest.approx((1 / sizes).mean(), abs=1e-12)
    assert figures.records_at_risk == pytest.approx((1 / sizes > 0.2).mean(), abs=1e-12)
    classes = table.groupby(QUASI).ngroups
    assert risk.marketer_risk(table, QUASI) == pytest.approx(classes / len(table), abs=1e-12)


def test_journalist_risk_on_a_sample_of_adult_matches_against_the_whole(
    table: pd.DataFrame,
) -> None:
    sample = table.sample(frac=0.1, random_state=7)
    in_population = table.groupby(QUASI).size().rename("F")
    big_f = sample.join(in_population, on=QUASI)["F"]
    figures = risk.journalist_risk(sample, table, QUASI)
    assert figures.highest == pytest.approx(1 / big_f.min(), abs=1e-12)
    assert figures.average == pytest.approx((1 / big_f).mean(), abs=1e-12)
    assert risk.marketer_risk(sample, QUASI, population=table) == pytest.approx(
        (1 / big_f).mean(), abs=1e-12
    )


def test_l_diversity_on_adult_matches_per_class_value_counts(table: pd.DataFrame) -> None:
    groups = table.groupby(QUASI)[SENSITIVE]
    assert risk.l_diversity_distinct(table, QUASI, SENSITIVE) == int(groups.nunique().min())
    shares = table.groupby(QUASI)[SENSITIVE].value_counts(normalize=True)
    entropy = (-shares * np.log(shares)).groupby(level=list(range(len(QUASI)))).sum()
    assert risk.l_diversity_entropy(table, QUASI, SENSITIVE) == pytest.approx(
        math.exp(entropy.min()), rel=1e-12
    )


def test_t_closeness_on_adult_is_the_largest_total_variation_or_ordered_emd(
    table: pd.DataFrame,
) -> None:
    quasi = ["sex", "race", "marital-status"]
    overall = table[SENSITIVE].value_counts(normalize=True)
    per_class = table.groupby(quasi)[SENSITIVE].value_counts(normalize=True).unstack(fill_value=0)
    variation = (per_class[overall.index] - overall).abs().sum(axis=1) / 2
    assert risk.t_closeness(table, quasi, SENSITIVE, ordered=False) == pytest.approx(
        variation.max(), abs=1e-12
    )
    order = sorted(table["education-num"].unique())
    overall_num = table["education-num"].value_counts(normalize=True).reindex(order)
    by_class = (
        table.groupby(quasi)["education-num"]
        .value_counts(normalize=True)
        .unstack(fill_value=0)
        .reindex(columns=order, fill_value=0)
    )
    emd = (by_class - overall_num).cumsum(axis=1).abs().sum(axis=1) / (len(order) - 1)
    assert risk.t_closeness(table, quasi, "education-num", ordered=True) == pytest.approx(
        emd.max(), abs=1e-12
    )


def test_adult_anonymised_to_k5_is_5_anonymous_by_groupby_within_the_suppression_budget(
    table: pd.DataFrame,
) -> None:
    result = anonymise(table, QUASI, 5, max_suppression=0.05)
    assert result.suppressed <= 0.05 * len(table)
    assert len(result.table) + result.suppressed == len(table)
    assert int(result.table.groupby(QUASI).size().min()) >= 5
    assert result.table.groupby(QUASI).ngroups == result.partitions
    assert risk.k_anonymity(result.table, QUASI) >= 5


def test_adult_anonymised_to_k5_l2_has_two_occupations_in_every_class(
    table: pd.DataFrame,
) -> None:
    result = anonymise(table, QUASI, 5, l=2, sensitive=SENSITIVE)
    assert int(result.table.groupby(QUASI)[SENSITIVE].nunique().min()) >= 2
    assert int(result.table.groupby(QUASI).size().min()) >= 5
