"""Usage-policy evaluation: the time a node spends deciding whether a task may run.

A node evaluates the dataset's usage policy before every task, so the decision sits on the
path of every study and every emergency look-up; its target is under 1 ms. The policy measured
here is a realistic offer — three permissions (research aggregates under eight constraints,
training under five, emergency look-ups under four, with duties) and three prohibitions — and
the requests cycle through a permit of each kind and denials by a prohibition, by an exhausted
count and by a purpose outside the policy, so the figure covers the paths a node takes. Each
evaluation reads nothing cached: it checks the whole policy's terms and right operands again.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone

from benchmarks import Budget, Figure, Target, best_of, console, number, percentile, progress
from benchmarks import table as figure_table
from medspace.policy.evaluate import Request, evaluate, problems
from medspace.policy.odrl import Policy, parse_jsonld, parse_yaml, to_jsonld

EVALUATIONS = 100_000
SECONDS = 60.0
TARGET = Target(1000.0, "µs", higher_is_better=False)

POLICY = """\
uid: https://hospital-b.example.org/policy/cardiology-offer
type: Offer
title: Cardiology data for research, model training and emergencies
profile: https://medspace.example.org/ns/odrl
assigner: hospital-b
target: dataset:hospital-b:cardiology
permission:
  - action: aggregate
    constraint:
      purpose: {isAnyOf: [research, public-health]}
      recipientRole: {isAnyOf: [researcher, regulator]}
      spatial: {isPartOf: CN}
      dateTime: {gteq: "2026-01-01T00:00:00+08:00", lt: "2028-01-01T00:00:00+08:00"}
      elapsedTime: {lteq: P365D}
      count: {lteq: 500}
      privacyBudget: {lteq: 3.0}
  - action: train
    constraint:
      purpose: {isA: research}
      recipientRole: {eq: researcher}
      recipient: {isNoneOf: [insurer-x, broker-y]}
      dateTime: {lt: "2028-01-01T00:00:00+08:00"}
      count: {lteq: 20}
    duty:
      - action: inform
  - action: lookup
    constraint:
      purpose: {isA: emergency}
      recipientRole: {eq: clinician}
      recipient: {isAnyOf: [hospital-a, hospital-c, hospital-d, hospital-e]}
      spatial: {isPartOf: CN}
    duty:
      - action: inform
      - action: delete
        constraint:
          elapsedTime: {lteq: P30D}
prohibition:
  - action: [distribute, reproduce]
  - action: use
    constraint:
      purpose: {isA: commercial}
  - action: use
    constraint:
      spatial: {isNoneOf: [CN, HK, MO]}
"""

_CN = timezone(timedelta(hours=8))
_BASE = Request(
    action="aggregate", purpose="research.clinical", recipient="university-x", role="researcher",
    now=datetime(2027, 3, 1, 10, 0, tzinfo=_CN), target="dataset:hospital-b:cardiology",
    jurisdiction="CN-SH", queries=42, elapsed=timedelta(days=40), epsilon_spent=1.2,
    epsilon=0.1,
)  # fmt: skip
REQUESTS: tuple[tuple[Request, bool], ...] = (
    (_BASE, True),
    (replace(_BASE, action="train", queries=5), True),
    (replace(_BASE, action="lookup", purpose="emergency.break-glass", role="clinician",
             recipient="hospital-a"), True),
    (replace(_BASE, action="distribute"), False),
    (replace(_BASE, queries=500), False),
    (replace(_BASE, purpose="commercial.research"), False),
)  # fmt: skip
"""The requests cycled through, with the decision each must get."""


def _check(policy: Policy) -> None:
    """The benchmark measures the intended paths only if the decisions are the intended ones."""
    if problems(policy):
        raise RuntimeError(f"the benchmark policy is not understood: {problems(policy)}")
    for request, permitted in REQUESTS:
        decision = evaluate(policy, request)
        if decision.permitted != permitted:
            raise RuntimeError(f"unexpected decision for {request}: {decision}")


def _latencies(policy: Policy) -> list[float]:
    """Microseconds per evaluation, one sample per call, cycling through the requests."""
    samples: list[float] = []
    budget = Budget(EVALUATIONS, SECONDS)
    clock = time.perf_counter_ns
    rounds = 0
    with progress() as bar:
        task = bar.add_task("policy: evaluating requests", total=EVALUATIONS)
        while not budget.expired(len(samples)):
            for request, _ in REQUESTS:
                start = clock()
                evaluate(policy, request)
                samples.append((clock() - start) / 1000)
            rounds += 1
            if rounds % 1000 == 0:
                bar.update(task, completed=len(samples))
        bar.update(task, completed=len(samples))
    return samples


def section() -> str:
    """The usage-policy section of docs/benchmarks.md."""
    yaml_seconds, policy = best_of(lambda: parse_yaml(POLICY, "benchmark"), 20)
    document = json.dumps(to_jsonld(policy))
    jsonld_seconds, from_jsonld = best_of(lambda: parse_jsonld(document, "benchmark"), 20)
    if from_jsonld != policy:
        raise RuntimeError("the JSON-LD form of the benchmark policy reads back different")
    _check(policy)
    samples = _latencies(policy)
    mean = sum(samples) / len(samples)
    constraints = sum(len(r.constraints) for r in (*policy.permissions, *policy.prohibitions))
    figures = [
        Figure("evaluation per request, mean", mean, "µs", target=TARGET,
               note=f"{len(samples):,} evaluations; median {number(percentile(samples, 50))} µs"),
        Figure("evaluation per request, p99", percentile(samples, 99), "µs", target=TARGET,
               note=f"max {number(max(samples))} µs"),
        Figure("reading the policy from YAML", yaml_seconds * 1e6, "µs",
               note="fastest of 20; once per policy, not per request"),
        Figure("reading the policy from JSON-LD", jsonld_seconds * 1e6, "µs",
               note="fastest of 20"),
    ]
    console.print(f"policy: mean {mean:.1f} µs over {len(samples):,} evaluations")
    return "\n".join([
        "## Usage policies: evaluation time per task",
        "",
        f"`medspace.policy.evaluate.evaluate` on one ODRL policy of "
        f"{len(policy.permissions)} permissions and {len(policy.prohibitions)} prohibitions "
        f"({constraints} constraints), cycling through {len(REQUESTS)} requests: a permitted "
        "aggregate, training task and emergency look-up, and denials by a prohibition, by an "
        "exhausted query count and by a commercial purpose. Each evaluation checks the whole "
        "policy afresh (nothing is cached between requests) and is timed on its own.",
        "",
        figure_table(figures),
    ])
