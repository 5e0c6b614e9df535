"""The messages hub and nodes exchange, defined once for both sides (DESIGN §5).

Every message is a pydantic model that refuses unknown fields; it travels as the body of a
``SignedMessage``. Times are integer Unix milliseconds so that canonical JSON never meets a
float. A task's kind and query are kept open here on purpose: a node must be able to read a
task of a kind it does not know, in order to refuse it with a logged reason.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any, Literal

import rfc8785
from pydantic import BaseModel, ConfigDict, Field

from medspace.wire.signing import SignedMessage

ID = r"^[a-z0-9][a-z0-9._:-]{0,127}$"
HEX32 = r"^[0-9a-f]{32}$"

TASK_KIND = "task"
RESULT_KIND = "result"
POLL_KIND = "poll"
EVENT_KIND = "event"
APPROVAL_KIND = "approval"
COSIGNATURE_KIND = "cosignature"
MAX_OUTBOX = 64


def now_ms() -> int:
    """The current time as integer Unix milliseconds."""
    return time.time_ns() // 1_000_000


def digest(body: dict[str, Any]) -> str:
    """``sha256:<hex>`` of a JSON object's canonical bytes: how the log refers to a message."""
    return "sha256:" + hashlib.sha256(rfc8785.dumps(body)).hexdigest()


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Receipt(_Message):
    """A log entry with its inclusion proof and a cosigned checkpoint (``ledger.receipt``)."""

    format: Literal["medspace-receipt/v1"] = "medspace-receipt/v1"
    origin: str
    index: int = Field(ge=0)
    entry: str
    proof: list[str] = Field(max_length=63)
    checkpoint: str = Field(max_length=64 * 1024)


class TaskCore(_Message):
    """What a task asks: the part the hub's ``task.dispatched`` log entry is a digest of."""

    id: str = Field(pattern=HEX32)
    kind: str = Field(min_length=1, max_length=64)
    study: str = Field(pattern=ID)
    node: str = Field(pattern=ID)
    issued_at: int = Field(ge=0)
    expires_at: int = Field(ge=0)
    nonce: str = Field(pattern=HEX32)
    query: dict[str, Any]


class Task(_Message):
    """A task for one node: what it asks, and the proof that the asking is in the log."""

    core: TaskCore
    authorization: Receipt


class TaskResult(_Message):
    """A node's answer to a task: a released aggregate, or a refusal with its reason."""

    task: str = Field(pattern=HEX32)
    node: str = Field(pattern=ID)
    status: Literal["released", "refused"]
    reason: str | None = Field(default=None, max_length=500)
    payload: dict[str, Any] | None = None
    payload_digest: str | None = None
    journal_index: int | None = Field(default=None, ge=0)
    event: str = Field(max_length=16_384)
    """The audit event of this release or refusal (base64 of its canonical bytes): the hub
    logs it before it takes the result."""


class Poll(_Message):
    """A node asking for its work, or for checkpoints its witness should cosign.

    Signed and fresh, so no one else can take a node's tasks. The two channels are polled
    separately so that the hospital's witness keeps answering while its node is busy computing.
    """

    node: str = Field(pattern=ID)
    channel: Literal["work", "witness"]
    sent_at: int = Field(ge=0)
    nonce: str = Field(pattern=HEX32)


class PollRequest(BaseModel):
    """What a node sends to ``/v1/poll``: its signed poll, and the signed messages it has for
    the hub on that channel (approvals, results, cosignatures), each checked as if posted alone.

    Carrying a node's answers on its next poll halves the requests a study costs.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    poll: SignedMessage
    outbox: list[SignedMessage] = Field(default_factory=list, max_length=MAX_OUTBOX)


class Approval(_Message):
    """A node's decision on a study, which the hub logs and honours."""

    study: str = Field(pattern=ID)
    node: str = Field(pattern=ID)
    decision: Literal["permit", "deny"]
    reason: str | None = Field(default=None, max_length=500)
    decided_by: str = Field(pattern=ID)


class StudyRequest(_Message):
    """A researcher's study: a question for some hospitals, and what to do if some are silent."""

    title: str = Field(min_length=1, max_length=200)
    purpose: Literal["research", "public-health", "commercial", "emergency"] = "research"
    kind: str = Field(min_length=1, max_length=64)
    query: dict[str, Any]
    nodes: list[str] | None = None
    on_missing: Literal["partial", "fail"] = "partial"
    min_nodes: int = Field(default=1, ge=1)
    deadline_seconds: float = Field(default=60.0, gt=0, le=86_400)
