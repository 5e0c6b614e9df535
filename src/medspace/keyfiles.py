"""Private files: keys and secrets, readable by their owner only.

Every secret the data space keeps on disk goes through here, so that all of them are created
with mode 0600, never silently overwritten, and refused when someone opened them up to others.
"""

from __future__ import annotations

import os
from pathlib import Path


class KeyFileError(ValueError):
    """A private file is missing, unreadable, too open, or already exists."""


def write_private(path: Path, data: bytes) -> None:
    """Create ``path`` with mode 0600 holding ``data``; refuse to overwrite an existing file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeyFileError(f"{path} already exists; a key is never overwritten") from None
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def read_private(path: Path) -> bytes:
    """The bytes of a private file; refuse one that others may read."""
    try:
        mode = path.stat().st_mode
        data = path.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"cannot read the key file {path}: {exc.strerror}") from None
    if mode & 0o077:
        raise KeyFileError(f"{path} is readable by others; run: chmod 600 {path}")
    return data


def private_secret(path: Path, size: int = 32) -> bytes:
    """The random secret in ``path``, made on first use."""
    if not path.exists():
        write_private(path, os.urandom(size))
    secret = read_private(path)
    if len(secret) != size:
        raise KeyFileError(f"{path} holds {len(secret)} bytes, not a {size}-byte secret")
    return secret
