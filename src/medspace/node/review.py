"""A hospital's decision on a study: recorded once, journalled, then sent by the agent.

A study reaches the node on its agent's poll and waits in ``node.db``. Either the hospital's
standing approval rule decides it at once (``auto-approval.yaml``), or a person does with
``medspace node studies approve|deny`` — in another process, while the node runs: the agent
sends the decision with its next poll. The first decision stands. Each decision goes into the
node's journal (``study.approved`` / ``study.refused``) under the deciding person's id; the hub
logs it again when the signed approval reaches it. An agreed study can be revoked later
(``study.revoked``, which the agent passes on to the hub's log).
"""

from __future__ import annotations

import datetime as dt
import re

from medspace.ledger.events import Action, new_event
from medspace.ledger.log import TransparencyLog
from medspace.node.governance import Governance, NotAllowed
from medspace.node.state import NodeState, StudyRecord
from medspace.policy.odrl import to_jsonld
from medspace.wire.messages import ID

__all__ = ["ReviewError", "decide_study", "revoke_study"]

_DECISIONS = {"permit": Action.STUDY_APPROVED, "deny": Action.STUDY_REFUSED}


class ReviewError(ValueError):
    """A decision that cannot be recorded; the message says why."""


def _staff(decided_by: str) -> None:
    if re.fullmatch(ID, decided_by) is None:
        raise ReviewError(f"{decided_by!r} is not a staff id (lower-case letters, digits, "
                          "'.', '_' and '-')")


def decide_study(state: NodeState, journal: TransparencyLog, rules: Governance, *,
                 study: str, decision: str, decided_by: str, reason: str | None,
                 now: dt.datetime) -> StudyRecord:
    """Record and journal the hospital's decision on an offered study; return the study.

    An approval makes the study's agreement under the hospital's usage policy
    (:meth:`Governance.agreement_for`). Raises :class:`ReviewError` for a study never offered,
    one already decided, a decision other than ``permit`` or ``deny``, a refusal without a
    reason, a decider id that is not a plain id (a staff id, never a name), or an approval the
    usage policy would not honour.
    """
    if decision not in _DECISIONS:
        raise ReviewError(f"a decision is permit or deny, not {decision!r}")
    _staff(decided_by)
    if decision == "deny" and not (reason and reason.strip()):
        raise ReviewError("a refusal needs a reason: the researcher is told it")
    offered = state.study(study)
    if offered is None:
        raise ReviewError(f"no study {study} has been offered to this hospital")
    agreement = None
    if decision == "permit" and offered.decision is None:
        try:
            agreement = to_jsonld(rules.agreement_for(offered.as_offered(), now))
        except NotAllowed as exc:
            raise ReviewError(f"{study} cannot be approved: {exc}") from None
    changed = state.decide(study, decision, decided_by, reason, int(now.timestamp() * 1000),
                           agreement)
    record = state.study(study)
    if record is None:
        raise ReviewError(f"no study {study} has been offered to this hospital")
    if not changed:
        raise ReviewError(f"{study} was already decided: {record.decision} by "
                          f"{record.decided_by}")
    journal.record(new_event(
        actor=rules.node, org=rules.node, role="hospital", action=_DECISIONS[decision],
        subject=f"study:{study}", decision=decision,
        purpose=str(record.request.get("purpose", "research")),
        reason=f"decided by {decided_by}" + (f": {reason}" if reason else ""), now=now))
    return record


def revoke_study(state: NodeState, journal: TransparencyLog, rules: Governance, *, study: str,
                 revoked_by: str, reason: str, now: dt.datetime) -> None:
    """Withdraw an agreed study: no task of it runs here from now on. Journalled, and passed
    on to the hub's log by the agent. Raises :class:`ReviewError` unless the study is agreed."""
    _staff(revoked_by)
    if not reason.strip():
        raise ReviewError("a revocation needs a reason: the researcher is told it")
    if not state.revoke(study, revoked_by, reason, int(now.timestamp() * 1000)):
        record = state.study(study)
        status = "never offered here" if record is None else record.status
        raise ReviewError(f"{study} is not an agreed study ({status}); nothing to revoke")
    journal.record(new_event(
        actor=rules.node, org=rules.node, role="hospital", action=Action.STUDY_REVOKED,
        subject=f"study:{study}", decision="deny",
        reason=f"revoked by {revoked_by}: {reason}", now=now))
