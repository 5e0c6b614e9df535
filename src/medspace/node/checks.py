"""The checks a node makes on a task before it touches its data (DESIGN §3.2 and §3.3).

The node trusts nothing the hub says: the task must carry the hub's signature under the key the
node pinned when it joined, be addressed to this node, be fresh, and come with a receipt that
proves the hub logged this very task (its digest) in a checkpoint a quorum of witnesses
cosigned. Each failed check is a refusal with a reason in plain words.
"""

from __future__ import annotations

from pydantic import ValidationError

from medspace.ledger.checkpoint import Checkpoint
from medspace.ledger.events import EventError, parse_event
from medspace.ledger.receipt import ReceiptError, verify_receipt
from medspace.ledger.trust import Trust
from medspace.wire.messages import TASK_KIND, Task, digest
from medspace.wire.signing import SignatureError, SignedMessage, verify_message

MAX_CLOCK_SKEW_MS = 120_000
MAX_TASK_LIFETIME_MS = 24 * 3600 * 1000


class TaskRefused(ValueError):
    """The node refuses the task; ``reason`` is logged and sent back."""

    def __init__(self, reason: str, task_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.task_id = task_id


def open_task(message: SignedMessage, hub_key: bytes, node: str, now_ms: int) -> Task:
    """The task in ``message`` if the hub signed it for this node and it is still fresh."""
    try:
        body = verify_message(message, TASK_KIND, hub_key)
    except SignatureError:
        raise TaskRefused("the task is not signed by the hub's key") from None
    try:
        task = Task.model_validate(body)
    except ValidationError:
        raise TaskRefused("the task is malformed") from None
    core = task.core
    if core.node != node:
        raise TaskRefused(f"the task is addressed to {core.node}, not this node", core.id)
    if core.issued_at > now_ms + MAX_CLOCK_SKEW_MS:
        raise TaskRefused("the task was issued in the future; check the clocks", core.id)
    if core.expires_at <= now_ms:
        raise TaskRefused("the task has expired", core.id)
    if core.expires_at - core.issued_at > MAX_TASK_LIFETIME_MS:
        raise TaskRefused("the task's lifetime is longer than a day", core.id)
    return task


def check_authorization(task: Task, trust: Trust) -> Checkpoint:
    """The witnessed checkpoint proving the hub logged this task's dispatch before sending it."""
    task_id = task.core.id
    try:
        entry = verify_receipt(task.authorization.model_dump(), trust)
        event = parse_event(entry)
    except (ReceiptError, EventError) as exc:
        raise TaskRefused(f"the task's authorisation is not in the witnessed log: {exc}",
                          task_id) from None
    if (str(event.action), event.subject) != ("task.dispatched", f"task:{task_id}"):
        raise TaskRefused("the log entry the task cites is not its dispatch", task_id)
    if event.payload_digest != digest(task.core.model_dump()):
        raise TaskRefused("the task differs from the one the hub logged", task_id)
    return trust.check_witnessed(task.authorization.checkpoint)
