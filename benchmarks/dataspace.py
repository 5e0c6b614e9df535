"""The data space end to end: a study's round trip, and a federated count against one database.

What is asked of it, and the targets set for it:

* the task round-trip overhead on loopback (hub dispatch → 5 nodes → combined result) for a
  trivial task, p50 and p95 — p50 ≤ 50 ms (a Flower round measured ~12 s on this kind of
  machine);
* a count-by-group study over 5 hospitals × 1,000,000 patients against the same query on one
  DuckDB holding all 5,000,000 rows, as a ratio — ≤ 2×.

A whole data space runs on loopback as it would be deployed, every party its own process
running its own command: the operator's hub (``medspace hub``), the regulator's witness
(``medspace witness``) and five hospitals' nodes (``medspace node run``), speaking mutual TLS 1.3;
the nodes call out to the hub (long polls, signed messages, their own witnesses, journals and
clinical stores), and a researcher submits signed count studies over HTTPS.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.progress import Progress, TaskID

from benchmarks import Budget, Figure, Target, console, number, percentile, progress, scratch_dir
from benchmarks import table as figure_table
from benchmarks.store import Loaded, fill
from medspace.analytics.counting import DisclosureRules, count_task
from medspace.demo.local import Filler, LocalDataSpace, build, countable_rows
from medspace.demo.services import services
from medspace.store.consent import DEFAULTS, ConsentRule
from medspace.store.engine import ClinicalStore
from medspace.store.load import load
from medspace.wire.messages import StudyRequest

HOSPITALS = 5
AS_OF = dt.date(2026, 1, 1)
START_SECONDS = 30.0

TINY_PERSONS = 60
ROUND_TRIPS = 30
ROUND_TRIP_SECONDS = 60.0
ROUND_TRIP_TARGET = Target(50, "ms", higher_is_better=False)
FLOWER_ROUND_MS = 12_000.0

BIG_PERSONS = 1_000_000
BIG_BATCH = 500_000
BIG_REPEATS = 5
BIG_SECONDS = 60.0
BIG_AS_OF = dt.date(2024, 6, 15)
BIG_SEED = 20261123
RATIO_TARGET = Target(2, "×", higher_is_better=False)



def trivial_query(study: int) -> dict[str, Any]:
    """C34 patients by sex, with an age bound no earlier study used: each study a new query."""
    return {"cohort": {"as_of": AS_OF.isoformat(), "condition_prefixes": ["C34"],
                       "age_max": 100 + study},
            "group_by": ["sex"]}


BIG_QUERY: dict[str, Any] = {
    "cohort": {"as_of": BIG_AS_OF.isoformat(), "condition_prefixes": ["C34"],
               "age_min": 40, "age_max": 89},
    "group_by": ["sex", "age_band"],
    "age_band_width": 10,
}

"""Fills hospital number ``i``'s clinical store while the data space is set up."""


# ---------------------------------------------------------------------------------------------
# A data space in this process


@dataclass
class RunningSpace:
    """A data space whose parties run as processes, and how to read their CPU time."""

    space: LocalDataSpace
    pids: dict[str, int]

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds each party's process has used so far (Linux ``/proc``)."""
        ticks = os.sysconf("SC_CLK_TCK")
        used = {}
        for name, pid in self.pids.items():
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            used[name] = (int(fields[11]) + int(fields[12])) / ticks
        return used


@contextmanager
def data_space(root: Path, fill_store: Filler, label: str) -> Iterator[RunningSpace]:
    """A data space set up as its operators would, every party its own process; stopped after."""
    space = build(root, HOSPITALS, fill_store, serve=False)
    try:
        with services(space.as_processes(), space.researcher()) as pids:
            space.wait_for_nodes(seconds=START_SECONDS)
            console.print(f"{label}: hub, regulator's witness and {HOSPITALS} nodes running, "
                          "each its own process")
            yield RunningSpace(space, pids)
    finally:
        space.stop()


# ---------------------------------------------------------------------------------------------
# 1. Round trip of a trivial study


@dataclass
class Rounds:
    """The studies of one series: hub-side and researcher-side times, CPU, what went wrong."""

    hub_ms: list[float] = field(default_factory=list)
    wall_ms: list[float] = field(default_factory=list)
    ids: set[str] = field(default_factory=set)
    failed: int = 0
    first: dict[str, Any] | None = None
    last: dict[str, Any] | None = None
    cpu_seconds: dict[str, float] = field(default_factory=dict)

    def cpu_ms_per_study(self, party: str) -> float:
        """Milliseconds of CPU ``party``'s process spent per study of the series."""
        return self.cpu_seconds[party] * 1000 / max(1, len(self.hub_ms) + self.failed)


