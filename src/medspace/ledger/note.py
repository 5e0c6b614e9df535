"""Signed notes (c2sp.org/signed-note) and their Ed25519 keys.

A signed note is a UTF-8 text ending in a newline, a blank line, and one or more lines
``— <key name> <base64(key id || signature)>``. Checkpoints and witness cosignatures are both
signed notes, so this encoding has to match golang.org/x/mod/sumdb/note byte for byte: anything
we sign must open with the standard tools, and anything they sign must open here.

Keys travel as verifier keys ("vkeys"), ``<name>+<hex key id>+<base64(type || public key)>``,
the format of sumdb/note's ``NewVerifier``.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import ClassVar, Protocol, Self

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ALG_ED25519 = 0x01
"""Signature type of plain Ed25519 note signatures."""
ALG_COSIGNATURE_V1 = 0x04
"""Signature type of timestamped Ed25519 witness cosignatures (c2sp.org/tlog-cosignature)."""

MAX_NOTE_SIZE = 1 << 20
"""Largest note accepted, in bytes: parsing cost stays bounded on hostile input."""
MAX_SIGNATURES = 100
"""Most signature lines accepted; the spec requires at least 16, sumdb/note stops at 100."""

_KEY_ID_SIZE = 4
_ED25519_KEY_SIZE = 32
_SIG_PREFIX = "— "  # U+2014 em dash, space


class NoteError(ValueError):
    """A note, signature, key or key name is malformed, or a known key's signature is bad."""


class NoteVerifier(Protocol):
    """What :func:`verify_note` needs from a key: its name, its key id, and a check."""

    @property
    def name(self) -> str: ...

    @property
    def key_id(self) -> bytes: ...

    def verify(self, text: str, signature: Signature) -> bool: ...


def check_key_name(name: str) -> None:
    """Raise NoteError unless ``name`` is a valid key name.

    Names are non-empty UTF-8 without Unicode spaces or '+': '+' separates vkey fields and a
    space ends the name in a signature line.
    """
    if not name:
        raise NoteError("key name is empty")
    if any(c.isspace() for c in name):
        raise NoteError(f"key name {name!r} contains a space")
    if "+" in name:
        raise NoteError(f"key name {name!r} contains '+'")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise NoteError(f"key name {name!r} is not valid UTF-8") from None


def key_id(name: str, alg: int, public_key: bytes) -> bytes:
    """Return SHA-256(name || 0x0A || alg || public_key)[:4], the spec's recommended key id.

    The name and signature type are hashed in so that one key can serve under two names or two
    signature types without their signatures being mistaken for each other.
    """
    check_key_name(name)
    if not 0 <= alg <= 0xFF:
        raise NoteError(f"signature type {alg} is not a byte")
    data = name.encode("utf-8") + b"\n" + bytes([alg]) + public_key
    return hashlib.sha256(data).digest()[:_KEY_ID_SIZE]


def decode_base64(s: str) -> bytes:
    """Decode padded standard base64 (RFC 4648 §4), accepting only its canonical form.

    Go's decoder tolerates non-zero padding bits; rejecting them here means one byte string has
    exactly one encoding, so a signature line cannot be altered without changing its bytes.
    Raises ValueError.
    """
    try:
        raw = base64.b64decode(s, validate=True)
    except ValueError as e:  # binascii.Error, or non-ASCII text
        raise ValueError(f"invalid base64 {s[:80]!r}: {e}") from None
    if base64.b64encode(raw).decode("ascii") != s:
        raise ValueError(f"non-canonical base64 {s[:80]!r}")
    return raw


def encode_vkey(name: str, alg: int, public_key: bytes) -> str:
    """Return the vkey ``<name>+<hex key id>+<base64(alg || public_key)>``."""
    kid = key_id(name, alg, public_key)
    return f"{name}+{kid.hex()}+{base64.b64encode(bytes([alg]) + public_key).decode('ascii')}"


def decode_vkey(vkey: str) -> tuple[str, int, bytes]:
    """Split a vkey into (name, signature type, public key), checking its key id.

    Raises NoteError. The key id is checked against the key rather than trusted, so a vkey that
    was mistyped or spliced together from two keys is refused instead of never matching.
    """
    parts = vkey.split("+", 2)
    if len(parts) != 3:
        raise NoteError("vkey is not of the form <name>+<key id>+<key>")
    name, hex_id, b64_key = parts
    check_key_name(name)
    if len(hex_id) != 2 * _KEY_ID_SIZE or any(c not in "0123456789abcdefABCDEF" for c in hex_id):
        raise NoteError(f"vkey key id {hex_id!r} is not 8 hexadecimal digits")
    try:
        key = decode_base64(b64_key)
    except ValueError as e:
        raise NoteError(f"vkey key: {e}") from None
    if not key:
        raise NoteError("vkey key is empty")
    if key_id(name, key[0], key[1:]) != bytes.fromhex(hex_id):
        raise NoteError(f"vkey key id {hex_id} does not match its name and key")
    return name, key[0], key[1:]


