"""The hospital's rules refuse what they do not allow, and say which rule refused and why."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path

import pytest

from medspace.analytics.registry import ANALYSES, pins
from medspace.node.governance import (
    AUTO_APPROVAL_FILE,
    EMERGENCY_FILE,
    USAGE_POLICY_FILE,
    Governance,
    GovernanceError,
    NotAllowed,
    default_auto_approval,
    default_emergency_agreement,
    default_usage_policy,
)
from medspace.policy.odrl import parse_yaml

NOW = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC)
COUNT = ANALYSES["count"]


def _study(purpose: str = "research", kind: str = "count",
           researcher: str = "uni-a-researcher") -> dict[str, object]:
    return {"id": "study-1", "researcher": researcher,
            "request": {"title": "t", "purpose": purpose, "kind": kind, "query": {}}}


def _default_rules(folder: Path) -> Governance:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / USAGE_POLICY_FILE).write_text(default_usage_policy("hospital-a", "dataset:a"))
    (folder / AUTO_APPROVAL_FILE).write_text(default_auto_approval("hospital-a", "dataset:a"))
    return Governance.read(folder, {"id": "hospital-a", "dataset": "dataset:a",
                                    "analyses": pins(), "agreement_days": 30})


@pytest.fixture
def rules(tmp_path: Path) -> Governance:
    return _default_rules(tmp_path)


def _check(rules: Governance, study: dict[str, object], queries: int = 0,
           approved_days_ago: int = 1, agreed: dict[str, object] | None = None,
           approver: Governance | None = None) -> None:
    """Check a task of ``study`` under the agreement ``approver`` (default: ``rules``) made for
    ``agreed`` (default: the study itself) when it was approved."""
    approved_at = NOW - dt.timedelta(days=approved_days_ago)
    agreement = (approver or rules).agreement_for(agreed or study, approved_at)
    rules.check_task(COUNT, study, agreement, NOW, queries=queries, approved_at=approved_at)


def test_the_default_rules_permit_a_research_count(rules: Governance) -> None:
    assert rules.analysis("count") is COUNT
    _check(rules, _study())


def test_an_analysis_the_hospital_did_not_pin_is_refused(rules: Governance) -> None:
    with pytest.raises(NotAllowed, match=r"does not allow the analysis 'count'.*analyses allow"):
        replace(rules, analyses={}).analysis("count")


def test_an_analysis_whose_code_changed_since_it_was_pinned_is_refused(
    rules: Governance,
) -> None:
    stale = {"count": "1@sha256:" + "0" * 64}
    with pytest.raises(NotAllowed, match="not the code this hospital allowed"):
        replace(rules, analyses=stale).analysis("count")


def test_an_unknown_task_kind_is_refused(rules: Governance) -> None:
    with pytest.raises(NotAllowed, match="unknown task kind 'raw_rows'"):
        rules.analysis("raw_rows")


def test_a_purpose_outside_the_usage_policy_is_refused(rules: Governance) -> None:
    with pytest.raises(NotAllowed, match="does not permit"):
        _check(rules, _study(purpose="commercial"), agreed=_study())


def test_a_usage_policy_tightened_after_the_approval_refuses_the_next_task(
    rules: Governance,
) -> None:
    public_health_only = parse_yaml("""\
uid: urn:x
permission:
  - action: aggregate
    constraint:
      purpose: {isA: public-health}
""")
    with pytest.raises(NotAllowed, match="usage policy does not permit"):
        _check(replace(rules, usage_policy=public_health_only), _study(), approver=rules)


def test_a_study_the_usage_policy_would_refuse_cannot_be_approved(rules: Governance) -> None:
    with pytest.raises(NotAllowed, match=r"does not permit this study.*change the policy"):
        rules.agreement_for(_study(purpose="commercial"), NOW)


def test_a_task_after_its_agreement_ended_is_refused(rules: Governance) -> None:
    _check(rules, _study(), approved_days_ago=29)
    with pytest.raises(NotAllowed, match=r"agreement does not permit.*dateTime"):
        _check(rules, _study(), approved_days_ago=31)


def test_an_agreement_binds_the_researcher_it_was_made_with(rules: Governance) -> None:
    with pytest.raises(NotAllowed, match=r"agreement does not permit.*recipient"):
        _check(rules, _study(researcher="someone-else"), agreed=_study())


def test_without_a_usage_policy_no_task_runs(rules: Governance) -> None:
    with pytest.raises(NotAllowed, match="no usage policy"):
        _check(replace(rules, usage_policy=None), _study(), approver=rules)
    with pytest.raises(NotAllowed, match="no usage policy"):
        replace(rules, usage_policy=None).agreement_for(_study(), NOW)


def test_a_usage_policy_with_an_unknown_term_refuses_and_names_it(rules: Governance) -> None:
    odd = parse_yaml("""\
