"""Reading policies: JSON-LD and YAML give one model, bad shapes are PolicyErrors, unknown terms
are kept for the evaluator to refuse."""

from __future__ import annotations

import copy
import json
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from medspace.policy.evaluate import evaluate, problems
from medspace.policy.odrl import (
    EXAMPLES,
    MAX_DOCUMENT_BYTES,
    Constraint,
    Policy,
    PolicyError,
    load_policy,
    parse_jsonld,
    parse_yaml,
    to_jsonld,
)
from medspace.policy.vocabulary import MEDSPACE_NS, ODRL_NS
from tests.policy.kit import request

YAML_FORM = """\
uid: https://hospital-b.example.org/policy/7
type: Offer
title: Cardiology aggregates
assigner: hospital-b
target: dataset:hospital-b:cardiology
permission:
  - action: aggregate
    constraint:
      purpose: {isAnyOf: [research, public-health]}
      recipientRole: {eq: researcher}
      dateTime:
        lt: 2028-01-01T00:00:00+08:00
        dataType: xsd:dateTime
      privacyBudget: {lteq: 3.0}
    duty:
      - action: delete
        constraint:
          elapsedTime: {lteq: P30D}
prohibition:
  - action: [distribute, reproduce]
"""

JSONLD_FORM: dict[str, Any] = {
    "@context": ["http://www.w3.org/ns/odrl.jsonld", {"ms": MEDSPACE_NS}],
    "@id": "https://hospital-b.example.org/policy/7",
    "@type": "odrl:Offer",
    "http://purl.org/dc/terms/title": "Cardiology aggregates",
    "assigner": {"@type": "Party", "uid": "hospital-b"},
    "odrl:target": {"@id": "dataset:hospital-b:cardiology"},
    "permission": {
        "@type": "Permission",
        "action": {"rdf:value": {"@id": "odrl:aggregate"}},
        "constraint": [
            {"leftOperand": "odrl:purpose", "operator": "isAnyOf",
             "rightOperand": {"@list": ["research", {"@value": "public-health"}]}},
            {"@type": "Constraint", "leftOperand": "ms:recipientRole",
             "operator": f"{ODRL_NS}eq", "rightOperand": {"@id": "researcher"}},
            {"leftOperand": "dateTime", "operator": "lt",
             "rightOperand": {"@value": "2028-01-01T00:00:00+08:00", "@type": "xsd:dateTime"}},
            {"leftOperand": f"{MEDSPACE_NS}privacyBudget", "operator": "lteq",
             "rightOperand": 3.0},
        ],
        "duty": [{"action": "delete", "constraint": {
            "leftOperand": "elapsedTime", "operator": "lteq", "rightOperand": "P30D"}}],
    },
    "prohibition": [{"action": ["odrl:distribute", {"@id": "reproduce"}]}],
}


def test_the_json_ld_and_yaml_forms_give_equal_models() -> None:
    from_yaml = parse_yaml(YAML_FORM)
    assert parse_jsonld(json.dumps(JSONLD_FORM)) == from_yaml
    assert problems(from_yaml) == ()


def test_yaml_dates_become_the_text_json_ld_carries() -> None:
    dated = parse_yaml(YAML_FORM).permissions[0].constraints[2]
    assert dated == Constraint(left_operand="dateTime", operator="lt",
                               right_operand="2028-01-01T00:00:00+08:00",
                               data_type="xsd:dateTime")


def test_yaml_may_write_constraints_as_odrl_objects_too() -> None:
    shorthand = parse_yaml("""\
uid: u
permission:
  - action: use
    constraint:
      count: {lt: 5}
      purpose: {isA: research}
""")
    objects = parse_yaml("""\
uid: u
permission:
  - action: use
    constraint:
      - {leftOperand: count, operator: lt, rightOperand: 5}
      - {leftOperand: purpose, operator: isA, rightOperand: research}
""")
    assert objects == shorthand
    single = parse_yaml("uid: u\npermission:\n  - action: use\n    constraint: "
                        "{leftOperand: count, operator: lt, rightOperand: 5}\n")
    assert single.permissions[0].constraints == shorthand.permissions[0].constraints[:1]


def test_json_ld_written_as_yaml_is_read_as_json_ld() -> None:
    assert parse_yaml(JSONLD_FORM) == parse_jsonld(JSONLD_FORM)


@pytest.mark.parametrize("name", EXAMPLES)
def test_every_example_loads_is_understood_and_ships_in_the_package(name: str) -> None:
    shipped = resources.files("medspace.policy").joinpath("examples", f"{name}.yaml")
    assert shipped.is_file()
    policy = load_policy(name)
    assert problems(policy) == ()
    assert policy.permissions


@pytest.mark.parametrize("name", EXAMPLES)
def test_to_json_ld_reads_back_equal(name: str) -> None:
    policy = load_policy(name)
    assert parse_jsonld(json.dumps(to_jsonld(policy))) == policy


def test_to_json_ld_refuses_a_policy_with_unknown_terms() -> None:
    policy = parse_yaml("uid: u\npermission: [{action: use}]\ninheritFrom: urn:parent\n")
    with pytest.raises(PolicyError, match="inheritFrom"):
        to_jsonld(policy)


