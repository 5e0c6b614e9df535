"""What a party trusts about the log: its key, the witnesses' keys and the quorum.

All of it comes from one policy file (see ``quorum``), which every verifier, node and
regulator holds independently of the operator. ``check_witnessed`` is the one place that
decides whether a checkpoint counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from medspace.ledger.checkpoint import Checkpoint, CheckpointError, open_checkpoint
from medspace.ledger.cosignature import (
    Cosigners,
    CosignerVerifier,
    cosigners_of,
    parse_cosigner_vkey,
)
from medspace.ledger.note import NoteError, Verifier, parse_note, parse_vkey
from medspace.ledger.quorum import Policy, PolicyError, parse_policy


class TrustError(ValueError):
    """A checkpoint does not meet the trust policy, or the policy itself is unusable."""


@dataclass(frozen=True)
class Trust:
    """The log key, the witness keys and the quorum they must reach."""

    log: Verifier
    witnesses: tuple[CosignerVerifier, ...]
    policy: Policy

    @classmethod
    def from_policy(cls, policy: Policy, origin: str | None = None) -> Trust:
        """The trust in the one log of ``policy`` (or the one named ``origin``)."""
        try:
            logs = [parse_vkey(log.key) for log in policy.logs]
            witnesses = tuple(parse_cosigner_vkey(w.key) for w in policy.witnesses)
        except NoteError as exc:
            raise TrustError(f"policy key: {exc}") from None
        if origin is not None:
            logs = [log for log in logs if log.name == origin]
        if len(logs) != 1:
            raise TrustError(
                "the policy must name exactly one log"
                + ("" if origin is None else f" with origin {origin!r}")
                + f"; it names {len(logs)}"
            )
        return cls(logs[0], witnesses, policy)

    @classmethod
    def load(cls, path: Path, origin: str | None = None) -> Trust:
        """Read a policy file; raises TrustError naming the file and what is wrong."""
        try:
            return cls.from_policy(parse_policy(path.read_text(encoding="utf-8")), origin)
        except (OSError, UnicodeDecodeError) as exc:
            raise TrustError(f"cannot read the policy {path}: {exc}") from None
        except (PolicyError, TrustError) as exc:
            raise TrustError(f"policy {path}: {exc}") from None

    def check_signed(self, note: str) -> Checkpoint:
        """The checkpoint in ``note`` if the log signed it; TrustError otherwise."""
        try:
            return open_checkpoint(note, self.log)
        except (NoteError, CheckpointError) as exc:
            raise TrustError(str(exc)) from None

    def cosigners(self, note: str) -> Cosigners:
        """Which trusted witnesses validly cosigned ``note``."""
        try:
            return cosigners_of(parse_note(note), self.witnesses)
        except (NoteError, CheckpointError) as exc:
            raise TrustError(str(exc)) from None

    def check_witnessed(self, note: str) -> Checkpoint:
        """The checkpoint in ``note`` if the log signed it and a quorum cosigned it."""
        checkpoint = self.check_signed(note)
        cosigned = set(self.cosigners(note).valid)
        if not self.policy.satisfied(cosigned):
            raise TrustError(f"not witnessed by a quorum: {self.policy.explain(cosigned)}")
        return checkpoint