uid: urn:x
permission:
  - action: aggregate
    constraint:
      patientMood: {eq: calm}
""")
    with pytest.raises(NotAllowed, match="patientMood"):
        _check(replace(rules, usage_policy=odd), _study(), approver=rules)


def test_an_agreement_past_its_time_or_its_query_count_is_refused(rules: Governance) -> None:
    bounded = parse_yaml("""\
uid: urn:x
permission:
  - action: aggregate
    constraint:
      purpose: {isA: research}
      elapsedTime: {lteq: P30D}
      count: {lteq: 3}
""")
    limited = replace(rules, usage_policy=bounded, agreement_days=90)
    _check(limited, _study(), queries=2, approved_days_ago=29)
    with pytest.raises(NotAllowed, match="elapsedTime"):
        _check(limited, _study(), queries=0, approved_days_ago=31)
    with pytest.raises(NotAllowed, match="count"):
        _check(limited, _study(), queries=3, approved_days_ago=1)


def test_the_standing_rule_approves_research_counts_and_leaves_the_rest_to_a_person(
    rules: Governance,
) -> None:
    decision = rules.auto_decision(_study(), NOW)
    assert decision is not None and decision.permitted
    assert rules.auto_decision(_study(purpose="commercial"), NOW) is None
    assert rules.auto_decision(_study(kind="raw_rows"), NOW) is None
    assert replace(rules, auto_approval=None).auto_decision(_study(), NOW) is None


def test_a_malformed_policy_file_stops_the_node_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / USAGE_POLICY_FILE).write_text("permission: [")
    with pytest.raises(GovernanceError, match=USAGE_POLICY_FILE):
        Governance.read(tmp_path, {"id": "hospital-a"})


@pytest.mark.parametrize("config", [
    {"analyses": ["count"]},
    {"agreement_days": 0},
    {"consent_defaults": {"research": "maybe"}},
    {"consent_defaults": {"marketing": "opt-in"}},
])
def test_malformed_rules_in_node_json_stop_the_node(tmp_path: Path,
                                                     config: dict[str, object]) -> None:
    with pytest.raises(GovernanceError, match=r"node\.json"):
        Governance.read(tmp_path, {"id": "hospital-a", **config})


def test_consent_defaults_in_node_json_override_the_purposes_they_name(tmp_path: Path) -> None:
    rules = Governance.read(tmp_path, {"consent_defaults": {"research": "opt-in"}})
    assert rules.consent_defaults["research"] == "opt-in"
    assert rules.consent_defaults["commercial"] == "opt-in"
    assert rules.consent_defaults["emergency"] == "opt-out"


def test_the_standing_emergency_agreement_lets_clinicians_look_up_without_negotiating(
    tmp_path: Path,
) -> None:
    (tmp_path / EMERGENCY_FILE).write_text(default_emergency_agreement("hospital-a", "dataset:a"))
    rules = Governance.read(tmp_path, {"id": "hospital-a", "dataset": "dataset:a"})
    decision = rules.check_lookup("hospital-b", NOW)
    assert decision.permitted and [d.action for d in decision.duties] == ["inform"]


def test_without_an_emergency_agreement_or_outside_it_no_look_up_is_answered(
    tmp_path: Path,
) -> None:
    with pytest.raises(NotAllowed, match="no emergency agreement"):
        Governance.read(tmp_path, {"id": "hospital-a"}).check_lookup("hospital-b", NOW)
    (tmp_path / EMERGENCY_FILE).write_text("""\
uid: urn:x
permission:
  - action: lookup
    constraint:
      purpose: {isA: emergency}
      recipient: {isAnyOf: [hospital-c]}
""")
    rules = Governance.read(tmp_path, {"id": "hospital-a"})
    with pytest.raises(NotAllowed, match="emergency agreement does not permit"):
        rules.check_lookup("hospital-b", NOW)