def test_a_policy_file_is_read_by_its_suffix(tmp_path: Path) -> None:
    policy = load_policy("emergency-lookup")
    (tmp_path / "p.jsonld").write_text(json.dumps(to_jsonld(policy)), encoding="utf-8")
    (tmp_path / "p.yaml").write_text(
        resources.files("medspace.policy").joinpath("examples", "emergency-lookup.yaml")
        .read_text(encoding="utf-8"), encoding="utf-8")
    assert load_policy(tmp_path / "p.jsonld") == load_policy(tmp_path / "p.yaml") == policy


def test_a_missing_policy_file_is_a_policy_error_listing_the_examples(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="training-only-no-download"):
        load_policy(tmp_path / "absent.yaml")
    with pytest.raises(PolicyError):
        load_policy("bad\0name")


# Terms: prefixes, IRIs and contexts.

@pytest.mark.parametrize("written", ["train", "medspace:train", f"{MEDSPACE_NS}train",
                                     {"@id": "medspace:train"}])
def test_an_extension_action_reads_the_same_however_it_is_written(written: Any) -> None:
    document = {"@context": "http://www.w3.org/ns/odrl.jsonld", "uid": "u",
                "permission": [{"action": written}]}
    assert parse_jsonld(document).permissions[0].actions == ("train",)


def test_a_context_that_moves_the_odrl_prefix_makes_its_terms_unknown() -> None:
    document = {"@context": ["http://www.w3.org/ns/odrl.jsonld", {"odrl": "http://evil.example/"}],
                "uid": "u", "permission": [{"action": "odrl:use"}]}
    decision = evaluate(parse_jsonld(document), request())
    assert not decision.permitted
    assert any("unknown action 'http://evil.example/use'" in r for r in decision.reasons)


@pytest.mark.parametrize("entry", [
    {"use": "http://www.w3.org/ns/odrl/2/"},
    {"permission": "http://www.w3.org/ns/odrl/2/prohibition"},
    {"@vocab": "http://example.org/"},
    {"ex": {"@id": "http://example.org/"}},
])  # fmt: skip
def test_a_context_that_redefines_terms_is_not_understood(entry: dict[str, Any]) -> None:
    document = {"@context": ["http://www.w3.org/ns/odrl.jsonld", entry], "uid": "u",
                "permission": [{"action": "use"}]}
    policy = parse_jsonld(document)
    assert policy.unknown == (("@context", next(iter(entry))),)
    assert not evaluate(policy, request()).permitted


def test_another_context_is_not_understood() -> None:
    document = {"@context": ["http://www.w3.org/ns/odrl.jsonld", "https://w3id.org/dpv.jsonld"],
                "uid": "u", "permission": [{"action": "use"}]}
    assert parse_jsonld(document).unknown == (("@context", "https://w3id.org/dpv.jsonld"),)


def test_a_logical_constraint_is_kept_as_unknown_and_denies() -> None:
    document = {"@context": "http://www.w3.org/ns/odrl.jsonld", "uid": "u", "permission": [{
        "action": "use", "constraint": [
            {"@type": "LogicalConstraint", "or": [{"leftOperand": "count", "operator": "lt",
                                                   "rightOperand": 5}]},
            {"leftOperand": "count", "operator": "lt", "rightOperand": 5, "status": 3}]}]}
    policy = parse_jsonld(document)
    assert len(policy.permissions[0].constraints) == 1
    decision = evaluate(policy, request())
    assert not decision.permitted
    assert "permission 1: 'or' is not understood" in decision.reasons
    assert "permission 1 constraint 1: 'status' is not understood" in decision.reasons


def test_a_nested_object_of_another_type_is_not_understood() -> None:
    policy = parse_yaml("uid: u\nassignee: {uid: g, type: PartyCollection}\n"
                        "permission: [{action: use}]\n")
    assert policy.unknown == (("policy assignee", "type PartyCollection"),)


def test_an_action_refinement_is_not_understood() -> None:
    document = {"@context": "http://www.w3.org/ns/odrl.jsonld", "uid": "u", "permission": [{
        "action": [{"rdf:value": {"@id": "odrl:use"}, "refinement": []}]}]}
    assert parse_jsonld(document).unknown == (("permission 1 action", "refinement"),)


# Malformed documents: PolicyError naming the place, never another exception.

_VALID = {"@context": "http://www.w3.org/ns/odrl.jsonld", "uid": "u",
          "permission": [{"action": "use", "constraint": [
              {"leftOperand": "count", "operator": "lt", "rightOperand": 5}]}]}


