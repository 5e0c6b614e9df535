"""A self-contained copy of the log, for a regulator to verify offline.

The export is JSON lines: a header, every checkpoint the log signed (with the cosigned form
where witnesses cosigned it), then every entry in order, base64. It carries no key: the
verifier takes its keys and quorum from the trust policy it already holds, so a forged export
cannot vouch for itself.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from medspace.ledger.note import decode_base64
from medspace.ledger.store import StoredCheckpoint
from medspace.ledger.verify import LogSource, Progress, SourceError

EXPORT_FORMAT = "medspace-ledger-export/v1"


def export_log(source: LogSource, path: Path, progress: Progress | None = None) -> int:
    """Write ``source`` to ``path``; return the number of entries written."""
    checkpoints = source.checkpoints()
    size = max((c.size for c in checkpoints), default=0)
    tmp = path.with_name(path.name + ".partial")
    count = 0
    with tmp.open("w", encoding="utf-8") as out:
        _write(out, {"type": "header", "format": EXPORT_FORMAT, "origin": source.origin,
                     "size": size, "exported": int(time.time())})
        for c in checkpoints:
            _write(out, {"type": "checkpoint", "size": c.size, "note": c.note,
                         "cosigned": c.cosigned})
        for data in source.iter_entries(0):
            if count == size:
                break
            _write(out, {"type": "entry", "data": base64.b64encode(data).decode("ascii")})
            count += 1
            if progress is not None:
                progress(count)
    tmp.replace(path)
    return count


def _write(out: IO[str], record: dict[str, Any]) -> None:
    out.write(json.dumps(record, separators=(",", ":"), ensure_ascii=False))
    out.write("\n")


class BundleSource:
    """Reads a log exported by ``export_log``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            with path.open("rb") as f:
                header = _record(f.readline(), 1)
        except OSError as exc:
            raise SourceError(f"cannot read {path}: {exc.strerror}") from None
        if header.get("format") != EXPORT_FORMAT or not isinstance(header.get("origin"), str):
            raise SourceError(f"{path} is not a {EXPORT_FORMAT} export")
        self.origin: str = header["origin"]

    def checkpoints(self) -> list[StoredCheckpoint]:
        """The checkpoints in the export."""
        out = []
        for number, record in self._records():
            if record.get("type") != "checkpoint":
                continue
            size, note, cosigned = record.get("size"), record.get("note"), record.get("cosigned")
            if not (isinstance(size, int) and isinstance(note, str)
                    and (cosigned is None or isinstance(cosigned, str))):
                raise SourceError(f"{self.path}:{number}: malformed checkpoint record")
            out.append(StoredCheckpoint(size, note, cosigned))
        return out

    def iter_entries(self, start: int = 0) -> Iterator[bytes]:
        """The entries in file order, from index ``start``."""
        index = 0
        for number, record in self._records():
            if record.get("type") != "entry":
                continue
            if index >= start:
                try:
                    yield decode_base64(record["data"])
                except (KeyError, TypeError, ValueError):
                    raise SourceError(f"{self.path}:{number}: malformed entry record") from None
            index += 1

    def _records(self) -> Iterator[tuple[int, dict[str, Any]]]:
        with self.path.open("rb") as f:
            f.readline()
            for number, line in enumerate(f, 2):
                yield number, _record(line, number)


def _record(line: bytes, number: int) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except ValueError:
        raise SourceError(f"line {number} is not JSON") from None
    if not isinstance(record, dict):
        raise SourceError(f"line {number} is not a JSON object")
    return record