def run_studies(running: RunningSpace, query: Callable[[int], dict[str, Any]], budget: Budget,
                bar: Progress, task: TaskID, timeout: float) -> Rounds:
    """Submit count studies one after another within ``budget``; time each to its result.

    Study ``i`` asks ``query(i)``. ``hub_ms`` is the hub's own ``finished_ms - created_ms``;
    ``wall_ms`` is the researcher's view from the call that submits to the long poll that
    returns the result. The CPU time each party's process spent over the series is kept.
    """
    rounds = Rounds()
    done = 0
    before = running.cpu_seconds()
    while not budget.expired(done):
        request = StudyRequest(title=f"bench {done}", kind="count", query=query(done),
                               deadline_seconds=timeout)
        started = time.perf_counter()
        study = running.space.wait(running.space.submit(request), timeout + 5)
        wall = time.perf_counter() - started
        done += 1
        bar.update(task, completed=done)
        if study["status"] != "done" or study["result"]["missing"]:
            rounds.failed += 1
            rounds.last = study
            continue
        rounds.hub_ms.append(float(study["finished_ms"] - study["created_ms"]))
        rounds.wall_ms.append(wall * 1000)
        rounds.ids.add(study["id"])
        rounds.first = rounds.first or study
        rounds.last = study
    after = running.cpu_seconds()
    rounds.cpu_seconds = {name: after[name] - before[name] for name in after}
    return rounds


PHASES = (
    ("submitted → every hospital's approval logged", "study.approved"),
    ("→ every task.dispatched logged", "task.dispatched"),
    ("→ every hospital's release logged (witnessing, checks, count, journal)",
     "result.released@hospital"),
    ("→ the hub's result.released logged", "result.released@hub"),
)


FIRST_DISPATCH = "task.dispatched@first"
DISPATCH_TO_RESULT = "hub dispatch → combined result"


def phases(ledger: Path, studies: set[str]) -> dict[str, list[float]]:
    """Milliseconds of each step of each study in ``studies``, from the hub's audit log, and of
    ``DISPATCH_TO_RESULT``: from the first ``task.dispatched`` to the hub's ``result.released``.

    Every audit event carries its time (ms); studies ran one after another, so the events
    between a study's ``study.submitted`` and the next one's belong to it. A step ends with the
    last of its events (the slowest hospital).
    """
    with sqlite3.connect(f"file:{ledger}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT data FROM ledger_entries ORDER BY idx").fetchall()
    conn.close()
    steps: dict[str, list[float]] = {name: [] for name, _ in PHASES}
    current: dict[str, float] | None = None

    steps[DISPATCH_TO_RESULT] = []

    def close(times: dict[str, float] | None) -> None:
        if times is None or not all(action in times for _, action in PHASES):
            return
        previous = times["study.submitted"]
        for name, action in PHASES:
            steps[name].append(times[action] - previous)
            previous = times[action]
        steps[DISPATCH_TO_RESULT].append(times["result.released@hub"] - times[FIRST_DISPATCH])

    for (data,) in rows:
        event = json.loads(data)
        when = dt.datetime.strptime(event["time"], "%Y-%m-%dT%H:%M:%S.%fZ").timestamp() * 1000
        action = event["action"]
        if action == "study.submitted":
            close(current)
            current = ({"study.submitted": when}
                       if event["subject"].removeprefix("study:") in studies else None)
            continue
        if current is None:
            continue
        if action == "result.released":
            action += "@hub" if event["role"] == "hub" else "@hospital"
        if action == "task.dispatched":
            current[FIRST_DISPATCH] = min(current.get(FIRST_DISPATCH, when), when)
        current[action] = max(current.get(action, when), when)
    close(current)
    return steps


