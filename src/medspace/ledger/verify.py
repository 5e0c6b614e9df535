"""Replays a whole log and checks everything about it, trusting only the public keys.

The verifier recomputes the tree from the raw entries, one pass, constant memory. It checks
every entry (strict canonical JSON, the event schema, no personal data), every checkpoint's
log signature, every cosigned checkpoint against the quorum policy, and that every checkpoint
(the log's own and any the caller trusts, such as a witness's state) has the root the entries
give at its size: that is consistency between all of them. Two validly signed checkpoints of
one size with different roots are a fork, reported with both notes as evidence.

The log signs a checkpoint after every committed batch, so a mismatch pins the first bad entry
to the batch between the last checkpoint that held and the first that did not; a batch of one
names the exact index.
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from medspace.ledger import merkle
from medspace.ledger.events import EventError, parse_event
from medspace.ledger.note import decode_base64
from medspace.ledger.store import StoredCheckpoint
from medspace.ledger.trust import Trust, TrustError

Progress = Callable[[int], None]


class SourceError(ValueError):
    """A log source could not be read: a malformed export, an unreachable or lying server."""


class LogSource(Protocol):
    """Where a log's checkpoints and entries are read from: a store, a URL or an export."""

    origin: str

    def checkpoints(self) -> list[StoredCheckpoint]: ...

    def iter_entries(self, start: int = 0) -> Iterator[bytes]: ...


@dataclass(frozen=True)
class Failure:
    """The first thing found wrong, and the first entry index it puts in doubt."""

    index: int
    reason: str


@dataclass(frozen=True)
class Fork:
    """Two checkpoints, both validly signed by the log, of one size with different roots."""

    size: int
    note: str
    other: str


@dataclass(frozen=True)
class VerifierState:
    """What a verifier keeps after a clean run, to check only new entries next time."""

    origin: str
    size: int
    frontier: tuple[bytes, ...]

    @property
    def root(self) -> bytes:
        """The root of the verified tree."""
        return merkle.fold(self.frontier)

    def to_json(self) -> str:
        """The state as JSON, for a file."""
        return json.dumps(
            {
                "origin": self.origin,
                "size": self.size,
                "frontier": [base64.b64encode(h).decode("ascii") for h in self.frontier],
            }
        )

    @classmethod
    def from_json(cls, text: str) -> VerifierState:
        """Read a state file; raises ValueError if it is malformed."""
        try:
            document = json.loads(text)
            frontier = tuple(decode_base64(h) for h in document["frontier"])
            state = cls(str(document["origin"]), int(document["size"]), frontier)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"verifier state is malformed: {exc}") from None
        if len(frontier) != len(merkle.perfect_subtrees(0, state.size)):
            raise ValueError("verifier state: frontier does not fit its size")
        return state


@dataclass
class Report:
    """What the verifier saw."""

    origin: str
    entries: int = 0
    checkpoints: int = 0
    witnessed: int = 0
    witnessed_size: int = 0
    actions: Counter[str] = field(default_factory=Counter)
    failure: Failure | None = None
    forks: list[Fork] = field(default_factory=list)
    state: VerifierState | None = None

    @property
    def ok(self) -> bool:
        """True when nothing was found wrong."""
        return self.failure is None and not self.forks

    def fail(self, index: int, reason: str) -> None:
        """Keep the failure that puts the earliest entry in doubt."""
        if self.failure is None or index < self.failure.index:
            self.failure = Failure(index, reason)


@dataclass(frozen=True)
class _Claim:
    size: int
    root: bytes
    note: str
    source: str


