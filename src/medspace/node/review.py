"""A hospital's decision on a study: recorded once, journalled, then sent by the agent.

A study reaches the node on its agent's poll and waits in ``node.db``. Either the hospital's
standing approval rule decides it at once (``auto-approval.yaml``), or a person does with
``medspace node studies approve|deny`` — in another process, while the node runs: the agent
sends the decision with its next poll. The first decision stands. Each decision goes into the
node's journal (``study.approved`` / ``study.refused``) under the deciding person's id; the hub
logs it again when the signed approval reaches it.
"""

from __future__ import annotations

import datetime as dt
import re

from medspace.ledger.events import Action, new_event
from medspace.ledger.log import TransparencyLog
from medspace.node.state import NodeState, StudyRecord
from medspace.wire.messages import ID

__all__ = ["ReviewError", "decide_study"]

_DECISIONS = {"permit": Action.STUDY_APPROVED, "deny": Action.STUDY_REFUSED}


class ReviewError(ValueError):
    """A decision that cannot be recorded; the message says why."""


def decide_study(state: NodeState, journal: TransparencyLog, *, node_id: str, study: str,
                 decision: str, decided_by: str, reason: str | None,
                 now: dt.datetime) -> StudyRecord:
    """Record and journal the hospital's decision on an offered study; return the study.

    Raises :class:`ReviewError` for a study never offered, one already decided, a decision
    other than ``permit`` or ``deny``, a refusal without a reason, or a decider id that is not
    a plain id (a staff id, never a name).
    """
    if decision not in _DECISIONS:
        raise ReviewError(f"a decision is permit or deny, not {decision!r}")
    if re.fullmatch(ID, decided_by) is None:
        raise ReviewError(f"{decided_by!r} is not a staff id (lower-case letters, digits, "
                          "'.', '_' and '-')")
    if decision == "deny" and not (reason and reason.strip()):
        raise ReviewError("a refusal needs a reason: the researcher is told it")
    try:
        changed = state.decide(study, decision, decided_by, reason, int(now.timestamp() * 1000))
    except LookupError as exc:
        raise ReviewError(str(exc)) from None
    record = state.study(study)
    if record is None:
        raise ReviewError(f"no study {study} has been offered to this hospital")
    if not changed:
        raise ReviewError(f"{study} was already decided: {record.decision} by "
                          f"{record.decided_by}")
    journal.record(new_event(
        actor=node_id, org=node_id, role="hospital", action=_DECISIONS[decision],
        subject=f"study:{study}", decision=decision,
        purpose=str(record.request.get("purpose", "research")),
        reason=f"decided by {decided_by}" + (f": {reason}" if reason else ""), now=now))
    return record
