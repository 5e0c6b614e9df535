"""Hostile and random input: reading ends in a Policy or a PolicyError, evaluating in a Decision.

And the fail-closed properties that make a policy safe to extend: a term the evaluator does not
understand permits nothing, and adding a prohibition or a constraint never permits more.
"""

from __future__ import annotations

import copy
import json
from datetime import timedelta
from importlib import resources
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medspace.policy.evaluate import ROLES, Decision, Request, evaluate, problems
from medspace.policy.odrl import (
    EXAMPLES,
    Constraint,
    Policy,
    PolicyError,
    Rule,
    load_policy,
    parse_jsonld,
    parse_yaml,
    to_jsonld,
)
from medspace.policy.purposes import PURPOSES
from medspace.policy.vocabulary import ACTIONS, LEFT_OPERANDS, OPERATORS, TASK_ACTIONS
from tests.policy.kit import NOW, REQUEST, request

FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

TERMS = [
    "uid", "@id", "@type", "type", "@context", "permission", "prohibition", "obligation",
    "action", "constraint", "duty", "leftOperand", "operator", "rightOperand", "dataType", "unit",
    "assigner", "assignee", "target", "conflict", "profile", "@value", "@list", "rdf:value",
    "odrl:permission", "http://www.w3.org/ns/odrl.jsonld", "Set", "Offer", "Agreement",
    "xsd:dateTime", *ACTIONS, *LEFT_OPERANDS, *OPERATORS, *PURPOSES, "CN", "CN-SH", "P1D",
    "2027-01-01T00:00:00Z", "researcher",
]  # fmt: skip
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8),
    st.sampled_from(TERMS),
)  # fmt: skip
KEYS = st.one_of(st.sampled_from(TERMS), st.text(max_size=8))
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=5),
    max_leaves=24,
)
REQUESTS = [
    REQUEST,
    request(action="train", target="dataset:hospital-a:oncology"),
    request(action="distribute", purpose="commercial", jurisdiction=None, queries=None),
    request(action="lookup", purpose="emergency.break-glass", role="clinician"),
]
EXAMPLE_POLICIES = [load_policy(name) for name in EXAMPLES]
DOCUMENTS = [to_jsonld(policy) for policy in EXAMPLE_POLICIES]
EXAMPLE_TEXTS = [resources.files("medspace.policy").joinpath("examples", f"{name}.yaml")
                 .read_text(encoding="utf-8") for name in EXAMPLES]


def _outcome(read: Any, document: Any) -> None:
    """Reading gives a Policy or a PolicyError; every request then gets a Decision, and a
    policy with any problem permits none of them."""
    try:
        policy = read(document)
    except PolicyError:
        return
    assert isinstance(policy, Policy)
    not_understood = bool(problems(policy))
    for each in REQUESTS:
        decision = evaluate(policy, each)
        assert isinstance(decision, Decision)
        assert all(isinstance(reason, str) and reason for reason in decision.reasons)
        if not_understood:
            assert not decision.permitted


@FUZZ
@given(JSON)
def test_any_json_value_reads_to_a_policy_or_a_policy_error(document: Any) -> None:
    _outcome(parse_jsonld, document)
    _outcome(parse_yaml, document)


@FUZZ
@given(st.text(max_size=200) | st.binary(max_size=200))
def test_any_text_reads_to_a_policy_or_a_policy_error(text: str | bytes) -> None:
    _outcome(parse_jsonld, text)
    _outcome(parse_yaml, text)


def _paths(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path] if path else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*path, index))
    return found


@FUZZ
@given(st.data())
def test_a_mutated_policy_reads_and_evaluates_or_fails_cleanly(data: st.DataObject) -> None:
    document = copy.deepcopy(data.draw(st.sampled_from(DOCUMENTS)))
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(_paths(document)))
        parent = document
        for step in path[:-1]:
            parent = parent[step]
        if isinstance(parent, dict) and data.draw(st.booleans()):
            parent[data.draw(KEYS)] = data.draw(JSON)
        else:
            parent[path[-1]] = data.draw(JSON)
    _outcome(parse_jsonld, document)
    _outcome(parse_jsonld, json.dumps(document))


@FUZZ
@given(st.data())
def test_a_mutated_hand_written_policy_reads_and_evaluates_or_fails_cleanly(
    data: st.DataObject,
) -> None:
    lines = data.draw(st.sampled_from(EXAMPLE_TEXTS)).splitlines()
    index = data.draw(st.integers(0, len(lines) - 1))
    lines[index] = data.draw(st.sampled_from([
        lines[index] + " " + data.draw(st.sampled_from(TERMS)),
        lines[index].replace(":", ": [", 1),
        lines[index][: data.draw(st.integers(0, len(lines[index])))],
        "  " + lines[index],
        data.draw(st.text(max_size=20)),
    ]))  # fmt: skip
    _outcome(parse_yaml, "\n".join(lines))


ANY_VALUE = st.one_of(JSON, st.just(NOW), st.just(timedelta(days=1)), st.integers(-2, 10**30))


@FUZZ
@given(st.fixed_dictionaries({}, optional={
    field: ANY_VALUE for field in ("action", "purpose", "recipient", "role", "now", "target",
                                   "jurisdiction", "queries", "elapsed", "epsilon_spent",
                                   "epsilon")
}))  # fmt: skip
def test_any_request_gets_a_decision(changes: dict[str, Any]) -> None:
    odd = request(**changes)
    for policy in EXAMPLE_POLICIES:
        assert isinstance(evaluate(policy, odd), Decision)


# Generated, well-formed policies.

_PURPOSE = st.sampled_from(sorted(PURPOSES))
_REGION = st.sampled_from(["CN", "CN-SH", "CN-BJ", "HK", "US"])
_PARTY = st.sampled_from(["university-x", "pharma-y"])


