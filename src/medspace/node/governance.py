"""What a hospital allows: the analyses that may run, the studies it approves without a person,
and the usage policy every task must satisfy (DESIGN §3.2: the node is the final enforcement
point, whatever the hub says).

A node folder holds the hospital's own rules, which it reads when it starts:

``node.json``
    ``analyses``: kind → ``version@sha256:…`` pin (:mod:`medspace.analytics.registry`); an
    analysis not pinned, or whose code has changed, does not run. ``dataset``: the id its
    policies name as their target; ``jurisdiction``: where the data is (ISO 3166, ``CN-31``);
    ``consent_defaults``: purpose → ``opt-in`` / ``opt-out``; ``agreement_days``: how long
    the agreement an approval makes lasts (365).
``usage-policy.yaml``
    The ODRL policy (:mod:`medspace.policy`) every task is checked against: its action is the
    analysis's, its purpose the study's, its recipient the researcher, its count the tasks
    already released for the study and its elapsed time the time since the hospital approved.
    No policy file means no task runs.
``auto-approval.yaml`` (optional)
    An ODRL policy of the studies the hospital approves without a person deciding, e.g.
    aggregate-only research studies from named universities; any other study waits for a
    person (``medspace node studies approve|deny``).
``emergency-agreement.yaml`` (optional)
    The hospital's standing emergency agreement with the other hospitals: which of them may
    look up a patient's summary here under break-the-glass, for what, with what duties. It is
    agreed in advance so that an emergency look-up never waits for a negotiation; without the
    file no look-up is answered.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from medspace.analytics.registry import ANALYSES, Analysis
from medspace.node.agreement import AGREEMENT_DAYS, make_agreement
from medspace.policy.evaluate import Decision, Request, evaluate
from medspace.policy.odrl import Policy, PolicyError, load_policy
from medspace.store.consent import DEFAULTS, ConsentDefault

__all__ = [
    "AUTO_APPROVAL_FILE",
    "EMERGENCY_FILE",
    "USAGE_POLICY_FILE",
    "Governance",
    "GovernanceError",
    "NotAllowed",
    "default_auto_approval",
    "default_emergency_agreement",
    "default_usage_policy",
]

USAGE_POLICY_FILE = "usage-policy.yaml"
AUTO_APPROVAL_FILE = "auto-approval.yaml"
EMERGENCY_FILE = "emergency-agreement.yaml"
RESEARCHER = "researcher"
"""The role a study's submitter acts in: the hub enrols researchers in that role only."""


class GovernanceError(ValueError):
    """The hospital's rules cannot be read; the message names the file and what is wrong."""


class NotAllowed(ValueError):
    """A task the hospital's rules do not allow; the message says which rule and why."""


