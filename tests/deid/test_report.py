"""Risk and de-identification reports: figures checked against pandas, pages read as HTML."""

from __future__ import annotations

import json
import math
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

from medspace.deid.anonymise import anonymise
from medspace.deid.profiles import parse_profile
from medspace.deid.report import (
    ClassSize,
    DeidReport,
    describe_anonymisation,
    describe_profile,
    measure,
)

QUASI = ["age_band", "sex"]
PLANTED = "Zebediah-Quux-7731"
"""A value no report may contain: it sits in a quasi-identifier, the sensitive column and a
column neither touches."""


def _ward() -> pd.DataFrame:
    """Ten patients in four classes of sizes 1, 2, 3 and 4 over (age_band, sex)."""
    return pd.DataFrame({
        "age_band": ["30-39", "40-49", "40-49", "50-59", "50-59", "50-59",
                     "60-69", "60-69", "60-69", "60-69"],
        "sex": ["F", "M", "M", "F", "F", "F", "M", "M", "M", "M"],
        "diagnosis": ["I10", "E11", "E11", "I10", "C50", "E11", "I10", "I10", "J18", "C50"],
        "note": ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"],
    })


class _Text(HTMLParser):
    """The visible text of a page, and whether it holds a script or fetches anything."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.fetches: list[str] = []
        self.in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.in_style = tag == "style"
        if tag == "script":
            self.fetches.append("script")
        self.fetches += [f"{tag} {name}" for name, _ in attrs if name in {"src", "href"}]

    def handle_endtag(self, tag: str) -> None:
        self.in_style = False

    def handle_data(self, data: str) -> None:
        if not self.in_style:
            self.parts.append(data)

    @property
    def text(self) -> str:
        return " ".join(" ".join(self.parts).split())


def _read(html: str) -> _Text:
    page = _Text()
    page.feed(html)
    page.close()
    return page


def test_figures_equal_an_independent_groupby() -> None:
    df = _ward()
    report = measure(df, QUASI, "diagnosis")
    groups = df.groupby(QUASI)
    sizes = groups.size()

    assert report.records == 10
    assert report.k_anonymity == sizes.min() == 1
    assert report.equivalence_classes == len(sizes) == 4
    assert report.l_diversity_distinct == groups["diagnosis"].nunique().min() == 1
    entropy_l = min(
        math.exp(-sum(p * math.log(p) for p in shares))
        for shares in (g.value_counts(normalize=True) for _, g in groups["diagnosis"])
    )
    assert report.l_diversity_entropy == pytest.approx(entropy_l)
    assert report.sample_uniqueness == pytest.approx((sizes == 1).sum() / 10)
    assert report.records_at_risk == sizes[sizes < 5].sum() == 10
    classes_per_size = sizes.value_counts().sort_index()
    assert report.class_sizes == tuple(
        ClassSize(int(size), int(count)) for size, count in classes_per_size.items()
    )
    assert report.prosecutor.highest == 1.0
    assert report.prosecutor.average == pytest.approx(4 / 10)
    assert report.marketer == pytest.approx(4 / 10)
    assert report.journalist is None


def test_json_has_the_documented_keys_and_the_same_figures() -> None:
    report = measure(_ward(), QUASI, "diagnosis", threshold=0.3)
    figures = json.loads(report.to_json())
    assert set(figures) == {
        "records", "quasi_identifiers", "sensitive", "threshold", "k_anonymity",
        "equivalence_classes", "sample_uniqueness", "records_at_risk", "prosecutor",
        "journalist", "marketer", "l_diversity_distinct", "l_diversity_entropy", "t_closeness",
        "class_sizes",
    }
    assert figures["quasi_identifiers"] == QUASI
    assert figures["k_anonymity"] == 1
    assert figures["records_at_risk"] == 6  # classes of 1, 2 and 3 are above 0.3
    assert figures["prosecutor"]["records_at_risk"] == pytest.approx(0.6)
    assert figures["journalist"] is None
    assert figures["class_sizes"][-1] == {"size": 4, "classes": 1, "records": 4}


def test_without_a_sensitive_column_l_and_t_are_not_measured() -> None:
    report = measure(_ward(), QUASI)
    assert report.l_diversity_distinct is None
    assert report.l_diversity_entropy is None
    assert report.t_closeness is None
    assert "l-diversity" not in _read(report.to_html()).text


def test_a_population_adds_the_journalist_risk() -> None:
    sample = _ward()
    population = pd.concat([sample, sample], ignore_index=True)
    report = measure(sample, QUASI, population=population)
    assert report.journalist is not None
    assert report.journalist.highest == pytest.approx(1 / 2)  # the lone record is there twice
    # Each class of f sample records holds 2f population records: f/F = 1/2 per class.
    assert report.marketer == report.journalist.average == pytest.approx(4 * (1 / 2) / 10)
    assert "journalist risk" in _read(report.to_html()).text


@pytest.mark.parametrize(("threshold", "safe"), [(0.2, 5), (0.1, 10), (0.3, 4), (0.5, 2),
                                                 (1.0, 1)])
def test_the_safe_class_size_follows_the_threshold(threshold: float, safe: int) -> None:
    report = measure(_ward(), QUASI, threshold=threshold)
    assert report.safe_size == safe
    at_risk = sum(c.records for c in report.class_sizes if c.size < safe)
    assert report.records_at_risk == at_risk


def test_chart_bands_cover_every_record_and_split_at_the_threshold() -> None:
    df = pd.DataFrame({"g": [str(i) for i in range(12) for _ in range(i + 1)]})
    report = measure(df, ["g"], threshold=0.15)  # safe from 7 records up
    bands = report.bands()
    assert [b.label for b in bands] == ["1", "2", "3", "4", "5–6", "7–9", "10–12"]
    assert sum(b.records for b in bands) == len(df)
    assert [b.at_risk for b in bands] == [True] * 5 + [False] * 2
    assert bands[-1].classes == 3


def test_the_page_says_k_in_plain_words_and_loads_nothing() -> None:
    df = pd.DataFrame({"age_band": ["30-39"] * 5 + ["40-49"] * 6, "sex": ["F"] * 11})
    page = _read(measure(df, QUASI).to_html("ward.csv"))
    assert "Every record shares its age_band and sex with at least 4 other records (k = 5)" in (
        page.text)
    assert "ward.csv" in page.text
    assert page.fetches == []


def test_a_table_with_unique_records_is_flagged_with_their_count() -> None:
    page = _read(measure(_ward(), QUASI).to_html())
    assert "1 record is the only one with its age_band and sex" in page.text
    assert "(k = 1)" in page.text


def test_an_empty_table_says_there_is_nothing_to_measure() -> None:
    report = measure(_ward().iloc[:0], QUASI, "diagnosis")
    assert report.k_anonymity == 0
    assert report.bands() == ()
    assert "holds no records" in _read(report.to_html()).text


def test_measure_refuses_what_it_cannot_measure() -> None:
    with pytest.raises(ValueError, match="no column ward"):
        measure(_ward(), ["ward"])
    with pytest.raises(ValueError, match="cannot be a quasi-identifier"):
        measure(_ward(), QUASI, "sex")
    with pytest.raises(ValueError, match="threshold"):
        measure(_ward(), QUASI, threshold=0.0)


PROFILE = parse_profile("""
name: ward-study
reference: local rules
fields:
  name: {action: drop}
  id_number: {action: pseudonym}
  phone: {action: mask, keep_start: 3, keep_end: 2}
  address: {action: drop}
  mrn: {action: encrypt}
  insurance_number: {action: drop}
  email: {action: drop}
  url: {action: drop}
  ip: {action: drop}
  device_id: {action: drop}
  photo: {action: drop}
  age: {action: top_code, ceiling: 89, label: "90+"}
  birth_date: {action: generalise, to: year}
  sex: {action: keep}
  age_band: {action: keep}
  diagnosis: {action: keep}
