"""Witness cosignatures of checkpoints (c2sp.org/tlog-cosignature, Ed25519 ``cosignature/v1``).

A witness that has checked a checkpoint is consistent with every earlier one it saw adds a note
signature line of its own. Its key id uses signature type 0x04, and the line's bytes after the
key id are ``timestamp (8 bytes, big-endian) || Ed25519 signature``, where the signed message is::

    cosignature/v1\\ntime <timestamp>\\n<checkpoint text>

The header keeps a cosignature from ever being valid as a plain note signature, and the time
says how recent the witness's view was.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from medspace.ledger.checkpoint import parse_checkpoint
from medspace.ledger.note import (
    ALG_COSIGNATURE_V1,
    Ed25519Key,
    NoteError,
    Signature,
    SignedNote,
    decode_vkey,
    encode_vkey,
    key_id,
)

MAX_TIMESTAMP = (1 << 63) - 1
"""Largest cosignature timestamp the spec allows."""

_TIMESTAMP_SIZE = 8
_ED25519_KEY_SIZE = 32
_ED25519_SIG_SIZE = 64


class CosignatureError(ValueError):
    """A cosignature is not a valid cosignature/v1 of the checkpoint by the given witness."""


def cosignature_message(checkpoint_text: str, timestamp: int) -> bytes:
    """Return the bytes a witness signs for ``checkpoint_text`` at ``timestamp``.

    Raises CheckpointError unless the text is a checkpoint, so a witness key never signs
    anything else, and ValueError for a timestamp outside [0, 2^63).
    """
    parse_checkpoint(checkpoint_text)
    if type(timestamp) is not int or not 0 <= timestamp <= MAX_TIMESTAMP:
        raise ValueError(f"timestamp {timestamp!r} is not an integer in [0, 2^63)")
    return f"cosignature/v1\ntime {timestamp}\n{checkpoint_text}".encode()


def _check_key(public_key: bytes) -> None:
    if len(public_key) != _ED25519_KEY_SIZE:
        raise NoteError(f"Ed25519 public key is {len(public_key)} bytes, want 32")


@dataclass(frozen=True)
class CosignerVerifier:
    """A trusted witness: its name and Ed25519 cosignature/v1 public key."""

    name: str
    public_key: bytes
    key_id: bytes = field(init=False, repr=False)

    def __post_init__(self) -> None:
        _check_key(self.public_key)
        object.__setattr__(self, "key_id", key_id(self.name, ALG_COSIGNATURE_V1, self.public_key))

    @property
    def vkey(self) -> str:
        """This key as a vkey string (signature type 0x04)."""
        return format_cosigner_vkey(self.name, self.public_key)

    def verify(self, text: str, signature: Signature) -> bool:
        """Report whether ``signature`` is this witness's cosignature of checkpoint ``text``.

        This makes a witness usable with :func:`medspace.ledger.note.verify_note`.
        """
        try:
            verify_cosignature(text, signature, self)
        except CosignatureError:
            return False
        return True


def format_cosigner_vkey(name: str, public_key: bytes) -> str:
    """Return the vkey of a witness key: ``<name>+<key id>+<base64(0x04 || key)>``."""
    _check_key(public_key)
    return encode_vkey(name, ALG_COSIGNATURE_V1, public_key)


def parse_cosigner_vkey(vkey: str) -> CosignerVerifier:
    """Parse a witness vkey. Raises NoteError unless its signature type is 0x04.

    A type 0x01 vkey names a plain note key; accepting it here would silently change its key id.
    """
    name, alg, public_key = decode_vkey(vkey)
    if alg != ALG_COSIGNATURE_V1:
        raise NoteError(f"vkey signature type is 0x{alg:02x}, want 0x04 (cosignature/v1)")
    _check_key(public_key)
    return CosignerVerifier(name, public_key)


class Cosigner(Ed25519Key):
    """A witness's Ed25519 cosigning key (signature type 0x04) and the name it cosigns under."""

    ALG = ALG_COSIGNATURE_V1

    def verifier(self) -> CosignerVerifier:
        """Return the verifier for this witness key."""
        return CosignerVerifier(self.name, self.public_key)

    def _sign(self, message: bytes) -> bytes:
        return self._key.sign(message)