def _check_ed25519_key(public_key: bytes) -> None:
    if len(public_key) != _ED25519_KEY_SIZE:
        raise NoteError(f"Ed25519 public key is {len(public_key)} bytes, want 32")


def _check_text(text: str) -> bytes:
    """Return the UTF-8 bytes of a note text, raising NoteError unless it is well-formed."""
    if not text:
        raise NoteError("note text is empty")
    if not text.endswith("\n"):
        raise NoteError("note text does not end with a newline")
    bad = next((c for c in text if c < " " and c != "\n"), None)
    if bad is not None:
        raise NoteError(f"note text contains control character {bad!r}")
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise NoteError("note text is not valid UTF-8") from None


@dataclass(frozen=True)
class Signature:
    """One signature line: the key's name and id, and the signature bytes after the id."""

    name: str
    key_id: bytes
    signature: bytes

    def __post_init__(self) -> None:
        check_key_name(self.name)
        if len(self.key_id) != _KEY_ID_SIZE:
            raise NoteError(f"key id is {len(self.key_id)} bytes, want 4")
        if not self.signature:
            raise NoteError("signature is empty")


def format_signature(signature: Signature) -> str:
    """Return the signature line ``— <name> <base64(key id || signature)>\\n``."""
    blob = base64.b64encode(signature.key_id + signature.signature).decode("ascii")
    return f"{_SIG_PREFIX}{signature.name} {blob}\n"


def parse_signature(line: str) -> Signature:
    """Parse one signature line, including its final newline, as a witness returns it."""
    if not line.endswith("\n") or "\n" in line[:-1]:
        raise NoteError("signature line must be exactly one line ending in a newline")
    return _parse_signature_line(line[:-1])


def _parse_signature_line(line: str) -> Signature:
    if not line.startswith(_SIG_PREFIX):
        raise NoteError(f"signature line {line[:80]!r} does not start with '— '")
    name, sep, b64 = line[len(_SIG_PREFIX) :].partition(" ")
    if not sep:
        raise NoteError(f"signature line {line[:80]!r} has no space after the key name")
    try:
        blob = decode_base64(b64)
    except ValueError as e:
        raise NoteError(f"signature of {name!r}: {e}") from None
    if len(blob) < _KEY_ID_SIZE + 1:
        raise NoteError(f"signature of {name!r} is {len(blob)} bytes, want at least 5")
    return Signature(name, blob[:_KEY_ID_SIZE], blob[_KEY_ID_SIZE:])


@dataclass(frozen=True)
class Verifier:
    """A trusted Ed25519 note key (signature type 0x01)."""

    name: str
    public_key: bytes
    key_id: bytes = field(init=False, repr=False)

    def __post_init__(self) -> None:
        _check_ed25519_key(self.public_key)
        object.__setattr__(self, "key_id", key_id(self.name, ALG_ED25519, self.public_key))

    @property
    def vkey(self) -> str:
        """This key as a vkey string."""
        return format_vkey(self.name, self.public_key)

    def verify(self, text: str, signature: Signature) -> bool:
        """Report whether ``signature`` is this key's signature of ``text``.

        Raises NoteError if ``text`` is not a note text (see :meth:`Signer.sign`).
        """
        if (signature.name, signature.key_id) != (self.name, self.key_id):
            return False
        key = Ed25519PublicKey.from_public_bytes(self.public_key)
        try:
            key.verify(signature.signature, _check_text(text))
        except InvalidSignature:
            return False
        return True


def format_vkey(name: str, public_key: bytes) -> str:
    """Return the vkey of an Ed25519 note key, as sumdb/note's NewEd25519VerifierKey does."""
    _check_ed25519_key(public_key)
    return encode_vkey(name, ALG_ED25519, public_key)


def parse_vkey(vkey: str) -> Verifier:
    """Parse the vkey of an Ed25519 note key (type 0x01), as sumdb/note's NewVerifier does."""
    name, alg, public_key = decode_vkey(vkey)
    if alg != ALG_ED25519:
        raise NoteError(f"vkey signature type is 0x{alg:02x}, want 0x01 (Ed25519)")
    _check_ed25519_key(public_key)
    return Verifier(name, public_key)