def _broken(path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    document = copy.deepcopy(_VALID)
    target: Any = document
    for step in path[:-1]:
        target = target[step]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return document


_DELETE = object()


@pytest.mark.parametrize(("path", "value", "message"), [
    (("uid",), _DELETE, "policy: has no uid"),
    (("uid",), 5, "policy uid: must be text, not a number"),
    (("uid",), "", "uid: String should have at least 1 character"),
    (("uid",), None, "policy: 'uid' is empty"),
    (("@context",), _DELETE, "JSON-LD needs"),
    (("@context",), "http://example.org/context.jsonld", "@context: must include"),
    (("@context",), [5], "@context: holds a number"),
    (("permission",), "use", "permission 1: must be an object, not text"),
    (("permission", 0, "action"), _DELETE, "permission 1: names no action"),
    (("permission", 0, "action"), [], "permission 1: names no action"),
    (("permission", 0, "action"), 3, "permission 1 action: must be an object, not a number"),
    (("permission", 0, "action"), {"@id": "use", "rdf:value": "use"}, "more than one"),
    (("permission", 0, "constraint", 0, "operator"), _DELETE, "constraint 1: has no operator"),
    (("permission", 0, "constraint", 0, "rightOperand"), {"a": 1}, "cannot read this value object"),
    (("permission", 0, "constraint", 0, "rightOperand"), [[1]], "not a list"),
    (("permission", 0, "constraint", 0, "rightOperand"), {"@list": 5}, "must hold a list"),
    (("permission", 0, "constraint", 0, "rightOperand"), None, "'rightOperand' is empty"),
    (("permission", 0, "constraint", 0, "dataType"), "xsd:string",
     "dataType 'xsd:string' contradicts"),
    (("type",), ["Set", "Offer"], "policy type: must be text, not a list"),
    (("assigner",), {"@type": "Party"}, "policy assigner: names no uid"),
    (("obligation",), [{"constraint": []}], "obligation 1: names no action"),
])  # fmt: skip
def test_a_malformed_document_is_a_policy_error_naming_the_place(path: tuple[Any, ...],
                                                                 value: Any,
                                                                 message: str) -> None:
    document = _broken(path, value)
    if path[-2:] == (0, "dataType"):
        document["permission"][0]["constraint"][0]["rightOperand"] = {
            "@value": 5, "@type": "xsd:integer"}
    with pytest.raises(PolicyError) as raised:
        parse_jsonld(document)
    assert str(raised.value).startswith("<policy>: ")
    assert message in str(raised.value)


@pytest.mark.parametrize("text", [
    "", "[]", "null", "{", '{"uid": "u", "uid": "v"}', "NaN", "[1e999]", "1" * 5000,
    '{"@context": "http://www.w3.org/ns/odrl.jsonld", "uid": "u", "permission": '
    '[{"action": "use", "constraint": [{"leftOperand": "count", "operator": "lt", '
    '"rightOperand": 1e999}]}]}',
    b"\xff\xfe\x00", "[" * 100_000,
])  # fmt: skip
def test_unreadable_json_is_a_policy_error(text: str | bytes) -> None:
    with pytest.raises(PolicyError):
        parse_jsonld(text)


@pytest.mark.parametrize(("text", "message"), [
    ("uid: u\nuid: v\n", "appears twice"),
    ("base: &b {action: use}\nuid: u\npermission: [*b]\n", "anchors and aliases are refused"),
    ("uid: u\n<<: {type: Set}\n", "merge keys are refused"),
    ("uid: u\npermission:\n  - action: use\n    constraint:\n", "'constraint' is empty"),
    ("uid: u\npermission: [{action: use, constraint: {count: 5}}]\n", "{operator: value}"),
    ("uid: u\npermission: [{action: use, constraint: {count: {unit: x}}}]\n", "no operator"),
    ("uid: u\npermission: [{action: use, constraint: {count: {lt: .nan}}}]\n", "not a finite"),
    ("uid: !!binary aGVsbG8=\n", "must be text"),
    ("uid: u\n1: x\n", "a key is a number, not text"),
    ("? [a, b]\n: c\n", "unreadable YAML"),
    ("uid: u\npermission: [{action: use, constraint: {count: {lt: !!set {1: null}}}}]\n",
     "a value must be text or a number"),
    ("a: " + "[" * 2_000, "unreadable YAML"),
    ("uid: u\npermission: [{action: use, constraint: {count: {lt: 0x" + "f" * 5000 + "}}}]\n",
     "less than 9223372036854775808"),
    ("uid: u\n? 0x" + "f" * 5000 + "\n: x\n", "a key is a number, not text"),
    ("uid: " + "x" * MAX_DOCUMENT_BYTES, "longer than"),
])  # fmt: skip
def test_bad_yaml_is_a_policy_error_naming_why(text: str, message: str) -> None:
    with pytest.raises(PolicyError) as raised:
        parse_yaml(text, "hospital.yaml")
    assert str(raised.value).startswith("hospital.yaml: ")
    assert message in str(raised.value)


def test_a_policy_of_type_policy_is_a_set() -> None:
    document = {**_VALID, "@type": "Policy"}
    assert parse_jsonld(document).type == "Set"


def test_the_model_refuses_non_finite_numbers_and_extra_fields() -> None:
    with pytest.raises(ValueError, match="finite"):
        Constraint(left_operand="count", operator="lt", right_operand=float("inf"))
    with pytest.raises(ValueError, match="Extra inputs"):
        Policy.model_validate({"uid": "u", "secret": 1})