def cosign(checkpoint_text: str, cosigner: Cosigner, timestamp: int | None = None) -> Signature:
    """Return the cosignature line of ``cosigner`` on a checkpoint text, dated ``timestamp``.

    ``timestamp`` is POSIX seconds, by default now. Checking consistency with earlier
    checkpoints before calling this is the caller's job: the signature asserts it.
    """
    ts = int(time.time()) if timestamp is None else timestamp
    sig = cosigner._key.sign(cosignature_message(checkpoint_text, ts))
    return Signature(cosigner.name, cosigner.key_id, ts.to_bytes(_TIMESTAMP_SIZE, "big") + sig)


def verify_cosignature(
    checkpoint_text: str, signature: Signature, cosigner: CosignerVerifier
) -> int:
    """Check a cosignature line against a witness key and return its timestamp.

    Raises CosignatureError if the line is not by this key (name or key id differ), is not
    timestamp || 64-byte signature, or does not verify over the checkpoint text. Whether the
    timestamp is plausible (not in the future, recent enough) is the caller's policy.
    """
    if (signature.name, signature.key_id) != (cosigner.name, cosigner.key_id):
        raise CosignatureError(
            f"signature by {signature.name}+{signature.key_id.hex()} "
            f"is not by {cosigner.name}+{cosigner.key_id.hex()}"
        )
    if len(signature.signature) != _TIMESTAMP_SIZE + _ED25519_SIG_SIZE:
        raise CosignatureError(
            f"cosignature of {signature.name} is {len(signature.signature)} bytes, want 72"
        )
    ts = int.from_bytes(signature.signature[:_TIMESTAMP_SIZE], "big")
    try:
        message = cosignature_message(checkpoint_text, ts)
    except ValueError as e:  # not a checkpoint, or a timestamp past 2^63 - 1
        raise CosignatureError(f"cosignature of {signature.name}: {e}") from None
    key = Ed25519PublicKey.from_public_bytes(cosigner.public_key)
    try:
        key.verify(signature.signature[_TIMESTAMP_SIZE:], message)
    except InvalidSignature:
        raise CosignatureError(f"cosignature of {signature.name} does not verify") from None
    return ts


@dataclass(frozen=True)
class Cosigners:
    """Which trusted witnesses cosigned a checkpoint.

    ``valid`` maps each witness with a verifying cosignature to its newest timestamp.
    ``invalid`` names trusted witnesses that have lines on the note none of which verify: not
    cosigned, but worth logging, since it means corruption, a forgery or a misconfigured key.
    """

    valid: dict[str, int]
    invalid: tuple[str, ...]


def cosigners_of(note: SignedNote, cosigners: Iterable[CosignerVerifier]) -> Cosigners:
    """Report which of ``cosigners`` validly cosigned the checkpoint in ``note``.

    Lines of unknown keys (the log's own signature, other witnesses) are ignored. Unlike
    :func:`medspace.ledger.note.verify_note`, a bad line from a trusted witness does not raise:
    anyone who can hand us a note can append such a line, and it must not cancel the good
    cosignatures that count towards a quorum. It is reported in ``invalid`` instead.
    Raises CheckpointError if the note's text is not a checkpoint, NoteError if two of
    ``cosigners`` are different keys with the same name and key id.
    """
    parse_checkpoint(note.text)
    known: dict[tuple[str, bytes], CosignerVerifier] = {}
    for v in cosigners:
        if known.setdefault((v.name, v.key_id), v) != v:
            raise NoteError(f"two cosigner keys share key {v.name}+{v.key_id.hex()}")
    valid: dict[str, int] = {}
    failed: list[str] = []
    for sig in note.signatures:
        v = known.get((sig.name, sig.key_id))
        if v is None:
            continue
        try:
            ts = verify_cosignature(note.text, sig, v)
        except CosignatureError:
            failed.append(sig.name)
            continue
        valid[sig.name] = max(ts, valid.get(sig.name, ts))
    invalid = tuple(dict.fromkeys(name for name in failed if name not in valid))
    return Cosigners(valid, invalid)
