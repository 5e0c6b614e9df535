"""The quarantine: every record the connector could not load, with where it came from and why.

It is an NDJSON file (one object per rejected record: ``source`` file, ``position`` = line or
message number, ``kind`` = resource type or segment, ``reason`` = a fixed category,
``detail``, and the raw ``record``) in a ``quarantine`` folder next to the store. It is a file
rather than a table because a rejected record may hold identifiers (a malformed Patient line),
and nothing identifying may enter the clinical store; the file is created readable by its owner
only, like the export it came from. Each entry has a key derived from its source position and
content, and entries already present are not written again, so a re-run after a crash does not
duplicate the quarantine either.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from pathlib import Path
from typing import TextIO


class Rejected(Exception):
    """A record that cannot be loaded: a fixed ``reason`` category plus a ``detail``."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class Withdrawn(Rejected):
    """A record whose source says it no longer holds (entered in error, not done, a consent no
    longer in force): what an earlier version of it loaded is removed; a record without an id
    to find that version by is quarantined like any other refusal."""


class Quarantine:
    """An append-only, de-duplicated NDJSON file of rejected records, with counts by reason."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.by_reason: Counter[str] = Counter()
        self.by_kind: Counter[str] = Counter()
        self._seen = self._existing_keys(path)
        self._file: TextIO | None = None

    @staticmethod
    def _existing_keys(path: Path) -> set[str]:
        if not path.exists():
            return set()
        with path.open(encoding="utf-8") as handle:
            return {json.loads(line)["key"] for line in handle if line.strip()}

    def add(self, source: str, position: int, kind: str, rejected: Rejected, record: str) -> None:
        """Keep ``record`` with its origin and reason (once, however often it is rejected)."""
        self.by_reason[rejected.reason] += 1
        self.by_kind[kind] += 1
        key = hashlib.sha256(f"{source}\0{position}\0{kind}\0{record}".encode()).hexdigest()
        if key in self._seen:
            return
        self._seen.add(key)
        entry = {
            "key": key,
            "source": source,
            "position": position,
            "kind": kind,
            "reason": rejected.reason,
            "detail": rejected.detail,
            "record": record,
        }
        self._handle().write(json.dumps(entry, ensure_ascii=False) + "\n")

    def _handle(self) -> TextIO:
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            self._file = os.fdopen(fd, "a", encoding="utf-8")
        return self._file

    def flush(self) -> None:
        """Make the entries so far durable (called before each batch is committed)."""
        if self._file is not None:
            self._file.flush()
            os.fsync(self._file.fileno())

    def close(self) -> None:
        """Flush and close the file."""
        self.flush()
        if self._file is not None:
            self._file.close()
            self._file = None

    @property
    def total(self) -> int:
        """Records rejected in this run (including ones already quarantined by an earlier run)."""
        return sum(self.by_reason.values())


def read_quarantine(path: Path) -> list[dict[str, object]]:
    """The entries of a quarantine file, for review and tests."""
    if not path.exists():
        return []
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]
