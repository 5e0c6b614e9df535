"""Deterministic sub-seeds.

Every random stream of the generator is seeded from the user's seed plus a label, through
SHA-256 rather than Python's ``hash`` (which is salted per process), so that the same seed gives
byte-identical files on any machine and any run, and independent streams stay independent.
"""

from __future__ import annotations

import hashlib
import random


def derive_seed(seed: int, *labels: object) -> int:
    """A 64-bit seed for the stream named by ``labels`` under the user's ``seed``."""
    text = "\x1f".join([str(seed), *(str(label) for label in labels)])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def stream(seed: int, *labels: object) -> random.Random:
    """An independent random stream for ``labels`` under ``seed``."""
    return random.Random(derive_seed(seed, *labels))