def round_trip(directory: Path) -> tuple[list[Figure], str]:
    """Trivial count studies over 5 tiny hospitals; figures and the sentence that reads them."""
    def tiny(index: int, store: ClinicalStore) -> None:
        load(store, countable_rows(index, TINY_PERSONS))

    with data_space(directory, tiny, "round trip") as running, progress() as bar:
        warm = bar.add_task("round trip: warm-up study", total=1)
        run_studies(running, lambda _: trivial_query(ROUND_TRIPS), Budget(1, 30), bar, warm, 30)
        task = bar.add_task(f"round trip: {ROUND_TRIPS} trivial count studies",
                            total=ROUND_TRIPS)
        rounds = run_studies(running, trivial_query, Budget(ROUND_TRIPS, ROUND_TRIP_SECONDS),
                             bar, task, 30)
        hospitals = running.space.hospitals
    steps = phases(directory / "hub" / "ledger.db", rounds.ids)
    if not rounds.hub_ms:
        raise RuntimeError(f"no study finished; the last one: {rounds.last}")
    dispatch = steps.pop(DISPATCH_TO_RESULT)
    p50 = percentile(dispatch, 50)
    counted = f"{len(dispatch)} studies" + (
        f", {rounds.failed} failed or incomplete (excluded)" if rounds.failed else "")
    node_cpu = statistics.mean(rounds.cpu_ms_per_study(name) for name in hospitals)
    figures = [
        Figure(f"{DISPATCH_TO_RESULT}, p50", p50, "ms", target=ROUND_TRIP_TARGET,
               note=f"{counted}; from the audit events' times: the first task.dispatched to "
                    "the hub's result.released"),
        Figure(f"{DISPATCH_TO_RESULT}, p95", percentile(dispatch, 95), "ms"),
        Figure("whole study (created → combined result), p50", percentile(rounds.hub_ms, 50),
               "ms", note=f"p95 {number(percentile(rounds.hub_ms, 95))} ms, max "
                          f"{number(max(rounds.hub_ms))} ms; the hub's own times, approvals "
                          "included"),
        Figure("researcher's view (submit call → result seen), p50",
               percentile(rounds.wall_ms, 50), "ms",
               note=f"p95 {number(percentile(rounds.wall_ms, 95))} ms; includes the submit's "
                    "own log append and the final result.released append"),
        Figure("Flower round (~12 s on this kind of machine) / our p50", FLOWER_ROUND_MS / p50, "×",
               note="how many of our rounds fit in one Flower round"),
        Figure("CPU per study: the hub's process", rounds.cpu_ms_per_study("the hub"), "ms"),
        Figure("CPU per study: each node's process (mean of 5)", node_cpu, "ms"),
        Figure("CPU per study: the regulator's witness",
               rounds.cpu_ms_per_study("the regulator's witness"), "ms"),
        *(Figure(f"step, p50: {name}", percentile(samples, 50), "ms",
                 note=f"p95 {number(percentile(samples, 95))} ms; from the audit events' "
                      "times (ms), over the same studies")
          for name, samples in steps.items()),
    ]
    slowest = max(steps, key=lambda name: percentile(steps[name], 50))
    busiest = rounds.cpu_ms_per_study("the hub")
    reading = (f"Reading it: from dispatch to the combined result takes {number(p50)} ms at "
               f"p50, {p50 / 50:.2f}× the 50 ms target; one ~12 s Flower round would hold "
               f"{FLOWER_ROUND_MS / p50:,.0f} of them. The longest step ends with "
               f"“{slowest.removeprefix('→ ')}” ({number(percentile(steps[slowest], 50))} ms "
               f"at p50). The hub's process spends {number(busiest)} ms of CPU per study, each "
               f"node's {number(node_cpu)} ms: on 2 cores shared by seven processes, CPU, "
               "not waiting, sets the pace.")
    return figures, reading


# ---------------------------------------------------------------------------------------------
# 2. Federated count over 5 × 1,000,000 against one DuckDB of 5,000,000


def _cells(payload: dict[str, Any]) -> dict[tuple[str, ...], int | None]:
    return {tuple(cell["key"]): cell["count"] for cell in payload}


