"""The evaluator: permits exactly what a policy grants, and denies with reasons everything else."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from medspace.policy.evaluate import Decision, Request, evaluate, problems
from medspace.policy.odrl import Constraint, Duty, Policy, Rule, load_policy
from medspace.policy.vocabulary import MEDSPACE_PROFILE, TASK_ACTIONS
from tests.policy.kit import BEIJING, NOW, permitting, policy, request

ONCOLOGY = "dataset:hospital-a:oncology"
CARDIOLOGY = "dataset:hospital-b:cardiology"


def _denied(decision: Decision, *fragments: str) -> None:
    assert not decision.permitted, decision
    text = "\n".join(decision.reasons)
    for fragment in fragments:
        assert fragment in text, f"{fragment!r} not in:\n{text}"


# Training only, no download.

def _trainer(**changes: Any) -> Request:
    return request(**{"action": "train", "target": ONCOLOGY, **changes})


def test_training_only_permits_a_training_task() -> None:
    decision = evaluate(load_policy("training-only-no-download"), _trainer())
    assert decision.permitted
    assert decision.reasons == ("permission 1 permits 'train'",)
    assert [d.action for d in decision.duties] == ["inform"]


@pytest.mark.parametrize("action", ["distribute", "reproduce"])
def test_training_only_refuses_a_record_level_download(action: str) -> None:
    _denied(evaluate(load_policy("training-only-no-download"), _trainer(action=action)),
            f"prohibition 1 forbids {action!r}")


@pytest.mark.parametrize("action", ["aggregate", "synthesize", "lookup"])
def test_training_only_refuses_what_it_does_not_permit(action: str) -> None:
    _denied(evaluate(load_policy("training-only-no-download"), _trainer(action=action)),
            f"no permission covers {action!r}")


def test_training_only_still_forbids_downloads_when_a_later_permission_grants_use() -> None:
    generous = policy(permission=[{"action": "train"}, {"action": "use"}],
                      prohibition=[{"action": ["distribute", "reproduce"]}])
    assert evaluate(generous, request(action="aggregate")).permitted
    _denied(evaluate(generous, request(action="distribute")), "prohibition 1 forbids")


def test_a_denial_carries_no_duties() -> None:
    decision = evaluate(load_policy("training-only-no-download"), _trainer(action="distribute"))
    assert decision.duties == ()


# Actions.

@pytest.mark.parametrize("action", TASK_ACTIONS)
def test_a_permission_of_use_permits_every_action(action: str) -> None:
    assert evaluate(permitting("use"), request(action=action)).permitted


@pytest.mark.parametrize("action", TASK_ACTIONS)
def test_a_prohibition_of_use_forbids_every_action(action: str) -> None:
    both = policy(permission=[{"action": "use"}], prohibition=[{"action": "use"}])
    _denied(evaluate(both, request(action=action)), f"'use', which includes {action!r}")


def test_train_is_not_distribute_and_distribute_is_not_train() -> None:
    _denied(evaluate(permitting("train"), request(action="distribute")), "no permission covers")
    _denied(evaluate(permitting("distribute"), request(action="train")), "no permission covers")


def test_a_rule_of_several_actions_covers_each() -> None:
    either = permitting(["aggregate", "synthesize"])
    assert evaluate(either, request(action="aggregate")).permitted
    assert evaluate(either, request(action="synthesize")).permitted
    assert not evaluate(either, request(action="train")).permitted


def test_a_policy_without_permissions_permits_nothing() -> None:
    _denied(evaluate(policy(), request()), "no permission covers 'aggregate'")


# Prohibitions against permissions.

def test_a_prohibition_wins_over_a_permission_of_the_same_action() -> None:
    both = policy(permission=[{"action": "aggregate"}], prohibition=[{"action": "aggregate"}])
    _denied(evaluate(both, request()), "prohibition 1 forbids 'aggregate'")


def test_a_prohibition_whose_constraint_fails_does_not_apply() -> None:
    commercial = {"purpose": {"isA": "commercial"}}
    rules = policy(permission=[{"action": "aggregate"}],
                   prohibition=[{"action": "use", "constraint": commercial}])
    assert evaluate(rules, request(purpose="research")).permitted
    _denied(evaluate(rules, request(purpose="commercial.insurance")), "prohibition 1 forbids")


def test_a_prohibition_applies_when_the_request_does_not_say_enough_to_exclude_it() -> None:
    rules = policy(permission=[{"action": "aggregate"}],
                   prohibition=[{"action": "aggregate",
                                 "constraint": {"spatial": {"isNoneOf": ["CN"]}}}])
    assert evaluate(rules, request(jurisdiction="CN-GD")).permitted
    _denied(evaluate(rules, request(jurisdiction=None)),
            "taken to apply: the request gives no jurisdiction")


def test_a_permission_needs_every_constraint_to_hold_and_lists_each_that_fails() -> None:
    rules = permitting(purpose={"isA": "research"}, recipientRole={"eq": "researcher"},
                       count={"lteq": 3})
    assert evaluate(rules, request(queries=2)).permitted
    _denied(evaluate(rules, request(purpose="commercial", role="clinician", queries=3)),
            "purpose isA 'research'; the request has purpose 'commercial'",
            "recipientRole eq 'researcher'; the request has role 'clinician'",
            "count lteq 3; the request has use number 4")


def test_any_permission_whose_constraints_hold_permits() -> None:
    rules = policy(permission=[
        {"action": "aggregate", "constraint": {"purpose": {"isA": "public-health"}}},
        {"action": "aggregate", "constraint": {"purpose": {"isA": "research"}}},
    ])
    decision = evaluate(rules, request(purpose="research.clinical"))
    assert decision.reasons == ("permission 2 permits 'aggregate'",)


# Attacks: a purpose outside the policy, an unknown term.

def test_a_purpose_outside_the_policy_is_refused() -> None:
    research = load_policy("research-aggregates-cn")
    attack = request(target=CARDIOLOGY, purpose="commercial.marketing")
    _denied(evaluate(research, attack), "forbids 'use', which includes 'aggregate'")
    _denied(evaluate(permitting(purpose={"isA": "research"}), request(purpose="emergency")),
            "the request has purpose 'emergency'")


def test_a_purpose_outside_the_hierarchy_is_refused_naming_it() -> None:
    _denied(evaluate(permitting(), request(purpose="research-ish")),
            "unknown purpose 'research-ish'")


def test_a_policy_with_an_unknown_operand_denies_and_names_it() -> None:
    rules = permitting(purpose={"isA": "research"}, patientMood={"eq": "happy"})
    _denied(evaluate(rules, request()), "refused as a whole",
            "permission 1 constraint 2: unknown left operand 'patientMood'")


def test_a_policy_with_an_unknown_operator_denies_and_names_it() -> None:
    _denied(evaluate(permitting(count={"roughly": 10}), request()),
            "permission 1 constraint 1: unknown operator 'roughly'")


def test_a_policy_with_an_unknown_action_denies_every_request_and_names_it() -> None:
    rules = policy(permission=[{"action": "aggregate"}], prohibition=[{"action": "print"}])
    _denied(evaluate(rules, request()), "prohibition 1: unknown action 'print'")


def test_an_action_in_the_wrong_namespace_is_unknown() -> None:
    _denied(evaluate(permitting("odrl:train"), request(action="train")),
            "unknown action 'http://www.w3.org/ns/odrl/2/train'")


def test_a_policy_with_an_unexpected_key_denies_and_names_it() -> None:
    rules = policy(permission=[{"action": "aggregate", "refinement": {"x": 1}}],
                   inheritFrom="urn:parent")
    _denied(evaluate(rules, request()), "policy: 'inheritFrom' is not understood",
            "permission 1: 'refinement' is not understood")


def test_a_policy_with_an_unknown_duty_denies_and_names_it() -> None:
    rules = policy(permission=[{"action": "aggregate", "duty": [{"action": "pay"}]}])
    _denied(evaluate(rules, request()), "permission 1 duty 1: unknown duty 'pay'")


@pytest.mark.parametrize(("extra", "named"), [
    ({"type": "Ticket"}, "policy type 'Ticket'"),
    ({"profile": "https://example.org/other-profile"}, "profile 'https://example.org/other-"),
    ({"conflict": "perm"}, "conflict strategy 'perm' is not enforced"),
])  # fmt: skip
def test_a_policy_of_an_unknown_kind_denies_and_names_it(extra: dict[str, str],
                                                         named: str) -> None:
    rules = policy(permission=[{"action": "aggregate"}], **extra)
    _denied(evaluate(rules, request()), named)


@pytest.mark.parametrize("conflict", ["prohibit", "invalid"])
def test_the_conflict_strategies_medspace_enforces_are_accepted(conflict: str) -> None:
    rules = policy(permission=[{"action": "use"}], prohibition=[{"action": "distribute"}],
                   conflict=conflict)
    assert evaluate(rules, request()).permitted
    assert not evaluate(rules, request(action="distribute")).permitted


def test_medspaces_own_profile_is_accepted() -> None:
    assert evaluate(policy(permission=[{"action": "aggregate"}], profile=MEDSPACE_PROFILE),
                    request()).permitted


def test_an_unknown_term_in_a_rule_for_another_action_still_denies_everything() -> None:
    rules = policy(permission=[{"action": "aggregate"},
                               {"action": "train", "constraint": {"mood": {"eq": "good"}}}])
    _denied(evaluate(rules, request(action="aggregate")), "unknown left operand 'mood'")


# Constraints at their boundaries.

@pytest.mark.parametrize(("constraint", "permitted", "denied"), [
    ({"purpose": {"isA": "research"}}, {"purpose": "research.biomedical"},
     {"purpose": "commercial.research"}),
    ({"recipient": {"eq": "university-x"}}, {"recipient": "university-x"},
     {"recipient": "university-y"}),
    ({"recipientRole": {"eq": "researcher"}}, {"role": "researcher"}, {"role": "model_consumer"}),
    ({"spatial": {"isPartOf": "CN"}}, {"jurisdiction": "CN"}, {"jurisdiction": "HK"}),
    ({"dateTime": {"lt": "2027-06-01T09:30:00+08:00"}},
     {"now": datetime(2027, 6, 1, 9, 29, 59, 999999, tzinfo=BEIJING)}, {"now": NOW}),
    ({"dateTime": {"lteq": "2027-06-01T01:30:00Z"}}, {"now": NOW},
     {"now": NOW + timedelta(microseconds=1)}),
    ({"dateTime": {"gteq": "2027-06-01T09:30:00+08:00"}}, {"now": NOW},
     {"now": NOW - timedelta(microseconds=1)}),
    ({"elapsedTime": {"lteq": "P90D"}}, {"elapsed": timedelta(days=90)},
     {"elapsed": timedelta(days=90, microseconds=1)}),
    ({"elapsedTime": {"lt": "PT1H30M"}}, {"elapsed": timedelta(minutes=89)},
     {"elapsed": timedelta(minutes=90)}),
    ({"elapsedTime": {"lteq": "P1W2DT0.5S"}}, {"elapsed": timedelta(days=9, seconds=0.5)},
     {"elapsed": timedelta(days=9, seconds=0.6)}),
    ({"count": {"lteq": 100}}, {"queries": 99}, {"queries": 100}),
    ({"count": {"lt": 2}}, {"queries": 0}, {"queries": 1}),
    ({"privacyBudget": {"lteq": 1.0}}, {"epsilon_spent": 0.7, "epsilon": 0.3},
     {"epsilon_spent": 0.7, "epsilon": 0.30001}),
    ({"privacyBudget": {"lteq": 0.3}}, {"epsilon_spent": 0.1, "epsilon": 0.2},
     {"epsilon_spent": 0.2, "epsilon": 0.2}),
    ({"privacyBudget": {"lt": 3}}, {"epsilon_spent": 2, "epsilon": 0.999},
     {"epsilon_spent": 2, "epsilon": 1}),
])  # fmt: skip
def test_each_constraint_permits_on_its_side_of_the_boundary_and_denies_past_it(
    constraint: dict[str, Any], permitted: dict[str, Any], denied: dict[str, Any]
) -> None:
    rules = permitting(**constraint)
    assert evaluate(rules, request(**permitted)).permitted
    _denied(evaluate(rules, request(**denied)), "permission 1 requires")


def test_an_expired_policy_denies() -> None:
    research = load_policy("research-aggregates-cn")
    valid = request(target=CARDIOLOGY)
    assert evaluate(research, valid).permitted
    expired = datetime(2028, 1, 1, tzinfo=BEIJING)
    _denied(evaluate(research, request(target=CARDIOLOGY, now=expired)),
            "dateTime lt '2028-01-01T00:00:00+08:00'; the request has time 2028-01-01")


def test_an_exhausted_count_denies() -> None:
    research = load_policy("research-aggregates-cn")
    assert evaluate(research, request(target=CARDIOLOGY, queries=499)).permitted
    _denied(evaluate(research, request(target=CARDIOLOGY, queries=500)),
            "count lteq 500; the request has use number 501 (counting this one)")


def test_an_exhausted_privacy_budget_denies() -> None:
    research = load_policy("research-aggregates-cn")
    assert evaluate(research, request(target=CARDIOLOGY, epsilon_spent=2.5,
                                      epsilon=0.5)).permitted
    _denied(evaluate(research, request(target=CARDIOLOGY, epsilon_spent=2.5, epsilon=0.6)),
            "privacyBudget lteq 3.0; the request has ε 3.1 spent with this task")


@pytest.mark.parametrize("missing", ["jurisdiction", "queries", "elapsed", "epsilon_spent",
                                     "epsilon", "target"])
def test_a_permission_is_not_granted_on_what_the_request_does_not_say(missing: str) -> None:
    research = load_policy("research-aggregates-cn")
    field = {"epsilon_spent": "epsilon_spent and epsilon",
             "epsilon": "epsilon_spent and epsilon"}.get(missing, missing)
    _denied(evaluate(research, request(**{"target": CARDIOLOGY, missing: None})),
            f"the request gives no {field}")


# Every operator.

@pytest.mark.parametrize(("operand", "op", "right", "holds", "fails"), [
    ("purpose", "eq", "research", {"purpose": "research"}, {"purpose": "research.clinical"}),
    ("purpose", "isA", "research", {"purpose": "research.clinical"}, {"purpose": "commercial"}),
    ("purpose", "isAnyOf", ["public-health", "research"], {"purpose": "research.clinical"},
     {"purpose": "emergency"}),
    ("purpose", "isAllOf", ["research", "research.clinical"], {"purpose": "research.clinical"},
     {"purpose": "research"}),
    ("purpose", "isNoneOf", ["commercial"], {"purpose": "research"},
     {"purpose": "commercial.insurance"}),
    ("spatial", "eq", "CN", {"jurisdiction": "CN"}, {"jurisdiction": "CN-SH"}),
    ("spatial", "isPartOf", "CN", {"jurisdiction": "CN-31"}, {"jurisdiction": "CNX"}),
    ("spatial", "isAnyOf", ["HK", "CN-BJ"], {"jurisdiction": "HK"}, {"jurisdiction": "CN-SH"}),
    ("spatial", "isAllOf", ["CN", "CN-SH"], {"jurisdiction": "CN-SH"}, {"jurisdiction": "CN"}),
    ("spatial", "isNoneOf", ["US", "EU"], {"jurisdiction": "CN"}, {"jurisdiction": "US-CA"}),
    ("recipient", "eq", "a", {"recipient": "a"}, {"recipient": "b"}),
    ("recipient", "neq", "a", {"recipient": "b"}, {"recipient": "a"}),
    ("recipient", "isAnyOf", ["a", "b"], {"recipient": "b"}, {"recipient": "c"}),
    ("recipient", "isAllOf", ["a"], {"recipient": "a"}, {"recipient": "b"}),
    ("recipient", "isNoneOf", ["a", "b"], {"recipient": "c"}, {"recipient": "a"}),
    ("recipientRole", "eq", "clinician", {"role": "clinician"}, {"role": "researcher"}),
    ("recipientRole", "neq", "patient", {"role": "clinician"}, {"role": "patient"}),
    ("recipientRole", "isAnyOf", ["clinician"], {"role": "clinician"}, {"role": "regulator"}),
    ("recipientRole", "isNoneOf", ["model_consumer"], {"role": "researcher"},
     {"role": "model_consumer"}),
    ("count", "eq", 3, {"queries": 2}, {"queries": 3}),
    ("count", "neq", 3, {"queries": 3}, {"queries": 2}),
    ("count", "lt", 3, {"queries": 1}, {"queries": 2}),
    ("count", "lteq", 3, {"queries": 2}, {"queries": 3}),
    ("count", "gt", 3, {"queries": 3}, {"queries": 2}),
    ("count", "gteq", 3, {"queries": 2}, {"queries": 1}),
    ("elapsedTime", "gt", "P1D", {"elapsed": timedelta(days=2)}, {"elapsed": timedelta(days=1)}),
    ("privacyBudget", "gteq", 1, {"epsilon_spent": 0.5, "epsilon": 0.5},
     {"epsilon_spent": 0.5, "epsilon": 0.4}),
])  # fmt: skip
def test_every_operator_holds_and_fails_as_documented(
    operand: str, op: str, right: Any, holds: dict[str, Any], fails: dict[str, Any]
) -> None:
    rules = permitting(**{operand: {op: right}})
    assert problems(rules) == ()
    assert evaluate(rules, request(**holds)).permitted
    assert not evaluate(rules, request(**fails)).permitted


@pytest.mark.parametrize(("operand", "op"), [
    ("purpose", "neq"), ("purpose", "lt"), ("purpose", "isPartOf"), ("spatial", "isA"),
    ("spatial", "neq"), ("count", "isA"), ("dateTime", "isAnyOf"), ("recipient", "hasPart"),
    ("recipientRole", "gt"),
])  # fmt: skip
def test_an_operator_that_does_not_fit_its_operand_denies_and_names_both(operand: str,
                                                                       op: str) -> None:
    _denied(evaluate(permitting(**{operand: {op: "x"}}), request()),
            f"operator {op!r} does not apply to {operand}")


# Values of the wrong type.

@pytest.mark.parametrize(("constraint", "named"), [
    ({"dateTime": {"lt": 20271231}}, "20271231 is not a date and time"),
    ({"dateTime": {"lt": "2027-12-31"}}, "'2027-12-31' is not a date and time with a time zone"),
    ({"dateTime": {"lt": "2027-12-31T23:59:59"}}, "'2027-12-31T23:59:59' is not a date and time"),
    ({"count": {"lteq": "ten"}}, "'ten' is not a whole number"),
    ({"count": {"lteq": 2.5}}, "2.5 is not a whole number"),
    ({"count": {"lteq": True}}, "True is not a whole number"),
    ({"count": {"lteq": -1}}, "-1 is not a whole number of at least 0"),
    ({"privacyBudget": {"lteq": "1.0"}}, "'1.0' is not a number"),
    ({"privacyBudget": {"lteq": -0.5}}, "-0.5 is not a number of at least 0"),
    ({"elapsedTime": {"lteq": 90}}, "90 is not an ISO 8601 duration"),
    ({"elapsedTime": {"lteq": "P1Y"}}, "'P1Y': years and months have no fixed length"),
    ({"elapsedTime": {"lteq": "P3M"}}, "'P3M': years and months have no fixed length"),
    ({"elapsedTime": {"lteq": "PT"}}, "'PT' is not an ISO 8601 duration"),
    ({"elapsedTime": {"lteq": "P99999999999D"}}, "'P99999999999D' is longer than"),
    ({"purpose": {"isA": "science"}}, "'science' is not a purpose"),
    ({"purpose": {"isA": 7}}, "7 is not a purpose"),
    ({"spatial": {"isPartOf": "china"}}, "'china' is not an ISO 3166 code"),
    ({"recipientRole": {"eq": "admin"}}, "'admin' is not a role"),
    ({"recipient": {"eq": ""}}, "'' is not a party's identifier"),
    ({"purpose": {"isAnyOf": []}}, "isAnyOf needs at least one value"),
    ({"purpose": {"isA": ["research"]}}, "isA takes one value, not a list"),
    ({"count": {"lteq": 5, "unit": "http://example.org/thousands"}}, "unit 'http://example.org"),
    ({"count": {"lteq": 5, "dataType": "xsd:dateTime"}}, "dataType 'xsd:dateTime' does not fit"),
])  # fmt: skip
def test_a_right_operand_of_the_wrong_type_denies_and_names_it(constraint: dict[str, Any],
                                                              named: str) -> None:
    _denied(evaluate(permitting(**constraint), request()), "permission 1 constraint 1: " + named)


def test_a_scalar_for_a_set_operator_is_a_list_of_one() -> None:
    assert evaluate(permitting(purpose={"isAnyOf": "research"}), request()).permitted


def test_a_matching_data_type_is_accepted() -> None:
    rules = permitting(dateTime={"lt": "2099-01-01T00:00:00Z", "dataType": "xsd:dateTime"},
                       count={"lteq": 5, "dataType": "xsd:nonNegativeInteger"})
    assert evaluate(rules, request()).permitted


# Requests the evaluator cannot judge.

@pytest.mark.parametrize(("changes", "named"), [
    ({"action": "print"}, "unknown action 'print'"),
    ({"action": "use"}, "unknown action 'use'"),
    ({"action": None}, "unknown action None"),
    ({"purpose": "Research"}, "unknown purpose 'Research'"),
    ({"purpose": ["research"]}, "unknown purpose ['research']"),
    ({"role": "superuser"}, "unknown role 'superuser'"),
    ({"recipient": ""}, "recipient '' is not a party's identifier"),
    ({"now": datetime(2027, 6, 1)}, "is not a date and time with a time zone"),
    ({"now": "2027-06-01T00:00:00Z"}, "is not a date and time with a time zone"),
    ({"target": 5}, "target 5 is not an asset's identifier"),
    ({"jurisdiction": "cn"}, "jurisdiction 'cn' is not an ISO 3166 code"),
    ({"queries": -1}, "queries -1 is not a whole number"),
    ({"queries": True}, "queries True is not a whole number"),
    ({"queries": 1.0}, "queries 1.0 is not a whole number"),
    ({"queries": 10**5000}, "queries an integer of 16610 bits is not a whole number"),
    ({"epsilon": 2**63}, "epsilon 9223372036854775808 is not a finite number"),
    ({"elapsed": timedelta(seconds=-1)}, "is not a duration of at least 0"),
    ({"elapsed": "P1D"}, "elapsed 'P1D' is not a duration"),
    ({"epsilon": float("nan")}, "epsilon nan is not a finite number"),
    ({"epsilon_spent": float("inf")}, "epsilon_spent inf is not a finite number"),
    ({"epsilon": -0.1}, "epsilon -0.1 is not a finite number of at least 0"),
    ({"epsilon": "0.1"}, "epsilon '0.1' is not a finite number"),
])  # fmt: skip
def test_a_request_the_evaluator_cannot_judge_is_denied_naming_why(changes: dict[str, Any],
                                                                  named: str) -> None:
    _denied(evaluate(permitting("use"), request(**changes)), named)


# Parties, assets and duties.

def test_an_assignee_restricts_the_policy_to_that_recipient() -> None:
    agreement = policy(permission=[{"action": "aggregate"}], type="Agreement",
                       assigner="hospital-b", assignee="pharma-x")
    assert evaluate(agreement, request(recipient="pharma-x")).permitted
    _denied(evaluate(agreement, request(recipient="pharma-y")),
            "requires the recipient 'pharma-x'; the request has recipient 'pharma-y'")


def test_a_rule_assignee_overrides_the_policy_assignee() -> None:
    rules = policy(permission=[{"action": "aggregate", "assignee": "uni-y"}], assignee="uni-x")
    assert evaluate(rules, request(recipient="uni-y")).permitted
    assert not evaluate(rules, request(recipient="uni-x")).permitted


def test_a_prohibition_for_another_assignee_does_not_apply() -> None:
    rules = policy(permission=[{"action": "aggregate"}],
                   prohibition=[{"action": "aggregate", "assignee": "blacklisted-org"}])
    assert evaluate(rules, request(recipient="university-x")).permitted
    assert not evaluate(rules, request(recipient="blacklisted-org")).permitted


def test_a_target_restricts_the_policy_to_that_asset() -> None:
    training = load_policy("training-only-no-download")
    _denied(evaluate(training, _trainer(target=CARDIOLOGY)),
            f"target {ONCOLOGY!r}; the request has target {CARDIOLOGY!r}")
    _denied(evaluate(training, _trainer(target=None)), "the request gives no target")


@pytest.mark.parametrize(("kind", "parties", "missing"), [
    ("Offer", {}, "an Offer must name its assigner"),
    ("Agreement", {"assigner": "hospital-b"}, "an Agreement must name its assignee"),
])  # fmt: skip
def test_an_offer_or_agreement_without_its_parties_denies(kind: str, parties: dict[str, str],
                                                          missing: str) -> None:
    _denied(evaluate(policy(permission=[{"action": "aggregate"}], type=kind, **parties),
                     request()), missing)


def test_an_offer_whose_every_rule_names_the_assigner_is_complete() -> None:
    offer = policy(permission=[{"action": "aggregate", "assigner": "hospital-b"}], type="Offer")
    assert evaluate(offer, request()).permitted


def test_a_permit_carries_the_permissions_duties_and_the_policys_obligations() -> None:
    lookup = load_policy("emergency-lookup")
    clinician = request(action="lookup", purpose="emergency.break-glass", role="clinician",
                        recipient="hospital-a")
    decision = evaluate(lookup, clinician)
    assert decision.permitted
    assert [d.action for d in decision.duties] == ["inform", "delete"]
    assert decision.duties[1].constraints[0].right_operand == "P30D"
    with_obligation = policy(permission=[{"action": "aggregate", "duty": [{"action": "inform"}]}],
                             obligation=[{"action": "anonymize"}])
    assert [d.action for d in evaluate(with_obligation, request()).duties] == ["inform",
                                                                               "anonymize"]


def test_emergency_lookup_refuses_a_researcher_and_a_stranger() -> None:
    lookup = load_policy("emergency-lookup")
    clinician = request(action="lookup", purpose="emergency", role="clinician",
                        recipient="hospital-a")
    assert evaluate(lookup, clinician).permitted
    _denied(evaluate(lookup, request(action="lookup", purpose="emergency", role="researcher",
                                     recipient="hospital-a")), "role 'researcher'")
    _denied(evaluate(lookup, request(action="lookup", purpose="emergency", role="clinician",
                                     recipient="hospital-z")), "recipient 'hospital-z'")
    _denied(evaluate(lookup, request(action="lookup", purpose="research", role="clinician",
                                     recipient="hospital-a")), "purpose 'research'")


def test_a_prohibition_with_duties_denies() -> None:
    odd = Policy(uid="urn:odd", permissions=(Rule(actions=("use",)),),
                 prohibitions=(Rule(actions=("train",), duties=(Duty(action="inform"),)),))
    _denied(evaluate(odd, request()), "prohibition 1: a prohibition carries no duties")


def test_a_model_built_in_code_is_checked_like_a_parsed_one() -> None:
    built = Policy(uid="urn:built", permissions=(Rule(actions=("aggregate",), constraints=(
        Constraint(left_operand="count", operator="lteq", right_operand=(1, 2)),)),))
    _denied(evaluate(built, request()), "lteq takes one value, not a list")
