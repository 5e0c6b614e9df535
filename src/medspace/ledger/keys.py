"""Private key files for the log and its witnesses.

The format is the signed-note private key encoding that Go's ``golang.org/x/mod/sumdb/note``
reads and writes, ``PRIVATE+KEY+<name>+<key id>+<base64(type || seed)>``, with type 0x01 for a
log key and 0x04 for a witness (cosignature/v1) key. Files are created with mode 0600 and the
key never appears in a log line or an error message.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import TypeVar

from medspace.keyfiles import KeyFileError, read_private, write_private
from medspace.ledger.note import ALG_ED25519, Ed25519Key, NoteError, decode_base64

_PREFIX = "PRIVATE+KEY+"
K = TypeVar("K", bound=Ed25519Key)


def write_key(path: Path, key: Ed25519Key) -> None:
    """Write ``key`` to a new file readable by its owner only; refuse to overwrite one."""
    blob = base64.b64encode(bytes([key.ALG]) + key.private_bytes()).decode("ascii")
    write_private(path, f"{_PREFIX}{key.name}+{key.key_id.hex()}+{blob}\n".encode("ascii"))


def load_key(path: Path, kind: type[K]) -> K:
    """The key of ``kind`` (``Signer`` for a log, ``Cosigner`` for a witness) in ``path``."""
    try:
        text = read_private(path).decode("ascii").strip()
    except UnicodeDecodeError:
        raise KeyFileError(f"{path} is not a private key file") from None
    parts = text.removeprefix(_PREFIX).split("+", 2)
    if not text.startswith(_PREFIX) or len(parts) != 3:
        raise KeyFileError(f"{path} is not a private key file")
    name, hex_id, blob = parts
    try:
        raw = decode_base64(blob)
    except ValueError:
        raise KeyFileError(f"{path}: the key is not valid base64") from None
    if len(raw) != 33 or raw[0] != kind.ALG:
        wanted = "log (0x01)" if kind.ALG == ALG_ED25519 else "witness (0x04)"
        raise KeyFileError(f"{path} does not hold a {wanted} Ed25519 key")
    try:
        key = kind.from_private_bytes(name, raw[1:])
    except NoteError as exc:
        raise KeyFileError(f"{path}: {exc}") from None
    if key.key_id.hex() != hex_id:
        raise KeyFileError(f"{path}: the key id does not match the key")
    return key
