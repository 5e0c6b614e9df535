"""The messages hub and nodes exchange, defined once for both sides (DESIGN §5).

Every message is a pydantic model that refuses unknown fields; it travels as the body of a
``SignedMessage``. Times are integer Unix milliseconds so that canonical JSON never meets a
float. A task's kind and query are kept open here on purpose: a node must be able to read a
task of a kind it does not know, in order to refuse it with a logged reason.
"""

from __future__ import annotations

import hashlib
import time
from typing import Annotated, Any, Literal, Self

import rfc8785
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from medspace.wire.signing import SignedMessage

ID = r"^[a-z0-9][a-z0-9._:-]{0,127}$"
HEX32 = r"^[0-9a-f]{32}$"

TASK_KIND = "task"
RESULT_KIND = "result"
POLL_KIND = "poll"
EVENT_KIND = "event"
APPROVAL_KIND = "approval"
COSIGNATURE_KIND = "cosignature"
DATASET_KIND = "dataset"
WITHDRAWAL_KIND = "withdrawal"
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
    """A node's decision on a study, which the hub logs and honours; an approval carries the
    ODRL Agreement (JSON-LD) the hospital made, signed with the rest by the node."""

    study: str = Field(pattern=ID)
    node: str = Field(pattern=ID)
    decision: Literal["permit", "deny"]
    reason: str | None = Field(default=None, max_length=500)
    decided_by: str = Field(pattern=ID)
    agreement: dict[str, Any] | None = None


class Withdrawal(_Message):
    """A researcher withdrawing their own study: no further task of it goes out."""

    study: str = Field(pattern=ID)
    reason: str = Field(min_length=1, max_length=500)


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


CATEGORY = r"^[A-Z][0-9]{2}$"
MONTH = r"^[0-9]{4}-(0[1-9]|1[0-2])$"
MIN_CELL_FLOOR = 5
"""The smallest minimum cell an offer may state (DESIGN §6)."""
MAX_EPSILON = 10.0
MAX_CATEGORIES = 2600
"""Letters times two digits: every ICD-10 category or ATC group there could be."""
MAX_POLICY_BYTES = 64 * 1024
Share = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
NoisyCount = Annotated[int, Field(ge=0, lt=2**63)]


class OfferNoise(_Message):
    """How an offer's figures were made differentially private, so that a reader can weigh
    them: discrete Laplace noise, ε per figure and in total (basic composition), and the
    bounds on what one person contributes that make those ε hold."""

    mechanism: Literal["discrete-laplace"] = "discrete-laplace"
    epsilon: float = Field(gt=0, le=MAX_EPSILON, allow_inf_nan=False)
    delta: Share
    persons_epsilon: float = Field(gt=0, allow_inf_nan=False)
    rows_epsilon: float = Field(gt=0, allow_inf_nan=False)
    """Spent on each table's row count."""
    rows_per_person: int = Field(ge=1, le=1_000_000)
    """A table's count takes at most this many rows of one person."""
    categories_epsilon: float = Field(gt=0, allow_inf_nan=False)
    """Spent on the condition categories, and again on the drug groups."""
    categories_delta: Share
    categories_per_person: int = Field(ge=1, le=MAX_CATEGORIES)
    category_threshold: int = Field(ge=MIN_CELL_FLOOR)
    """The noisy person count a category needed to be listed."""
    min_cell: int = Field(ge=MIN_CELL_FLOOR)


class OfferRisk(_Message):
    """The summary of the re-identification risk of the person table's quasi-identifiers."""

    quasi_identifiers: list[Annotated[str, Field(pattern=r"^[a-z_]{1,32}$")]] = Field(
        max_length=16)
    k_anonymity: int = Field(ge=0)
    records_at_risk: Share
    """The share of persons in an equivalence class smaller than ``1 / threshold``."""
    sample_uniqueness: Share
    threshold: float = Field(gt=0, le=1, allow_inf_nan=False)


class OfferPeriod(_Message):
    """The months the dataset covers, each end held by at least the minimum cell of persons."""

    start: str = Field(pattern=MONTH)
    end: str = Field(pattern=MONTH)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.start > self.end:
            raise ValueError("the period ends before it starts")
        return self


class DatasetOffer(_Message):
    """A hospital's dataset as the catalog shows it, signed by the hospital's node.

    Every figure is a differentially private count or a summary of at least the minimum cell
    of persons; no record's value is in it. ``policy`` is the usage policy offered with the
    dataset, as ODRL JSON-LD of type Offer.
    """

    dataset: str = Field(pattern=ID)
    node: str = Field(pattern=ID)
    title: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=2000)
    published_at: int = Field(ge=0)
    jurisdiction: str | None = Field(default=None, pattern=r"^[A-Z]{2}(-[A-Z0-9]{1,3})?$")
    persons: NoisyCount
    rows: dict[Annotated[str, Field(pattern=r"^[a-z][a-z_]{0,31}$")], NoisyCount] = Field(
        max_length=32)
    code_systems: list[Literal["ICD-10", "ATC", "LOINC"]] = Field(max_length=3)
    conditions: dict[Annotated[str, Field(pattern=CATEGORY)], NoisyCount] = Field(
        max_length=MAX_CATEGORIES)
    """ICD-10 category → noisy count of persons with a condition in it."""
    drugs: dict[Annotated[str, Field(pattern=CATEGORY)], NoisyCount] = Field(
        max_length=MAX_CATEGORIES)
    """ATC group (3 characters) → noisy count of persons with a drug exposure in it."""
    period: OfferPeriod | None = None
    deid_profile: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")
    risk: OfferRisk
    noise: OfferNoise
    policy: dict[str, Any]

    @field_validator("policy")
    @classmethod
    def _bounded_policy(cls, policy: dict[str, Any]) -> dict[str, Any]:
        try:
            size = len(rfc8785.dumps(policy))
        except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
            raise ValueError(f"the policy is not canonical JSON: {exc}") from None
        if size > MAX_POLICY_BYTES:
            raise ValueError(f"the policy is longer than {MAX_POLICY_BYTES} bytes")
        return policy

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if len(set(self.code_systems)) != len(self.code_systems):
            raise ValueError("a code system is named twice")
        noise = self.noise
        spent = (noise.persons_epsilon + noise.rows_epsilon * len(self.rows)
                 + 2 * noise.categories_epsilon)
        if spent > noise.epsilon * (1 + 1e-9):
            raise ValueError(f"the figures spend ε {spent:g}, more than the {noise.epsilon:g} "
                             "the offer states")
        if 2 * noise.categories_delta > noise.delta * (1 + 1e-9):
            raise ValueError("the categories spend more δ than the offer states")
        if noise.category_threshold < noise.min_cell:
            raise ValueError("the category threshold is below the minimum cell")
        small = sorted(code for code, persons in (*self.conditions.items(),
                                                  *self.drugs.items())
                       if persons < noise.category_threshold)
        if small:
            raise ValueError(f"categories below the threshold are listed: {', '.join(small)}")
        return self