def federated_against_single(directory: Path) -> tuple[list[Figure], str]:
    """The big comparison; figures and the sentence that reads them."""
    single = ClinicalStore.open_duckdb(directory / "single.duckdb")
    single.create_schema()
    rng = np.random.default_rng(BIG_SEED)
    loads: list[tuple[Loaded, Loaded]] = []
    try:
        with progress() as bar:
            task = bar.add_task(f"load {HOSPITALS} × {BIG_PERSONS:,} persons (and all into one "
                                "store)", total=BIG_PERSONS * HOSPITALS)

            def big(index: int, store: ClinicalStore) -> None:
                bar.update(task, description=f"load hospital {index + 1} of {HOSPITALS}, and "
                                             "the same rows into the single store")
                sub = bar.add_task(f"  hospital {index + 1}", total=BIG_PERSONS)
                hospital, whole = fill([store, single], BIG_PERSONS, rng, bar, sub,
                                       batch=BIG_BATCH)
                bar.update(task, advance=BIG_PERSONS)
                loads.append((hospital, whole))

            with data_space(directory / "space", big, "federated") as running:
                warm = bar.add_task("federated: warm-up study", total=1)
                first = run_studies(running, lambda _: BIG_QUERY, Budget(1, 60), bar, warm, 120)
                fed_task = bar.add_task(f"federated count study, up to {BIG_REPEATS} times",
                                        total=BIG_REPEATS)
                federated = run_studies(running, lambda _: BIG_QUERY,
                                        Budget(BIG_REPEATS, BIG_SECONDS), bar, fed_task, 120)
            one_task = bar.add_task(f"single store: count_task, up to {BIG_REPEATS} times",
                                    total=BIG_REPEATS + 1)
            alone_ms, answer = _single_runs(single, bar, one_task)
    finally:
        single.close()
    if not federated.wall_ms:
        raise RuntimeError(f"no federated study finished; the last one: {federated.last}")
    fed = statistics.median(federated.wall_ms)
    hub = statistics.median(federated.hub_ms)
    alone = statistics.median(alone_ms)
    pooled = federated.last["result"]["result"]["pooled"] if federated.last else []
    suppressed = {tuple(cell["key"]) for cell in pooled if cell["suppressed_at"]}
    pooled_cells = {k: v for k, v in _cells(pooled).items() if k not in suppressed}
    single_cells = {k: v for k, v in _cells(answer["cells"]).items() if k not in suppressed}
    agree = ("the pooled cells equal the single store's" if pooled_cells == single_cells
             else "**the pooled cells differ from the single store's**")
    if suppressed:
        cells = "cell" if len(suppressed) == 1 else "cells"
        agree += f" (leaving out {len(suppressed)} {cells} suppressed at some hospital)"
    hospital_rate = sum(h.persons for h, _ in loads) / sum(h.load_seconds for h, _ in loads)
    whole_seconds = sum(w.load_seconds for _, w in loads)
    warm_note = ("" if first.wall_ms == [] else
                 f"; the warm-up study before them took {number(first.wall_ms[0])} ms")
    figures = [
        Figure(f"federated count study, {HOSPITALS} × {BIG_PERSONS:,} (submit → result seen)",
               fed, "ms", note=f"median of {len(federated.wall_ms)}; min "
                               f"{number(min(federated.wall_ms))}, max "
                               f"{number(max(federated.wall_ms))} ms{warm_note}"),
        Figure("federated, the hub's created → finished", hub, "ms",
               note=f"median of {len(federated.hub_ms)}"),
        Figure(f"one DuckDB of {HOSPITALS * BIG_PERSONS:,}: count_task", alone, "ms",
               note=f"median of {len(alone_ms)} after one warm-up; min "
                    f"{number(min(alone_ms))}, max {number(max(alone_ms))} ms"),
        Figure("federated / single", fed / alone, "×", target=RATIO_TARGET,
               note=f"{agree}; {len(single_cells)} cells"),
        Figure(f"load: a hospital's store ({BIG_PERSONS:,} persons, batches of {BIG_BATCH:,})",
               hospital_rate,
               "persons/s", note=f"{HOSPITALS} stores, {sum(h.rows for h, _ in loads):,} rows"),
        Figure(f"load: the single store ({HOSPITALS * BIG_PERSONS:,} persons)",
               HOSPITALS * BIG_PERSONS / whole_seconds, "persons/s",
               note=f"{whole_seconds:.1f} s; slows as its primary-key index grows"),
    ]
    reading = (f"Reading it: the federated study took {number(fed)} ms against "
               f"{number(alone)} ms for the same work on one database, {fed / alone:.2f}× "
               f"(target ≤ 2×); {agree}.")
    return figures, reading


def _single_runs(store: ClinicalStore, bar: Progress, task: TaskID
                 ) -> tuple[list[float], dict[str, Any]]:
    """``count_task`` on the single store, with the consent filter a node applies: one warm-up,
    then up to BIG_REPEATS timed runs."""
    rules = DisclosureRules()
    consent = ConsentRule("research", dt.datetime.now(dt.UTC).date(), DEFAULTS["research"])
    answer = count_task(store, BIG_QUERY, rules, consent)
    bar.update(task, advance=1)
    samples: list[float] = []
    budget = Budget(BIG_REPEATS, BIG_SECONDS)
    while not budget.expired(len(samples)):
        started = time.perf_counter()
        answer = count_task(store, BIG_QUERY, rules, consent)
        samples.append((time.perf_counter() - started) * 1000)
        bar.update(task, advance=1)
    return samples, answer