def _one_or_many(values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return values | st.lists(values, min_size=1, max_size=3).map(tuple)


CONSTRAINTS = st.one_of(
    st.builds(Constraint, left_operand=st.just("purpose"), right_operand=_one_or_many(_PURPOSE),
              operator=st.sampled_from(["eq", "isA", "isAnyOf", "isAllOf", "isNoneOf"])),
    st.builds(Constraint, left_operand=st.just("spatial"), right_operand=_one_or_many(_REGION),
              operator=st.sampled_from(["eq", "isPartOf", "isAnyOf", "isNoneOf"])),
    st.builds(Constraint, left_operand=st.just("recipient"), right_operand=_one_or_many(_PARTY),
              operator=st.sampled_from(["eq", "neq", "isAnyOf", "isNoneOf"])),
    st.builds(Constraint, left_operand=st.just("recipientRole"),
              right_operand=_one_or_many(st.sampled_from(ROLES)),
              operator=st.sampled_from(["eq", "neq", "isAnyOf", "isNoneOf"])),
    st.builds(Constraint, left_operand=st.sampled_from(["count"]),
              right_operand=st.integers(0, 5), operator=st.sampled_from(OPERATORS[:6])),
    st.builds(Constraint, left_operand=st.just("privacyBudget"),
              right_operand=st.sampled_from([0.1, 0.5, 1, 2.0]),
              operator=st.sampled_from(OPERATORS[:6])),
    st.builds(Constraint, left_operand=st.just("elapsedTime"),
              right_operand=st.sampled_from(["P1D", "PT12H", "P2W"]),
              operator=st.sampled_from(OPERATORS[:6])),
    st.builds(Constraint, left_operand=st.just("dateTime"),
              right_operand=st.sampled_from(["2027-06-01T09:30:00+08:00", "2027-01-01T00:00:00Z",
                                             "2028-01-01T00:00:00+08:00"]),
              operator=st.sampled_from(OPERATORS[:6])),
)  # fmt: skip
RULES = st.builds(
    Rule,
    actions=st.lists(st.sampled_from(list(ACTIONS)), min_size=1, max_size=2).map(tuple),
    assignee=st.none() | _PARTY,
    constraints=st.lists(CONSTRAINTS, max_size=3).map(tuple),
)
POLICIES = st.builds(
    Policy,
    uid=st.just("urn:generated"),
    permissions=st.lists(RULES, max_size=3).map(tuple),
    prohibitions=st.lists(RULES, max_size=2).map(tuple),
)
GENERATED_REQUESTS = st.builds(
    Request,
    action=st.sampled_from(TASK_ACTIONS),
    purpose=_PURPOSE,
    recipient=_PARTY,
    role=st.sampled_from(["researcher", "clinician", "model_consumer"]),
    now=st.sampled_from([NOW, NOW - timedelta(days=200), NOW + timedelta(days=300)]),
    jurisdiction=st.none() | _REGION,
    queries=st.none() | st.integers(0, 6),
    elapsed=st.none() | st.sampled_from([timedelta(hours=1), timedelta(days=1),
                                         timedelta(days=20)]),
    epsilon_spent=st.none() | st.sampled_from([0.0, 0.4, 1.5]),
    epsilon=st.none() | st.sampled_from([0.1, 0.5]),
)


@FUZZ
@given(POLICIES)
def test_a_generated_policy_reads_back_equal_from_json_ld(policy: Policy) -> None:
    assert parse_jsonld(json.dumps(to_jsonld(policy))) == policy


@FUZZ
@given(POLICIES, RULES, GENERATED_REQUESTS)
def test_adding_a_prohibition_never_permits_more(policy: Policy, extra: Rule,
                                                 each: Request) -> None:
    stricter = policy.model_copy(update={"prohibitions": (*policy.prohibitions, extra)})
    if evaluate(stricter, each).permitted:
        assert evaluate(policy, each).permitted


@FUZZ
@given(POLICIES, CONSTRAINTS, st.integers(0, 2), GENERATED_REQUESTS)
def test_adding_a_constraint_to_a_permission_never_permits_more(
    policy: Policy, extra: Constraint, index: int, each: Request
) -> None:
    if not policy.permissions:
        return
    index %= len(policy.permissions)
    rule = policy.permissions[index]
    narrower = rule.model_copy(update={"constraints": (*rule.constraints, extra)})
    permissions = (*policy.permissions[:index], narrower, *policy.permissions[index + 1:])
    if evaluate(policy.model_copy(update={"permissions": permissions}), each).permitted:
        assert evaluate(policy, each).permitted


@FUZZ
@given(POLICIES, GENERATED_REQUESTS, st.sampled_from(["mood", "odrl:print", "ex:purpose"]))
def test_a_policy_with_an_unknown_term_permits_nothing(policy: Policy, each: Request,
                                                       term: str) -> None:
    strange = Rule(actions=("use",), constraints=(
        Constraint(left_operand=term, operator="eq", right_operand="x"),))
    for changed in (policy.model_copy(update={"prohibitions": (*policy.prohibitions, strange)}),
                    policy.model_copy(update={"unknown": (("policy", term),)})):
        decision = evaluate(changed, each)
        assert not decision.permitted
        assert any(term in reason for reason in decision.reasons)


@FUZZ
@given(POLICIES, GENERATED_REQUESTS)
def test_a_permit_names_a_permission_that_covers_the_action(policy: Policy,
                                                            each: Request) -> None:
    decision = evaluate(policy, each)
    if decision.permitted:
        assert problems(policy) == ()
        (reason,) = decision.reasons
        assert reason.startswith("permission ") and reason.endswith(f"permits {each.action!r}")