@dataclass(frozen=True)
class Governance:
    """The hospital's rules, read once when the node starts."""

    node: str = ""
    analyses: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    usage_policy: Policy | None = None
    auto_approval: Policy | None = None
    emergency_agreement: Policy | None = None
    dataset: str | None = None
    jurisdiction: str | None = None
    consent_defaults: Mapping[str, ConsentDefault] = field(default_factory=lambda: DEFAULTS)
    agreement_days: int = AGREEMENT_DAYS

    @classmethod
    def read(cls, root: Path, config: Mapping[str, Any]) -> Governance:
        """The rules in the node folder ``root`` and its ``node.json`` (``config``)."""
        analyses = config.get("analyses", {})
        defaults = config.get("consent_defaults", {})
        if not isinstance(analyses, dict) or not all(
                isinstance(k, str) and isinstance(p, str) for k, p in analyses.items()):
            raise GovernanceError("node.json: 'analyses' must map each kind to its pin")
        days = config.get("agreement_days", AGREEMENT_DAYS)
        if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 3650:
            raise GovernanceError("node.json: 'agreement_days' must be a whole number of days "
                                  "from 1 to 3650")
        if (not isinstance(defaults, dict) or not set(defaults) <= set(DEFAULTS)
                or not set(defaults.values()) <= {"opt-in", "opt-out"}):
            raise GovernanceError(f"node.json: 'consent_defaults' must map purposes "
                                  f"({', '.join(DEFAULTS)}) to opt-in or opt-out")
        return cls(
            node=str(config.get("id", "")),
            analyses=MappingProxyType(dict(analyses)),
            usage_policy=_policy(root / USAGE_POLICY_FILE),
            auto_approval=_policy(root / AUTO_APPROVAL_FILE),
            emergency_agreement=_policy(root / EMERGENCY_FILE),
            dataset=config.get("dataset"),
            jurisdiction=config.get("jurisdiction"),
            consent_defaults=MappingProxyType({**DEFAULTS, **defaults}),
            agreement_days=days,
        )

    def analysis(self, kind: str) -> Analysis:
        """The analysis of ``kind`` if the hospital allowed exactly its current code."""
        known = ANALYSES.get(kind)
        if known is None:
            raise NotAllowed(f"unknown task kind {kind!r}")
        pinned = self.analyses.get(kind)
        if pinned is None:
            raise NotAllowed(f"this hospital does not allow the analysis {kind!r} (allow it "
                             f"with `medspace node analyses allow {kind}`)")
        if pinned != known.pin:
            raise NotAllowed(f"the analysis {kind!r} is not the code this hospital allowed "
                             f"(allowed {pinned}, installed {known.pin}); review it and pin "
                             "it again")
        return known

    def _request(self, action: str, study: Mapping[str, Any], now: dt.datetime, *,
                 queries: int | None = None, elapsed: dt.timedelta | None = None) -> Request:
        request = study.get("request", {})
        return Request(action=action, purpose=str(request.get("purpose", "research")),
                       recipient=str(study.get("researcher", "")), role=RESEARCHER, now=now,
                       target=self.dataset, jurisdiction=self.jurisdiction, queries=queries,
                       elapsed=elapsed, epsilon=request.get("epsilon"))

    def auto_decision(self, study: Mapping[str, Any], now: dt.datetime) -> Decision | None:
        """The standing rule's verdict on an offered study; None when a person must decide."""
        known = ANALYSES.get(str(study.get("request", {}).get("kind")))
        if self.auto_approval is None or known is None:
            return None
        decision = evaluate(self.auto_approval, self._request(known.action, study, now))
        return decision if decision.permitted else None

    def agreement_for(self, study: Mapping[str, Any], now: dt.datetime) -> Policy:
        """The agreement an approval of ``study`` makes now; NotAllowed when the usage policy
        would not let the study run, since an approval it cannot honour helps no one."""
        kind = str(study.get("request", {}).get("kind"))
        analysis = ANALYSES.get(kind)
        if analysis is None:
            raise NotAllowed(f"unknown task kind {kind!r}")
        policy = self._usage_policy()
        decision = evaluate(policy, self._request(analysis.action, study, now, queries=0,
                                                  elapsed=dt.timedelta(0)))
        if not decision.permitted:
            raise NotAllowed("the usage policy does not permit this study: "
                             + "; ".join(decision.reasons) + "; change the policy first")
        return make_agreement(policy, study=study, node_id=self.node,
                              action=analysis.action, agreed_at=now, days=self.agreement_days)

    def check_task(self, analysis: Analysis, study: Mapping[str, Any], agreement: Policy,
                   now: dt.datetime, *, queries: int, approved_at: dt.datetime) -> None:
        """Refuse (NotAllowed) a task of an approved study that its agreement or the current
        usage policy does not permit, saying which and why."""
        for name, policy in (("agreement", agreement), ("usage policy", self._usage_policy())):
            decision = evaluate(policy, self._request(
                analysis.action, study, now, queries=queries, elapsed=now - approved_at))
            if not decision.permitted:
                raise NotAllowed(f"the {name} does not permit this task: "
                                 + "; ".join(decision.reasons))

    def check_lookup(self, hospital: str, now: dt.datetime) -> Decision:
        """The standing emergency agreement's verdict on a look-up a clinician of ``hospital``
        asks for; NotAllowed (with the reasons) when there is none or it does not permit."""
        if self.emergency_agreement is None:
            raise NotAllowed(f"this hospital has no emergency agreement ({EMERGENCY_FILE}); it "
                             "answers no emergency look-up")
        decision = evaluate(self.emergency_agreement, Request(
            action="lookup", purpose="emergency.break-glass", recipient=hospital,
            role="clinician", now=now, target=self.dataset, jurisdiction=self.jurisdiction))
        if not decision.permitted:
            raise NotAllowed("the emergency agreement does not permit this look-up: "
                             + "; ".join(decision.reasons))
        return decision

    def _usage_policy(self) -> Policy:
        if self.usage_policy is None:
            raise NotAllowed(f"this hospital has no usage policy ({USAGE_POLICY_FILE}); no "
                             "task runs until it writes one")
        return self.usage_policy


def _policy(path: Path) -> Policy | None:
    """The policy in ``path``, None if there is no such file."""
    if not path.exists():
        return None
    try:
        return load_policy(path)
    except PolicyError as exc:
        raise GovernanceError(f"{path}: {exc}") from None


def default_usage_policy(node_id: str, dataset: str) -> str:
    """The usage policy a node starts with: disclosure-controlled aggregates for research and
    public health, nothing record-level, nothing commercial. The hospital edits it."""
    return f"""\
# What may be done with this hospital's data. Every task is checked against it; edit it to
# suit the hospital, then restart the node. Reference: docs/examples and medspace.policy.
uid: urn:medspace:{node_id}:usage-policy
type: Set
title: Disclosure-controlled aggregates for research and public health
assigner: {node_id}
target: {dataset}
permission:
  - action: aggregate
    constraint:
      purpose: {{isAnyOf: [research, public-health]}}
      recipientRole: {{eq: researcher}}
prohibition:
  - action: [distribute, reproduce]
  - action: use
    constraint:
      purpose: {{isA: commercial}}
"""


def default_auto_approval(node_id: str, dataset: str) -> str:
    """The standing approval a node starts with: aggregate-only research studies."""
    return f"""\
# Studies this hospital approves without a person deciding; any other study waits for
# `medspace node studies approve|deny`. Delete this file to decide every study by hand.
uid: urn:medspace:{node_id}:auto-approval
type: Set
title: Aggregate-only research studies
assigner: {node_id}
target: {dataset}
permission:
  - action: aggregate
    constraint:
      purpose: {{isA: research}}
      recipientRole: {{eq: researcher}}
"""


def default_emergency_agreement(node_id: str, dataset: str) -> str:
    """The standing emergency agreement a node starts with: clinicians of any hospital of the
    data space may look up a patient's summary here under break-the-glass; the hospital is
    informed of each look-up, and nothing is copied or passed on."""
    return f"""\
# Who may look up a patient's summary here in an emergency, agreed in advance so that a look-up
# never waits. Name the hospitals with `recipient: {{isAnyOf: [hospital-b, ...]}}` to narrow it;
# delete this file to answer no emergency look-up.
uid: urn:medspace:{node_id}:emergency-agreement
type: Set
title: Emergency look-ups by the data space's clinicians
assigner: {node_id}
target: {dataset}
permission:
  - action: lookup
    constraint:
      purpose: {{isA: emergency}}
      recipientRole: {{eq: clinician}}
    duty:
      - action: inform
prohibition:
  - action: [distribute, reproduce]
"""
