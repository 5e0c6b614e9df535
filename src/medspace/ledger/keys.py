"""Private key files for the log and its witnesses.

The format is the signed-note private key encoding that Go's ``golang.org/x/mod/sumdb/note``
reads and writes, ``PRIVATE+KEY+<name>+<key id>+<base64(type || seed)>``, with type 0x01 for a
log key and 0x04 for a witness (cosignature/v1) key. Files are created with mode 0600 and the
key never appears in a log line or an error message.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

from medspace.ledger.cosignature import Cosigner
from medspace.ledger.note import (
    ALG_COSIGNATURE_V1,
    ALG_ED25519,
    NoteError,
    Signer,
    decode_base64,
    key_id,
)

_PREFIX = "PRIVATE+KEY+"


class KeyFileError(ValueError):
    """A key file is missing, unreadable, too open, or not a key of the expected kind."""


def _encode(name: str, alg: int, seed: bytes, public_key: bytes) -> str:
    blob = base64.b64encode(bytes([alg]) + seed).decode("ascii")
    return f"{_PREFIX}{name}+{key_id(name, alg, public_key).hex()}+{blob}\n"


def write_key(path: Path, key: Signer | Cosigner) -> None:
    """Write ``key`` to a new file readable by its owner only; refuse to overwrite one."""
    alg = ALG_ED25519 if isinstance(key, Signer) else ALG_COSIGNATURE_V1
    text = _encode(key.name, alg, key.private_bytes(), key.public_key)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeyFileError(f"{path} already exists; a key is never overwritten") from None
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(text)


def _read(path: Path, alg: int) -> tuple[str, bytes, str]:
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyFileError(f"cannot read the key file {path}: {exc}") from None
    if mode & 0o077:
        raise KeyFileError(f"{path} is readable by others; run: chmod 600 {path}")
    if not text.startswith(_PREFIX):
        raise KeyFileError(f"{path} is not a private key file")
    parts = text[len(_PREFIX):].split("+", 2)
    if len(parts) != 3:
        raise KeyFileError(f"{path} is not a private key file")
    name, hex_id, blob = parts
    try:
        raw = decode_base64(blob)
    except ValueError:
        raise KeyFileError(f"{path}: the key is not valid base64") from None
    if len(raw) != 33 or raw[0] != alg:
        kind = "log (0x01)" if alg == ALG_ED25519 else "witness (0x04)"
        raise KeyFileError(f"{path} does not hold a {kind} Ed25519 key")
    return name, raw[1:], hex_id


def load_signer(path: Path) -> Signer:
    """The log signing key in ``path``."""
    name, seed, hex_id = _read(path, ALG_ED25519)
    try:
        signer = Signer.from_private_bytes(name, seed)
    except NoteError as exc:
        raise KeyFileError(f"{path}: {exc}") from None
    if signer.key_id.hex() != hex_id:
        raise KeyFileError(f"{path}: the key id does not match the key")
    return signer


def load_cosigner(path: Path) -> Cosigner:
    """The witness cosigning key in ``path``."""
    name, seed, hex_id = _read(path, ALG_COSIGNATURE_V1)
    try:
        cosigner = Cosigner.from_private_bytes(name, seed)
    except NoteError as exc:
        raise KeyFileError(f"{path}: {exc}") from None
    if cosigner.key_id.hex() != hex_id:
        raise KeyFileError(f"{path}: the key id does not match the key")
    return cosigner
