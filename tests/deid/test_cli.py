"""`medspace deid risk|apply` on real CSV files: figures, k-anonymous output, clean refusals."""

from __future__ import annotations

import json
import os
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from medspace.cli import app
from medspace.keyfiles import write_private

PLANTED = "Ottoline-Vexworth"
"""A patient's name no output but the CSV may hold (and the CSV only if a profile keeps it)."""

PROFILE = """
name: ward-study
fields:
  name: {action: drop}
  id_number: {action: pseudonym}
  phone: {action: drop}
  address: {action: drop}
  mrn: {action: drop}
  insurance_number: {action: drop}
  email: {action: drop}
  url: {action: drop}
  ip: {action: drop}
  device_id: {action: drop}
  photo: {action: drop}
  birth_date: {action: generalise, to: year}
  sex: {action: keep}
  zip: {action: generalise, to: zip3}
  diagnosis: {action: keep}
"""


def _patients(n: int = 80, seed: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    names = [f"patient {i}" for i in range(n)]
    names[7] = PLANTED
    return pd.DataFrame({
        "姓名": names,
        "id_number": [f"11010519{i:08d}X" for i in range(n)],
        "birth_date": [f"{y}-{m:02d}-{d:02d}" for y, m, d in
                       zip(rng.integers(1930, 2005, n), rng.integers(1, 13, n),
                           rng.integers(1, 29, n), strict=True)],
        "sex": rng.choice(["F", "M"], n),
        "zip": rng.choice(["02138", "10001", "94110", "60614"], n),
        "diagnosis": rng.choice(["I10", "E11", "C50", "J18"], n),
    })


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    """An extract, a node key and a profile that keeps the diagnosis, on disk."""
    extract, key = tmp_path / "extract.csv", tmp_path / "pseudonym.key"
    profile = tmp_path / "p.yaml"
    _patients().to_csv(extract, index=False)
    write_private(key, os.urandom(32))
    profile.write_text(PROFILE, encoding="utf-8")
    return {"extract": extract, "key": key, "profile": profile, "dir": tmp_path}


def _run(*args: str | Path) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["deid", *map(str, args)])
    return result.exit_code, " ".join(result.output.split())


def _apply(files: dict[str, Path], *args: str | Path) -> tuple[int, str]:
    return _run("apply", files["extract"], "--profile", files["profile"], "--key", files["key"],
                "--fields", "姓名=name", "--out", files["dir"] / "out.csv", *args)


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def _page_text(path: Path) -> str:
    page = _Text()
    page.feed(path.read_text(encoding="utf-8"))
    page.close()
    return " ".join(" ".join(page.parts).split())


def _read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def test_risk_json_equals_a_groupby_and_the_page_names_k(tmp_path: Path) -> None:
    table = pd.DataFrame({
        "age": ["30", "30", "30", "41", "41", "41", "41", "52"],
        "sex": ["F", "F", "F", "M", "M", "M", "M", "F"],
        "diagnosis": ["I10", "E11", "I10", "C50", "C50", "C50", "J18", "I10"],
    })
    source, figures, page = tmp_path / "t.csv", tmp_path / "r.json", tmp_path / "r.html"
    table.to_csv(source, index=False)
    code, output = _run("risk", source, "--quasi", "age,sex", "--sensitive", "diagnosis",
                        "--json", figures, "--html", page)
    assert code == 0, output
    assert "k_anonymity" in output

    measured = json.loads(figures.read_text(encoding="utf-8"))
    groups = table.groupby(["age", "sex"])
    assert measured["records"] == len(table)
    assert measured["k_anonymity"] == groups.size().min() == 1
    assert measured["equivalence_classes"] == groups.ngroups == 3
    assert measured["l_diversity_distinct"] == groups["diagnosis"].nunique().min() == 1
    assert measured["sample_uniqueness"] == pytest.approx((groups.size() == 1).sum() / 8)
    assert measured["class_sizes"] == [{"size": s, "classes": 1, "records": s} for s in (1, 3, 4)]
    text = _page_text(page)
    assert "(k = 1)" in text and "k-anonymity" in text


