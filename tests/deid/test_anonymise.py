"""Mondrian k-anonymisation: checked with the risk measures, by hand and on random tables."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medspace.deid.anonymise import Anonymised, Utility, anonymise
from medspace.deid.risk import equivalence_classes, k_anonymity, l_diversity_distinct

QUASI = ["age", "sex", "ward"]


def _patients(n: int = 400, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "age": rng.integers(18, 95, n),
            "sex": rng.choice(["F", "M"], n),
            "ward": rng.choice(["cardio", "neuro", "onco", "ortho", "peds"], n),
            "diagnosis": rng.choice(["I21", "C50", "G40", "S72", "J18", "E11"], n),
        }
    )


def _tiny() -> pd.DataFrame:
    """Six patients; Mondrian with k=3 cuts age once, at 30|40 (worked out in the tests)."""
    return pd.DataFrame({"age": [10, 10, 30, 40, 50, 60], "sex": ["F", "F", "F", "F", "M", "M"]})


@pytest.mark.parametrize("k", [1, 2, 5, 10, 50])
def test_result_is_k_anonymous(k: int) -> None:
    df = _patients()
    result = anonymise(df, QUASI, k)
    assert result.suppressed == 0
    assert len(result.table) == len(df)
    assert k_anonymity(result.table, QUASI) >= k
    assert result.partitions == len(result.table.groupby(QUASI).size())
    assert result.table["diagnosis"].equals(df["diagnosis"])


@pytest.mark.parametrize(("k", "l"), [(2, 2), (5, 3), (10, 4)])
def test_result_is_l_diverse(k: int, l: int) -> None:  # noqa: E741
    df = _patients()
    result = anonymise(df, QUASI, k, l=l, sensitive="diagnosis")
    assert k_anonymity(result.table, QUASI) >= k
    assert l_diversity_distinct(result.table, QUASI, "diagnosis") >= l
    assert result.partitions <= anonymise(df, QUASI, k).partitions


def test_too_small_a_table_is_suppressed_within_budget() -> None:
    df = _tiny()
    result = anonymise(df, ["age", "sex"], 7, max_suppression=1.0)
    assert result.suppressed == 6
    assert result.table.empty
    assert list(result.table.columns) == ["age", "sex"]
    assert result.partitions == 0
    assert result.utility.discernibility == 36
    assert result.utility.certainty_penalty == 1.0
    assert result.utility.kl_divergence["sex"] == pytest.approx(
        4 / 6 * math.log((4 / 6) / 0.5) + 2 / 6 * math.log((2 / 6) / 0.5)
    )


def test_suppression_beyond_budget_raises() -> None:
    with pytest.raises(ValueError, match="suppressing 6 of 6 records"):
        anonymise(_tiny(), ["age", "sex"], 7)
    with pytest.raises(ValueError, match="3-diversity needs suppressing 6 of 6"):
        anonymise(_tiny(), ["age"], 2, l=3, sensitive="sex", max_suppression=0.5)


def test_l_diversity_suppression_within_budget() -> None:
    result = anonymise(_tiny(), ["age"], 2, l=3, sensitive="sex", max_suppression=1.0)
    assert result.suppressed == 6
    assert result.table.empty


def test_already_k_anonymous_table_keeps_its_classes() -> None:
    df = pd.DataFrame(
        {
            "age": [30, 30, 30, 40, 40, 50, 50, 50, 50, 60, 60],
            "sex": ["F", "F", "F", "M", "M", "F", "F", "M", "M", "M", "M"],
        }
    )
    assert k_anonymity(df, ["age", "sex"]) == 2
    result = anonymise(df, ["age", "sex"], 2)
    assert result.partitions == 5
    assert result.table.equals(df.astype(str))
    assert equivalence_classes(result.table, ["age", "sex"]).equals(
        equivalence_classes(df, ["age", "sex"])
    )


def test_generalisations_contain_the_original_values() -> None:
    df = _patients(seed=11).sample(frac=1.0, random_state=3)
    df.index = df.index * 10 + 5
    result = anonymise(df, QUASI, 7)
    assert result.table.index.equals(df.index)
    for original, label in zip(df["age"], result.table["age"], strict=True):
        lo, _, hi = label.partition("-")
        assert int(lo) <= original <= int(hi or lo)
    for column in ["sex", "ward"]:
        for original, label in zip(df[column], result.table[column], strict=True):
            assert original in label.split("|")


def test_utility_on_a_hand_checked_example() -> None:
    # Age and sex both span their whole range, so age (first) is cut at the median 30|40.
    # {10, 10, 30} then has only one sex and no cut of age leaves 3 a side; nor has
    # {40, 50, 60}.
    result = anonymise(_tiny(), ["age", "sex"], 3)
    assert isinstance(result, Anonymised)
    assert result.partitions == 2
    assert result.table["age"].tolist() == ["10-30"] * 3 + ["40-60"] * 3
    assert result.table["sex"].tolist() == ["F"] * 3 + ["F|M"] * 3
    utility = result.utility
    assert isinstance(utility, Utility)
    assert utility.discernibility == 3**2 + 3**2
    # Every range is 20 wide out of 50.
    assert utility.certainty_penalty == pytest.approx(0.4)
    # Age 10-30 spreads 3 records over the values 10 and 30; 40-60 one each over 40, 50, 60.
    assert utility.kl_divergence["age"] == pytest.approx(
        2 / 6 * math.log((2 / 6) / (1.5 / 6)) + 1 / 6 * math.log((1 / 6) / (1.5 / 6))
    )
    # Sex: F 4/6 originally; rebuilt F = (3 + 1.5) / 6, M = 1.5 / 6.
    assert utility.kl_divergence["sex"] == pytest.approx(
        4 / 6 * math.log((4 / 6) / (4.5 / 6)) + 2 / 6 * math.log((2 / 6) / (1.5 / 6))
    )


def test_no_generalisation_costs_nothing() -> None:
    result = anonymise(_tiny(), ["age", "sex"], 1)
    assert result.utility == Utility(2**2 + 4, 0.0, {"age": 0.0, "sex": 0.0})


def test_empty_table() -> None:
    result = anonymise(_tiny().iloc[:0], ["age", "sex"], 3)
    assert result.suppressed == 0
    assert result.partitions == 0
    assert result.table.empty


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"k": 0}, "k must be at least 1"),
        ({"k": 2, "l": 2}, "sensitive column"),
        ({"k": 2, "max_suppression": 1.5}, "max_suppression"),
        ({"k": 2, "l": 2, "sensitive": "age"}, "cannot be a quasi-identifier"),
        ({"k": 2, "l": 2, "sensitive": "nope"}, "not in the table"),
    ],
)
def test_bad_arguments(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        anonymise(_tiny(), ["age", "sex"], **kwargs)  # type: ignore[arg-type]


def test_missing_quasi_identifier_values_are_refused() -> None:
    df = _tiny().astype({"age": float})
    df.loc[0, "age"] = np.nan
    with pytest.raises(ValueError, match="missing values"):
        anonymise(df, ["age", "sex"], 2)


@st.composite
def _frames(draw: st.DrawFn) -> tuple[pd.DataFrame, int]:
    n = draw(st.integers(1, 40))
    column = st.lists
    df = pd.DataFrame(
        {
            "count": draw(column(st.integers(-5, 5), min_size=n, max_size=n)),
            "weight": draw(column(st.sampled_from([0.5, 1.25, 2.0, 70.0]), min_size=n, max_size=n)),
            "site": draw(column(st.sampled_from(["a", "b", "c", "d"]), min_size=n, max_size=n)),
            "flag": draw(column(st.booleans(), min_size=n, max_size=n)),
        }
    )
    return df, draw(st.integers(1, n))


@settings(max_examples=150, deadline=None)
@given(_frames())
def test_random_frames_become_k_anonymous_without_suppression(
    case: tuple[pd.DataFrame, int],
) -> None:
    df, k = case
    quasi = list(df.columns)
    result = anonymise(df, quasi, k)
    assert result.suppressed == 0
    assert result.table.index.equals(df.index)
    assert k_anonymity(result.table, quasi) >= k
    assert result.partitions == len(result.table.groupby(quasi).size())
    assert len(df) <= result.utility.discernibility <= len(df) ** 2
    assert 0.0 <= result.utility.certainty_penalty <= 1.0
    assert all(value >= -1e-12 for value in result.utility.kl_divergence.values())