class Ed25519Key:
    """An Ed25519 private key and the name it signs under.

    ``ALG`` is the signature type its key id and vkey carry: a note key (0x01) and a witness's
    cosignature key (0x04) are the same kind of key put to different, never interchangeable uses.
    """

    ALG: ClassVar[int]

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        check_key_name(name)
        self.name = name
        self._key = private_key
        self.public_key = private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self.key_id = key_id(name, self.ALG, self.public_key)

    @classmethod
    def generate(cls, name: str) -> Self:
        """Return a key with fresh randomness."""
        return cls(name, Ed25519PrivateKey.generate())

    @classmethod
    def from_private_bytes(cls, name: str, raw: bytes) -> Self:
        """Return the key for a 32-byte Ed25519 seed (RFC 8032 private key)."""
        if len(raw) != _ED25519_KEY_SIZE:
            raise NoteError(f"Ed25519 private key is {len(raw)} bytes, want 32")
        return cls(name, Ed25519PrivateKey.from_private_bytes(raw))

    def private_bytes(self) -> bytes:
        """Return the 32-byte seed, for storing the key."""
        return self._key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )

    @property
    def vkey(self) -> str:
        """The public half as a vkey string, to hand to verifiers."""
        return encode_vkey(self.name, self.ALG, self.public_key)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, key_id={self.key_id.hex()})"


class Signer(Ed25519Key):
    """An Ed25519 note signing key (signature type 0x01)."""

    ALG = ALG_ED25519

    def verifier(self) -> Verifier:
        """Return the verifier for this key."""
        return Verifier(self.name, self.public_key)

    def sign(self, text: str) -> Signature:
        """Sign a note text (non-empty, newline-terminated, no control characters)."""
        return Signature(self.name, self.key_id, self._key.sign(_check_text(text)))


@dataclass
class SignedNote:
    """A note text and its signatures, verified or not."""

    text: str
    signatures: list[Signature]


def parse_note(data: str | bytes) -> SignedNote:
    """Split a signed note into text and signature lines, without verifying anything.

    The text ends at the last blank line, as in the spec. Raises NoteError on anything that is
    not a well-formed note: invalid UTF-8, control characters, no blank line, no signatures, a
    line that is not a signature line, more than MAX_SIGNATURES lines or MAX_NOTE_SIZE bytes.
    """
    if len(data) > MAX_NOTE_SIZE:
        raise NoteError(f"note is longer than {MAX_NOTE_SIZE} bytes")
    if isinstance(data, str):
        try:
            data = data.encode("utf-8")
        except UnicodeEncodeError:
            raise NoteError("note is not valid UTF-8") from None
        if len(data) > MAX_NOTE_SIZE:
            raise NoteError(f"note is longer than {MAX_NOTE_SIZE} bytes")
    try:
        s = data.decode("utf-8")
    except UnicodeDecodeError:
        raise NoteError("note is not valid UTF-8") from None
    bad = next((c for c in s if c < " " and c != "\n"), None)
    if bad is not None:
        raise NoteError(f"note contains control character {bad!r}")
    split = s.rfind("\n\n")
    if split < 0:
        raise NoteError("note has no blank line before its signatures")
    text, block = s[: split + 1], s[split + 2 :]
    if not block:
        raise NoteError("note has no signature lines")
    if not block.endswith("\n"):
        raise NoteError("note does not end with a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError(f"note has more than {MAX_SIGNATURES} signature lines")
    return SignedNote(text, [_parse_signature_line(line) for line in lines])


def format_note(note: SignedNote) -> str:
    """Encode a signed note: text, blank line, signature lines. Raises NoteError if malformed."""
    _check_text(note.text)
    if not note.signatures:
        raise NoteError("note has no signatures")
    if len(note.signatures) > MAX_SIGNATURES:
        raise NoteError(f"note has more than {MAX_SIGNATURES} signatures")
    out = note.text + "\n" + "".join(format_signature(sig) for sig in note.signatures)
    if len(out.encode("utf-8")) > MAX_NOTE_SIZE:
        raise NoteError(f"note is longer than {MAX_NOTE_SIZE} bytes")
    return out


def verify_note(note: SignedNote, verifiers: Iterable[NoteVerifier]) -> list[str]:
    """Return the names of the known keys that signed the note, in signature order.

    Lines are matched to keys by (name, key id); lines of unknown keys are ignored, as the spec
    requires, so that keys can be rotated and witnesses can add cosignatures. Every line of a
    known key is checked, and one that fails raises NoteError: the spec says such a note SHOULD
    be rejected, since it is either corrupt or forged. A note with no signature by a known key
    also raises NoteError, so an empty result never stands for "verified", as does a list of
    verifiers holding two different keys with the same name and key id.
    """
    known: dict[tuple[str, bytes], NoteVerifier] = {}
    for v in verifiers:
        if known.setdefault((v.name, v.key_id), v) != v:
            raise NoteError(f"two verifiers share key {v.name}+{v.key_id.hex()}")
    names: list[str] = []
    for sig in note.signatures:
        v = known.get((sig.name, sig.key_id))
        if v is None:
            continue
        if not v.verify(note.text, sig):
            raise NoteError(f"invalid signature by key {sig.name}+{sig.key_id.hex()}")
        if sig.name not in names:
            names.append(sig.name)
    if not names:
        raise NoteError("note has no signature by a known key")
    return names