def test_risk_with_a_population_measures_the_journalist_risk(tmp_path: Path) -> None:
    sample = pd.DataFrame({"age": ["30", "30", "41"], "sex": ["F", "F", "M"]})
    source, population, figures = tmp_path / "s.csv", tmp_path / "p.csv", tmp_path / "r.json"
    sample.to_csv(source, index=False)
    pd.concat([sample] * 4).to_csv(population, index=False)
    code, output = _run("risk", source, "--quasi", "age,sex", "--population", population,
                        "--json", figures)
    assert code == 0, output
    assert json.loads(figures.read_text())["journalist"]["highest"] == pytest.approx(1 / 4)


def test_apply_with_k_writes_a_k_anonymous_csv_and_both_reports(files: dict[str, Path]) -> None:
    figures, page = files["dir"] / "deid.json", files["dir"] / "deid.html"
    code, output = _apply(files, "--k", "6", "--json", figures, "--html", page)
    assert code == 0, output

    written = _read(files["dir"] / "out.csv")
    quasi = ["birth_date", "sex", "zip"]
    assert list(written.columns) == ["id_number", *quasi, "diagnosis"]
    assert len(written) == 80
    assert written.groupby(quasi).size().min() >= 6
    assert "80 records written" in output and "0 records suppressed" in output
    assert "risk after: k = " in output and "(asked for 6)" in output

    measured = json.loads(figures.read_text(encoding="utf-8"))
    assert measured["profile"]["dropped"] == ["姓名"]
    assert measured["anonymisation"]["k"] == 6
    assert measured["anonymisation"]["quasi_identifiers"] == quasi
    assert measured["risk_before"]["k_anonymity"] == 1
    assert measured["risk_after"]["k_anonymity"] == written.groupby(quasi).size().min()
    assert f"(k = {measured['risk_after']['k_anonymity']})" in _page_text(page)


def test_apply_with_l_keeps_that_many_diagnoses_in_every_group(files: dict[str, Path]) -> None:
    code, output = _apply(files, "--k", "4", "--l", "3", "--sensitive", "diagnosis",
                          "--quasi", "birth_date,sex")
    assert code == 0, output
    written = _read(files["dir"] / "out.csv")
    groups = written.groupby(["birth_date", "sex"])
    assert groups.size().min() >= 4
    assert groups["diagnosis"].nunique().min() >= 3


def test_apply_without_k_measures_the_profiled_table(files: dict[str, Path]) -> None:
    figures = files["dir"] / "deid.json"
    code, output = _apply(files, "--json", figures)
    assert code == 0, output
    measured = json.loads(figures.read_text(encoding="utf-8"))
    assert measured["anonymisation"] is None
    assert measured["risk_after"]["quasi_identifiers"] == ["birth_date", "sex", "zip"]
    written = _read(files["dir"] / "out.csv")
    assert measured["risk_after"]["k_anonymity"] == written.groupby(
        ["birth_date", "sex", "zip"]).size().min()


def test_no_report_holds_a_records_values(files: dict[str, Path]) -> None:
    reports = [files["dir"] / name for name in ("a.json", "a.html", "r.json", "r.html")]
    code, output = _apply(files, "--k", "5", "--json", reports[0], "--html", reports[1])
    assert code == 0, output
    code, output = _run("risk", files["extract"], "--quasi", "姓名,sex", "--sensitive",
                        "diagnosis", "--json", reports[2], "--html", reports[3])
    assert code == 0, output
    original = _patients()
    values = [PLANTED, original.loc[7, "id_number"], original.loc[7, "birth_date"], "I10",
              "94110"]
    for report in reports:
        text = report.read_text(encoding="utf-8")
        assert not [v for v in values if v in text], report.name
    assert PLANTED not in (files["dir"] / "out.csv").read_text(encoding="utf-8")