""", "test")


def test_the_profile_description_names_each_columns_treatment_and_the_dropped() -> None:
    applied = describe_profile(PROFILE, ["患者", "phone", "born", "sex", "note"],
                               {"患者": "name", "born": "birth_date"})
    assert applied.dropped == ("患者", "note")
    assert [(c.column, c.field, c.action, c.detail) for c in applied.columns] == [
        ("phone", "phone", "mask", "keeps the first 3 and last 2"),
        ("born", "birth_date", "generalise", "to year"),
        ("sex", "sex", "keep", ""),
    ]
    assert applied.to_dict()["columns"][1] == {
        "column": "born", "field": "birth_date", "action": "generalise", "detail": "to year"}


def _deid_report(df: pd.DataFrame) -> DeidReport:
    result = anonymise(df, QUASI, 2, l=2, sensitive="diagnosis", max_suppression=0.5)
    return DeidReport(
        records_in=len(df), records_out=len(result.table),
        profile=describe_profile(PROFILE, list(df.columns)),
        before=measure(df, QUASI, "diagnosis"),
        after=measure(result.table, QUASI, "diagnosis"),
        anonymisation=describe_anonymisation(result, quasi=QUASI, k=2, records=len(df), l=2,
                                             sensitive="diagnosis", max_suppression=0.5),
    )


def test_the_deid_report_puts_before_after_and_the_anonymisation_together(
    tmp_path: Path,
) -> None:
    df = _ward()
    report = _deid_report(df)
    figures = json.loads(report.to_json())
    assert set(figures) == {"records_in", "records_out", "profile", "risk_before", "risk_after",
                            "anonymisation"}
    assert figures["risk_before"]["k_anonymity"] == 1
    assert figures["risk_after"]["k_anonymity"] >= 2
    assert figures["anonymisation"]["k"] == 2
    assert figures["anonymisation"]["suppressed"] == 0
    assert set(figures["anonymisation"]["utility"]["kl_divergence"]) == set(QUASI)
    assert figures["profile"]["dropped"] == ["note"]

    report.write_html(tmp_path / "deid.html", "ward.csv")
    page = _read((tmp_path / "deid.html").read_text(encoding="utf-8"))
    assert f"k = {figures['risk_after']['k_anonymity']}" in page.text
    assert "holds at least 2 records, with at least 2 different values of diagnosis" in page.text
    assert page.fetches == []


def test_no_report_contains_a_records_values(tmp_path: Path) -> None:
    df = _ward()
    df.loc[0, "age_band"] = PLANTED
    df.loc[3, "diagnosis"] = PLANTED
    df.loc[5, "note"] = PLANTED
    risk = measure(df, QUASI, "diagnosis")
    deid = _deid_report(df)
    pages: list[str] = [risk.to_json(), deid.to_json(), risk.to_html(), deid.to_html()]
    for text in pages:
        assert PLANTED not in text
        for value in ["I10", "E11", "C50", "J18", "30-39", "60-69"]:
            assert value not in text


def test_reports_are_frozen() -> None:
    report = measure(_ward(), QUASI)
    with pytest.raises(AttributeError):
        report.records = 0  # type: ignore[misc]