def verify_log(
    source: LogSource,
    trust: Trust,
    trusted: Iterable[str] = (),
    state: VerifierState | None = None,
    progress: Progress | None = None,
) -> Report:
    """Verify ``source`` against ``trust`` and the checkpoints in ``trusted``.

    ``trusted`` holds signed checkpoint notes from elsewhere (a witness's state, a receipt, an
    earlier download); each must agree with the log. ``state`` resumes from an earlier clean
    run, re-reading only the entries after it.
    """
    report = Report(source.origin)
    if source.origin != trust.log.name:
        report.fail(0, f"the log is {source.origin!r} but the trust policy is for "
                       f"{trust.log.name!r}")
        return report
    claims = _check_checkpoints(source.checkpoints(), trust, report)
    for note in trusted:
        try:
            checkpoint = trust.check_signed(note)
        except TrustError as exc:
            report.fail(0, f"a trusted checkpoint does not verify: {exc}")
            continue
        claims.append(_Claim(checkpoint.size, checkpoint.root, note, "trusted"))
    _find_forks(claims, report)
    by_size: dict[int, list[_Claim]] = {}
    for claim in claims:
        by_size.setdefault(claim.size, []).append(claim)

    start = 0 if state is None else state.size
    frontier: list[tuple[int, bytes]] = []
    if state is not None:
        if state.origin != source.origin:
            report.fail(0, f"the verifier state is for the log {state.origin!r}")
            return report
        edge = merkle.perfect_subtrees(0, state.size)
        frontier = [(level, h) for (level, _), h in zip(edge, state.frontier, strict=True)]
        _compare(state.size, merkle.fold(state.frontier), by_size, state.size, report)
    last_good = size = start
    entries = source.iter_entries(start)
    while report.failure is None or size < report.failure.index:
        try:
            data = next(entries, None)
        except SourceError as exc:
            report.fail(size, f"entry {size}: {exc}")
            break
        if data is None:
            break
        try:
            event = parse_event(data)
        except EventError as exc:
            report.fail(size, f"entry {size}: {exc}")
            break
        report.actions[str(event.action)] += 1
        node = (0, merkle.leaf_hash(data))
        while frontier and frontier[-1][0] == node[0]:
            level, left = frontier.pop()
            node = (level + 1, merkle.node_hash(left, node[1]))
        frontier.append(node)
        size += 1
        report.entries = size - start
        if size in by_size:
            if not _compare(size, merkle.fold([h for _, h in frontier]), by_size, last_good,
                            report):
                break
            last_good = size
        if progress is not None:
            progress(size)
    end = size
    beyond = [s for s in by_size if s > end]
    if beyond and (report.failure is None or end < report.failure.index):
        report.fail(end, f"the log ends after {end} entries, but checkpoint of size "
                         f"{min(beyond)} was signed: entries from index {end} are missing")
    if report.ok:
        report.state = VerifierState(source.origin, end, tuple(h for _, h in frontier))
    return report


def _check_checkpoints(
    stored: Iterable[StoredCheckpoint], trust: Trust, report: Report
) -> list[_Claim]:
    claims: list[_Claim] = []
    previous = 0
    for row in sorted(stored, key=lambda r: r.size):
        report.checkpoints += 1
        try:
            checkpoint = trust.check_signed(row.note)
        except TrustError as exc:
            report.fail(previous, f"checkpoint of size {row.size}: {exc}")
            continue
        if checkpoint.size != row.size:
            report.fail(previous, f"checkpoint listed as size {row.size} is of size "
                                  f"{checkpoint.size}")
            continue
        claims.append(_Claim(checkpoint.size, checkpoint.root, row.note, "log"))
        if row.cosigned is not None:
            try:
                witnessed = trust.check_witnessed(row.cosigned)
            except TrustError as exc:
                report.fail(previous, f"cosigned checkpoint of size {row.size}: {exc}")
                continue
            if (witnessed.size, witnessed.root) != (checkpoint.size, checkpoint.root):
                report.fail(previous, f"cosigned checkpoint of size {row.size} is not the one "
                                      "the log signed")
                continue
            report.witnessed += 1
            report.witnessed_size = max(report.witnessed_size, row.size)
        previous = row.size
    return claims


def _find_forks(claims: list[_Claim], report: Report) -> None:
    first: dict[int, _Claim] = {}
    for claim in claims:
        seen = first.setdefault(claim.size, claim)
        if seen.root != claim.root:
            report.forks.append(Fork(claim.size, seen.note, claim.note))
            report.fail(0, f"fork: the log signed two different trees of size {claim.size}")


def _compare(
    size: int, root: bytes, by_size: dict[int, list[_Claim]], last_good: int, report: Report
) -> bool:
    for claim in by_size.get(size, ()):
        if claim.root != root:
            where = (f"entry {last_good} does" if size - last_good == 1
                     else f"entries {last_good}..{size - 1} do")
            report.fail(last_good, f"{where} not hash to the {claim.source} checkpoint of "
                                   f"size {size}: the first bad entry is at index {last_good}"
                                   + ("" if size - last_good == 1 else " or after"))
            return False
    return True