# ---------------------------------------------------------------------------------------------
# The section


def section() -> str:
    """The data space's section of docs/benchmarks.md."""
    with scratch_dir() as directory:
        trip, trip_reading = round_trip(directory / "round-trip")
    with scratch_dir() as directory:
        big, big_reading = federated_against_single(directory)
    overhead, federated, alone = trip[3].value, big[0].value, big[2].value
    big_reading += (f" A trivial study seen by the researcher (p50 {number(overhead)} ms, "
                    f"above) is {overhead / federated:.0%} of the federated time; the rest, about "
                    f"{number(federated - overhead)} ms, is what the five counts on "
                    f"{BIG_PERSONS:,} persons each add, against {number(alone)} ms for the "
                    "single store.")
    return "\n".join([
        "## Data space",
        "",
        "A whole data space runs on loopback as it is deployed, every party its own process "
        "running its own command: the operator's hub (`medspace hub`), the regulator's witness "
        "(`medspace witness`) and five hospitals' nodes (`medspace node run`, each with its own "
        "witness, journal, task records and DuckDB clinical store), speaking mutual TLS 1.3; "
        "the nodes call out to the hub with signed long polls, and a researcher submits signed "
        "count studies over HTTPS and waits for each result with a long poll. All seven "
        "processes share the machine's 2 cores, where a deployment would give each party its "
        "own machine. Targets are the project's: round trip p50 ≤ 50 ms (a Flower round "
        "measured ~12 s on this kind of machine); federated count over 5 × 1,000,000 patients "
        "≤ 2× the same query on one DuckDB of 5,000,000.",
        "",
        "### Round trip of a trivial study",
        "",
        f"Five hospitals of {TINY_PERSONS} persons each (every third with lung cancer, C34). "
        f"After one warm-up study, up to {ROUND_TRIPS} count studies (C34 by sex; at most "
        f"{ROUND_TRIP_SECONDS:.0f} s) are submitted one after another, each once the previous "
        "one has its result, and each with an age bound no study before it used, so every node "
        "compiles every query afresh. The round trip — hub dispatch → 5 nodes → combined "
        "result — runs from the study's first logged `task.dispatched` to the hub's logged "
        "`result.released`, and holds, for each hospital, a **witnessed checkpoint covering "
        "its task's dispatch — cosigned by a quorum of the regulator and 4 of the 5 hospitals' "
        "witnesses — before the task is handed out**, the node's checks (signature, freshness, "
        "replay, approval, the receipt against the quorum, consistency with its own witness), "
        "the count with disclosure control, the release recorded in the node's journal and, "
        "with the result, in the hub's log, and the combined result logged. The whole study "
        "adds the hospitals' auto-approvals, each logged. *CPU per study* is each process's "
        "user + system time over the series, divided by the number of studies.",
        "",
        figure_table(trip),
        trip_reading,
        "",
        "### Federated count against one database",
        "",
        f"Five hospitals of {BIG_PERSONS:,} synthetic persons each (the clinical store "
        "section's generator: one to five ICD-10 conditions per person, C34 about 4% of "
        f"diagnoses), loaded through `load` in batches of {BIG_BATCH:,}; every batch also goes "
        f"into one more DuckDB store, which ends with all {HOSPITALS * BIG_PERSONS:,} persons. "
        "The study is a count: C34 patients aged 40–89 on "
        f"{BIG_AS_OF.isoformat()}, grouped by sex and 10-year age band. *Federated* is the real "
        "study through the hub and the five nodes, timed by the researcher from the submit "
        "call to the long poll that returns the result (one warm-up study, then up to "
        f"{BIG_REPEATS}, at most {BIG_SECONDS:.0f} s); each node runs `count_task` (the size "
        "of everyone, `count_by`, small-cell suppression) on its own store, the five processes "
        "sharing the 2 cores. *Single* is the same `count_task` on the one 5,000,000-person store "
        "(one warm-up, then up to the same count). The pooled cells are compared with the "
        "single store's.",
        "",
        figure_table(big),
        big_reading,
        "",
    ])
