"""The agreement a hospital makes when it approves a study: its usage policy, narrowed to this
researcher and this study, with an end.

In the Dataspace Protocol a negotiation ends in an ODRL *Agreement*: the provider's offer with
the consumer named as assignee. A node makes one the moment it approves a study — assigner the
hospital, assignee the researcher, target the dataset, the permissions of its usage policy for
the study's action, each bounded by the agreement's end (``dateTime lt``) — and keeps it with the
study. Every task of the study is then checked against both the agreement and the hospital's
current usage policy: an agreement past its end refuses, and a policy the hospital tightened
since applies at once.

The study's life at the node: *offered* → *agreed* (approved, with its agreement) or *refused*;
an agreed study ends *expired* when its agreement does, or *revoked* when the hospital
withdraws it (``medspace node studies revoke``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from medspace.policy.odrl import Constraint, Policy

__all__ = ["AGREEMENT_DAYS", "ends", "make_agreement"]

AGREEMENT_DAYS = 365
"""How long an agreement lasts unless the node's ``node.json`` says otherwise
(``agreement_days``)."""


def make_agreement(usage_policy: Policy, *, study: Mapping[str, Any], node_id: str,
                   action: str, agreed_at: dt.datetime, days: int = AGREEMENT_DAYS) -> Policy:
    """The agreement for ``study`` under ``usage_policy``: its permissions for ``action`` (or
    ``use``), for the study's researcher, ending ``days`` after ``agreed_at``; its prohibitions
    and obligations as they are."""
    ends = agreed_at + dt.timedelta(days=days)
    until = Constraint(left_operand="dateTime", operator="lt",
                       right_operand=ends.isoformat(timespec="seconds"))
    permissions = tuple(
        rule.model_copy(update={"constraints": (*rule.constraints, until)})
        for rule in usage_policy.permissions if action in rule.actions or "use" in rule.actions
    )
    return usage_policy.model_copy(update={
        "uid": f"urn:medspace:agreement:{study['id']}:{node_id}",
        "type": "Agreement",
        "title": f"Agreement for {study['id']}",
        "assigner": node_id,
        "assignee": str(study.get("researcher", "")),
        "permissions": permissions,
    })


def ends(agreement: Policy) -> dt.datetime | None:
    """When the agreement ends: the earliest ``dateTime lt`` bound of its permissions."""
    bounds = [dt.datetime.fromisoformat(str(c.right_operand))
              for rule in agreement.permissions for c in rule.constraints
              if c.left_operand == "dateTime" and c.operator == "lt"]
    return min(bounds, default=None)

