"""Partition an export's records into patient batches on disk, so memory stays bounded.

A bulk export spreads each patient over many files (FHIR) or messages (HL7 v2). Routing writes
every record to the temporary file of its patient's batch (patients are numbered in the order
they are first seen), and each batch is later read back whole: memory holds one batch, never
the export.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import TextIO

from medspace.connector.mapping import Origin


class Spill:
    """Per-batch temporary files of ``patient key, origin, raw record`` lines."""

    def __init__(self, batch_size: int) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.batch_size = batch_size
        self._dir = tempfile.TemporaryDirectory(prefix="medspace-ingest-")
        self._batch_of: dict[str, int] = {}
        self._keys: dict[int, list[str]] = {}
        self._files: dict[int, TextIO] = {}

    def __enter__(self) -> Spill:
        return self

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        for handle in self._files.values():
            handle.close()
        self._dir.cleanup()

    @property
    def patients(self) -> int:
        """Patients routed so far."""
        return len(self._batch_of)

    def _path(self, batch: int) -> Path:
        return Path(self._dir.name) / f"batch-{batch:06d}.tsv"

    def add(self, key: str, origin: Origin, raw: str) -> None:
        """Append one record to its patient's batch (records hold no newline, see the readers)."""
        batch = self._batch_of.get(key)
        if batch is None:
            batch = self._batch_of[key] = len(self._batch_of) // self.batch_size
            self._keys.setdefault(batch, []).append(key)
        handle = self._files.get(batch)
        if handle is None:
            handle = self._files[batch] = self._path(batch).open("w", encoding="utf-8")
        handle.write(f"{key}\t{origin.source}\t{origin.position}\t{origin.kind}\t{raw}\n")

    def batches(self) -> Iterator[tuple[int, list[str], Iterator[tuple[str, Origin, str]]]]:
        """Each batch number with its patient keys and an iterator over its records, in
        routing order (the records are read as they are iterated, never held whole)."""
        for handle in self._files.values():
            handle.close()
        for batch in sorted(self._files):
            yield batch, self._keys[batch], self._read(self._path(batch))

    @staticmethod
    def _read(path: Path) -> Iterator[tuple[str, Origin, str]]:
        with path.open(encoding="utf-8", newline="\n") as handle:
            for line in handle:
                key, source, position, kind, raw = line.rstrip("\n").split("\t", 4)
                yield key, Origin(source, int(position), kind), raw