def test_an_unreachable_k_says_what_would_be_suppressed_and_writes_nothing(
    files: dict[str, Path],
) -> None:
    report = files["dir"] / "deid.json"
    code, output = _apply(files, "--k", "100", "--json", report)
    assert code == 2
    assert "would suppress 80 of 80 records" in output
    assert "--max-suppression 0.05 allows (4)" in output
    assert "--k of at most 80" in output
    assert not (files["dir"] / "out.csv").exists() and not report.exists()


def test_an_unreachable_l_names_the_largest_l_there_is(files: dict[str, Path]) -> None:
    code, output = _apply(files, "--k", "2", "--l", "5", "--sensitive", "diagnosis")
    assert code == 2
    assert "--l of at most 4, the values diagnosis takes" in output
    assert not (files["dir"] / "out.csv").exists()


@pytest.mark.parametrize(("args", "message"), [
    (["--k", "5", "--quasi", "ward"], "--quasi: no column ward"),
    (["--k", "5", "--quasi", "姓名"], "--quasi: the profile drops 姓名"),
    (["--k", "0"], "Invalid value for '--k'"),
    (["--l", "2", "--sensitive", "diagnosis"], "--l needs --k and --sensitive"),
    (["--k", "2", "--l", "2"], "--l needs --k and --sensitive"),
    (["--k", "2", "--quasi", "sex,diagnosis", "--sensitive", "diagnosis"],
     "diagnosis is also a quasi-identifier"),
    (["--max-suppression", "1.5"], "Invalid value for '--max-suppression'"),
    (["--threshold", "0"], "--threshold: a chance between 0 (excluded) and 1"),
    (["--fields", "病历号=mrn"], "--fields: no column 病历号"),
    (["--fields", "姓名"], "'姓名' is not column=field"),
])
def test_bad_options_are_refused_before_anything_is_written(
    files: dict[str, Path], args: list[str], message: str,
) -> None:
    code, output = _apply(files, *args)
    assert code == 2
    assert message in output
    assert not (files["dir"] / "out.csv").exists()


def test_k_without_any_quasi_identifier_asks_for_quasi(files: dict[str, Path]) -> None:
    only_diagnosis = files["dir"] / "diagnoses.csv"
    _patients()[["diagnosis"]].to_csv(only_diagnosis, index=False)
    code, output = _run("apply", only_diagnosis, "--profile", files["profile"], "--key",
                        files["key"], "--out", files["dir"] / "out.csv", "--k", "3")
    assert code == 2
    assert "name them with --quasi" in output
    assert not (files["dir"] / "out.csv").exists()


def test_an_unreadable_csv_is_refused(files: dict[str, Path]) -> None:
    garbage = files["dir"] / "garbage.csv"
    garbage.write_bytes(b"\xff\xfe\x00\x00binary\x00")
    for source in (garbage, files["dir"] / "missing.csv"):
        code, output = _run("apply", source, "--profile", files["profile"], "--key",
                            files["key"], "--out", files["dir"] / "out.csv")
        assert code == 2
        assert "cannot read it as CSV" in output
    code, output = _run("risk", garbage, "--quasi", "sex")
    assert code == 2 and "cannot read it as CSV" in output
    assert not (files["dir"] / "out.csv").exists()


def test_a_report_that_cannot_be_written_leaves_no_csv_either(files: dict[str, Path]) -> None:
    code, output = _apply(files, "--k", "5", "--html", files["dir"] / "no-such-dir" / "r.html")
    assert code == 2
    assert "cannot write it" in output
    assert sorted(p.name for p in files["dir"].iterdir()) == [
        "extract.csv", "p.yaml", "pseudonym.key"]


def test_risk_names_a_missing_sensitive_column(files: dict[str, Path]) -> None:
    code, output = _run("risk", files["extract"], "--quasi", "sex", "--sensitive", "outcome")
    assert code == 2
    assert "--sensitive: no column outcome" in output
