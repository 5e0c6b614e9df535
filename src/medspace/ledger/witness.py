"""A witness of the audit log (c2sp.org/tlog-witness semantics).

A witness remembers, for every log it follows, the newest checkpoint it cosigned. It cosigns a
newer one only when handed a consistency proof from exactly that checkpoint, so no two
checkpoints it cosigned can ever disagree: a log that shows one history to some parties and
another to others (a fork) cannot get both witnessed by the same honest witness. Checking the
old size and storing the new checkpoint happen in one locked transaction, so concurrent
requests cannot roll the state back. A refused checkpoint that the log validly signed is kept
as evidence: two signed checkpoints that cannot both be true prove the log misbehaved.
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from medspace.ledger import merkle
from medspace.ledger.checkpoint import Checkpoint, CheckpointError, parse_checkpoint
from medspace.ledger.cosignature import Cosigner, cosign
from medspace.ledger.note import (
    NoteError,
    Verifier,
    decode_base64,
    format_signature,
    parse_note,
    verify_note,
)
from medspace.sqldb import read_only

MAX_REQUEST_BYTES = 1 << 20
_OLD_SIZE = re.compile(r"old (0|[1-9][0-9]{0,19})")

metadata = sa.MetaData()
state_table = sa.Table(
    "witness_state",
    metadata,
    sa.Column("origin", sa.String(255), primary_key=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("root", sa.LargeBinary(32), nullable=False),
    sa.Column("note", sa.Text, nullable=False),
    sa.Column("updated", sa.Float, nullable=False),
)
evidence_table = sa.Table(
    "witness_evidence",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("origin", sa.String(255), nullable=False),
    sa.Column("received", sa.Float, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("note", sa.Text, nullable=False),
    sa.Column("held_note", sa.Text, nullable=True),
)


class WitnessRefusal(Exception):
    """The witness will not cosign; ``status`` is the tlog-witness HTTP status to answer with."""

    def __init__(
        self, status: int, reason: str, size: int | None = None, held_note: str | None = None
    ) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.size = size
        self.held_note = held_note
        """For a refusal that proves log misbehaviour: the checkpoint the witness holds."""


@dataclass(frozen=True)
class WitnessedState:
    """The newest checkpoint a witness cosigned for one log."""

    origin: str
    size: int
    root: bytes
    note: str


@dataclass(frozen=True)
class Evidence:
    """A validly signed checkpoint the witness refused, and the reason."""

    origin: str
    received: float
    reason: str
    note: str
    held_note: str | None


@dataclass(frozen=True)
class AddCheckpointRequest:
    """The parsed body of an ``add-checkpoint`` request."""

    old_size: int
    proof: list[bytes]
    note: str


def parse_add_checkpoint(body: bytes) -> AddCheckpointRequest:
    """Parse ``old N``, proof lines, a blank line and a signed checkpoint; 400 on any fault."""
    if len(body) > MAX_REQUEST_BYTES:
        raise WitnessRefusal(400, f"request is larger than {MAX_REQUEST_BYTES} bytes")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise WitnessRefusal(400, "request is not UTF-8") from None
    head, sep, note = text.partition("\n\n")
    if not sep:
        raise WitnessRefusal(400, "request has no blank line before the checkpoint")
    lines = head.split("\n")
    match = _OLD_SIZE.fullmatch(lines[0])
    if match is None:
        raise WitnessRefusal(400, f"first line {lines[0][:40]!r} is not 'old <size>'")
    if len(lines) - 1 > merkle.MAX_PROOF_HASHES:
        raise WitnessRefusal(400, f"more than {merkle.MAX_PROOF_HASHES} consistency proof lines")
    proof = []
    for i, line in enumerate(lines[1:]):
        try:
            proof.append(decode_base64(line))
        except ValueError as exc:
            raise WitnessRefusal(400, f"consistency proof line {i}: {exc}") from None
    return AddCheckpointRequest(int(match.group(1)), proof, note)


def format_add_checkpoint(old_size: int, proof: Iterable[bytes], note: str) -> bytes:
    """The body of an ``add-checkpoint`` request, as a log sends it."""
    lines = [f"old {old_size}"] + [base64.b64encode(h).decode("ascii") for h in proof]
    return ("\n".join(lines) + "\n\n" + note).encode("utf-8")


def held_checkpoint(engine: Engine, origin: str) -> WitnessedState | None:
    """The newest checkpoint of ``origin`` recorded in a witness's database, if any.

    A regulator reads this straight from its own witness's database to verify the log.
    """
    metadata.create_all(engine)
    with read_only(engine).connect() as conn:
        row = conn.execute(sa.select(state_table).where(state_table.c.origin == origin)).first()
    if row is None:
        return None
    return WitnessedState(row.origin, row.size, bytes(row.root), row.note)


class Witness:
    """Cosigns checkpoints of the logs it follows, never two that disagree."""

    def __init__(self, engine: Engine, cosigner: Cosigner, logs: Iterable[Verifier]) -> None:
        self.engine = engine
        self._reader = read_only(engine)
        self.cosigner = cosigner
        self.logs = {log.name: log for log in logs}
        metadata.create_all(engine)

    @property
    def name(self) -> str:
        """The name the witness cosigns under."""
        return self.cosigner.name

    def state(self, origin: str) -> WitnessedState | None:
        """The newest checkpoint this witness cosigned for ``origin``."""
        return held_checkpoint(self.engine, origin)

    def evidence(self, origin: str | None = None) -> list[Evidence]:
        """Signed checkpoints this witness refused, oldest first."""
        query = sa.select(evidence_table).order_by(evidence_table.c.id)
        if origin is not None:
            query = query.where(evidence_table.c.origin == origin)
        with self._reader.connect() as conn:
            rows = conn.execute(query).all()
        return [Evidence(r.origin, r.received, r.reason, r.note, r.held_note) for r in rows]

    def add_checkpoint(self, body: bytes) -> str:
        """Handle an ``add-checkpoint`` request; return the cosignature lines to answer with.

        Raises WitnessRefusal with the tlog-witness status and the reason in plain words.
        """
        request = parse_add_checkpoint(body)
        checkpoint, text = self._open(request.note)
        if request.old_size > checkpoint.size:
            raise WitnessRefusal(
                400, f"old size {request.old_size} exceeds the checkpoint's {checkpoint.size}"
            )
        try:
            self._advance(checkpoint, request)
        except WitnessRefusal as refusal:
            if refusal.held_note is not None:
                self._keep_evidence(checkpoint.origin, refusal, request.note)
            raise
        return format_signature(cosign(text, self.cosigner))

    def _advance(self, checkpoint: Checkpoint, request: AddCheckpointRequest) -> None:
        with self.engine.begin() as conn:
            row = conn.execute(
                sa.select(state_table)
                .where(state_table.c.origin == checkpoint.origin)
                .with_for_update()
            ).first()
            held_size = 0 if row is None else row.size
            if request.old_size != held_size:
                raise WitnessRefusal(
                    409, f"the witness holds size {held_size}, not {request.old_size}", held_size
                )
            if row is not None:
                _check_consistent(row, checkpoint, request.proof)
            elif request.proof:
                raise WitnessRefusal(422, "a proof from size 0 must be empty")
            values = {
                "size": checkpoint.size,
                "root": checkpoint.root,
                "note": request.note,
                "updated": time.time(),
            }
            if row is None:
                conn.execute(state_table.insert().values(origin=checkpoint.origin, **values))
            else:
                conn.execute(
                    state_table.update()
                    .where(state_table.c.origin == checkpoint.origin)
                    .values(**values)
                )

    def _open(self, note: str) -> tuple[Checkpoint, str]:
        """The checkpoint in ``note`` and its text, once the log's signature is checked."""
        try:
            signed = parse_note(note)
            checkpoint = parse_checkpoint(signed.text)
        except (NoteError, CheckpointError) as exc:
            raise WitnessRefusal(400, f"not a signed checkpoint: {exc}") from None
        log = self.logs.get(checkpoint.origin)
        if log is None:
            raise WitnessRefusal(404, f"this witness does not follow the log {checkpoint.origin!r}")
        try:
            verify_note(signed, [log])
        except NoteError as exc:
            raise WitnessRefusal(403, f"checkpoint is not signed by the log's key: {exc}") from None
        return checkpoint, signed.text

    def _keep_evidence(self, origin: str, refusal: WitnessRefusal, note: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                evidence_table.insert().values(
                    origin=origin,
                    received=time.time(),
                    reason=refusal.reason,
                    note=note,
                    held_note=refusal.held_note,
                )
            )


def _check_consistent(row: sa.Row, checkpoint: Checkpoint, proof: list[bytes]) -> None:
    """Refuse ``checkpoint`` unless ``proof`` shows it extends the held one of ``row``."""
    held_root = bytes(row.root)
    if checkpoint.size == row.size:
        if checkpoint.root != held_root:
            raise WitnessRefusal(
                409, f"fork: the log signed another root for size {row.size}", row.size, row.note
            )
        if proof:
            raise WitnessRefusal(422, "a proof between equal sizes must be empty")
        return
    try:
        merkle.verify_consistency(row.size, checkpoint.size, proof, held_root, checkpoint.root)
    except merkle.ProofError as exc:
        raise WitnessRefusal(
            422, f"not consistent with the cosigned size {row.size}: {exc}", None, row.note
        ) from None
