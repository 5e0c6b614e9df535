"""Checkpoints (c2sp.org/tlog-checkpoint): the signed tree head of the audit log.

A checkpoint is a signed note whose text is exactly::

    <origin>\\n<tree size>\\n<base64 root hash>\\n[<extension line>\\n ...]

Parsing is strict, one text per checkpoint: a size with leading zeros or a root in non-canonical
base64 would let two different texts, hence two different signatures and cosignatures, stand
for the same tree head.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass

from medspace.ledger.note import (
    MAX_NOTE_SIZE,
    SignedNote,
    Signer,
    Verifier,
    decode_base64,
    format_note,
    parse_note,
    verify_note,
)

HASH_SIZE = 32
"""Size of an RFC 9162 SHA-256 Merkle tree hash."""
MAX_TREE_SIZE = (1 << 64) - 1
"""Largest tree size: the other implementations (Go tlog, sigsum) parse sizes as uint64."""

_SIZE = re.compile(r"0|[1-9][0-9]{0,19}")


class CheckpointError(ValueError):
    """A checkpoint text is malformed, or does not name the expected origin."""


@dataclass(frozen=True)
class Checkpoint:
    """A tree head: the log's origin, its size and root hash, and optional extension lines."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for line in (self.origin, *self.extensions):
            _check_line(line)
        if type(self.size) is not int or not 0 <= self.size <= MAX_TREE_SIZE:
            raise CheckpointError(f"tree size {self.size!r} is not an integer in [0, 2^64)")
        if not isinstance(self.root, bytes) or len(self.root) != HASH_SIZE:
            raise CheckpointError(f"root hash {self.root!r} is not {HASH_SIZE} bytes")


def _check_line(line: str) -> None:
    """Every line is non-empty, and a valid note line (no control characters)."""
    if not line:
        raise CheckpointError("checkpoint has an empty line")
    bad = next((c for c in line if c < " "), None)
    if bad is not None:
        raise CheckpointError(f"checkpoint line {line[:80]!r} contains control character {bad!r}")


def format_checkpoint(cp: Checkpoint) -> str:
    """Return the checkpoint's note text, final newline included."""
    root = base64.b64encode(cp.root).decode("ascii")
    return "".join(f"{line}\n" for line in (cp.origin, str(cp.size), root, *cp.extensions))


def parse_checkpoint(text: str) -> Checkpoint:
    """Parse a checkpoint note text. Raises CheckpointError on any deviation from the spec."""
    if len(text) > MAX_NOTE_SIZE:
        raise CheckpointError(f"checkpoint is longer than {MAX_NOTE_SIZE} characters")
    if not text.endswith("\n"):
        raise CheckpointError("checkpoint does not end with a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise CheckpointError(f"checkpoint has {len(lines)} lines, want at least 3")
    for line in lines:
        _check_line(line)
    origin, size, root, *extensions = lines
    if not _SIZE.fullmatch(size):
        raise CheckpointError(f"tree size {size[:80]!r} is not a decimal without leading zeros")
    try:
        root_hash = decode_base64(root)
    except ValueError as e:
        raise CheckpointError(f"root hash: {e}") from None
    return Checkpoint(origin, int(size), root_hash, tuple(extensions))


def sign_checkpoint(cp: Checkpoint, signer: Signer) -> str:
    """Return the checkpoint as a note signed by the log's key.

    The spec says the key name SHOULD be the origin; :func:`open_checkpoint` expects that by
    default.
    """
    text = format_checkpoint(cp)
    return format_note(SignedNote(text, [signer.sign(text)]))


def open_checkpoint(
    note: str | bytes, log_verifier: Verifier, *, origin: str | None = None
) -> Checkpoint:
    """Return the checkpoint in a note after checking the log's signature on it.

    Other signatures (witness cosignatures, rotated keys) are ignored. The origin must equal
    ``origin``, by default the log key's name, so that a checkpoint of another log signed with
    the same key is not taken for one of this log. Raises NoteError if the note is malformed or
    not validly signed by the log key, CheckpointError if its text is not a checkpoint of the
    expected origin.
    """
    signed = parse_note(note)
    verify_note(signed, [log_verifier])
    cp = parse_checkpoint(signed.text)
    want = log_verifier.name if origin is None else origin
    if cp.origin != want:
        raise CheckpointError(f"checkpoint origin {cp.origin!r} is not {want!r}")
    return cp
