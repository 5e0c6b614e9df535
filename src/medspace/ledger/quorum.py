"""Witness quorum policy: which sets of cosignatures make a checkpoint count.

A checkpoint of the audit log counts only when a quorum of witnesses has cosigned it (DESIGN
§3.4). The quorum is a tree of groups, as in Sigsum's policy file (sigsum-go ``doc/policy.md``):
a group is satisfied when at least ``k`` of its members are, a member being a witness (satisfied
when it cosigned) or another group. The text format is Sigsum's, one directive per line, ``#``
starts a comment::

    log <vkey> [<url>]                     # zero or more; the log may also be configured elsewhere
    witness <name> <vkey> [<url>]
    group <name> <threshold> <member>...   # threshold: k | any | all | p/q
    quorum <name>                          # exactly one

Differences from Sigsum, all on the strict side: keys are C2SP ``vkey`` strings (kept as text here;
the checkpoint module parses them), and a witness's name must equal its vkey's key name, so that
the key name on a cosignature line names the witness it counts for; ``quorum none`` is refused,
since a checkpoint without cosignatures never counts in medspace; and the threshold may also be
written ``p/q``, meaning ceil(p·n/q) of the group's n members, so that a policy keeps its meaning
as hospitals join. As in Sigsum, a name is defined before it is used (which rules out cycles),
names of witnesses and groups share one namespace, and a member is listed at most once per group.
Anything else is a :class:`PolicyError`: a policy that cannot be read must not be half-applied.

The default, :func:`consortium_policy`, is **the regulator and at least two thirds of the
hospitals**: ``t = ceil(2n/3)`` of ``n`` hospital witnesses. Why two thirds and not a majority:
two quorums of ``t`` out of ``n`` share at least ``2t - n`` witnesses. A fork — two conflicting
checkpoints that both reach quorum — needs every witness in that overlap to cosign both, i.e. to
break its promise to check consistency. With ``t = ceil(2n/3)`` the overlap is at least
``ceil(n/3)`` hospitals, so a fork needs the regulator *and* at least ``ceil(n/3)`` hospitals to
collude; with a bare majority the overlap can be a single hospital. The regulator sits in every
quorum, so while the regulator's witness is honest no fork reaches quorum at all. The price is
availability: a checkpoint still reaches quorum with up to ``n - t = floor(n/3)`` hospital
witnesses offline. ``docs/quorum.md`` has the table for n = 3..10.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Sequence, Set
from dataclasses import dataclass, field
from typing import Final

NONE: Final = "none"
CONSORTIUM_GROUP: Final = "consortium"
HOSPITALS_GROUP: Final = "hospitals"
CONSORTIUM_THRESHOLD: Final = "2/3"

_NAME = re.compile(r"[^\s+#]+")
_VKEY = re.compile(r"(?P<name>[^\s+#]+)\+[0-9a-f]{8}\+(?P<key>[A-Za-z0-9+/]+={0,2})")
_URL = re.compile(r"https?://\S+")
_COUNT = re.compile(r"[1-9][0-9]*")
_FRACTION = re.compile(r"(?P<p>[1-9][0-9]*)/(?P<q>[1-9][0-9]*)")


class PolicyError(ValueError):
    """A policy that is malformed or unsafe; ``definition`` names the offending entry, if any."""

    def __init__(self, message: str, definition: str | None = None) -> None:
        super().__init__(message)
        self.definition = definition


def _check_name(name: str) -> None:
    if not _NAME.fullmatch(name):
        raise PolicyError(f"invalid name {name!r}: no spaces, '+' or '#'", name)
    if name == NONE:
        raise PolicyError(
            "'none' is reserved: medspace never accepts a checkpoint without cosignatures", name
        )


def _check_vkey(vkey: str, owner: str) -> str:
    """Check the shape of a C2SP vkey (``name+hash+base64``) and return its key name."""
    match = _VKEY.fullmatch(vkey)
    if match is None:
        raise PolicyError(f"{owner}: key {vkey!r} is not a C2SP vkey (name+hash+base64)", owner)
    try:
        base64.b64decode(match["key"], validate=True)
    except binascii.Error:
        raise PolicyError(f"{owner}: key {vkey!r} has invalid base64", owner) from None
    return match["name"]


def _check_url(url: str | None, owner: str) -> None:
    if url is not None and not _URL.fullmatch(url):
        raise PolicyError(f"{owner}: {url!r} is not an http(s) URL", owner)


@dataclass(frozen=True)
class Log:
    """A log whose checkpoints the policy accepts."""

    key: str
    url: str | None = None

    def __post_init__(self) -> None:
        _check_vkey(self.key, "log")
        _check_url(self.url, "log")


@dataclass(frozen=True)
class Witness:
    """A witness; ``name`` is its vkey's key name, the name its cosignature lines carry."""

    name: str
    key: str
    url: str | None = None

    def __post_init__(self) -> None:
        _check_name(self.name)
        key_name = _check_vkey(self.key, f"witness {self.name!r}")
        if key_name != self.name:
            raise PolicyError(
                f"witness {self.name!r}: name differs from its key's name {key_name!r}", self.name
            )
        _check_url(self.url, f"witness {self.name!r}")


def _resolve_threshold(group: str, threshold: str, n: int) -> int:
    """How many of ``n`` members ``threshold`` (``k``, ``any``, ``all`` or ``p/q``) requires."""
    if threshold == "any":
        return 1
    if threshold == "all":
        return n
    if _COUNT.fullmatch(threshold):
        if int(threshold) > n:
            raise PolicyError(
                f"group {group!r}: threshold {threshold} exceeds its {n} members", group
            )
        return int(threshold)
    fraction = _FRACTION.fullmatch(threshold)
    if fraction is None:
        raise PolicyError(
            f"group {group!r}: threshold {threshold!r} is not a positive count, 'any', 'all' "
            "or a fraction p/q",
            group,
        )
    p, q = int(fraction["p"]), int(fraction["q"])
    if p > q:
        raise PolicyError(f"group {group!r}: fraction {threshold} is more than all members", group)
    return -(-p * n // q)


@dataclass(frozen=True)
class Group:
    """At least ``required`` of ``members`` (witness or group names) must be satisfied.

    ``threshold`` keeps the spelling of the policy file; ``required`` is its resolved count.
    """

    name: str
    threshold: str
    members: tuple[str, ...]
    required: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_name(self.name)
        if not self.members:
            raise PolicyError(f"group {self.name!r} has no members", self.name)
        for member in self.members:
            if self.members.count(member) > 1:
                raise PolicyError(f"group {self.name!r} lists {member!r} twice", self.name)
        required = _resolve_threshold(self.name, self.threshold, len(self.members))
        object.__setattr__(self, "required", required)


@dataclass(frozen=True)
class Policy:
    """Logs, witnesses, groups and the quorum: the rule for when a checkpoint counts.

    Groups are kept in definition order, each referring only to witnesses and earlier groups,
    exactly as :meth:`format` writes them, so ``parse_policy(p.format()) == p``.
    """

    witnesses: tuple[Witness, ...]
    groups: tuple[Group, ...]
    quorum: str
    logs: tuple[Log, ...] = ()

    def __post_init__(self) -> None:
        names: set[str] = set()
        for entry in (*self.witnesses, *self.groups):
            if entry.name in names:
                raise PolicyError(f"name {entry.name!r} is defined twice", entry.name)
            names.add(entry.name)
        # Witness keys need no such check: a witness is named by its key, so a repeated key is a
        # repeated name.
        log_keys = [log.key for log in self.logs]
        if len(set(log_keys)) != len(log_keys):
            raise PolicyError("a log key is listed twice")
        self._check_references(names)
        if self.quorum == NONE:
            raise PolicyError("'quorum none' is refused: a checkpoint always needs cosignatures")
        if self.quorum not in names:
            raise PolicyError(f"quorum {self.quorum!r} is not a defined witness or group")

    def _check_references(self, names: set[str]) -> None:
        groups = {group.name: group for group in self.groups}
        for group in self.groups:
            for member in group.members:
                if member not in names:
                    raise PolicyError(
                        f"group {group.name!r}: member {member!r} is not defined", group.name
                    )
        for group in self.groups:
            cycle = _find_cycle(group.name, groups, [])
            if cycle:
                raise PolicyError(f"groups form a cycle: {' -> '.join(cycle)}", group.name)
        defined = {witness.name for witness in self.witnesses}
        for group in self.groups:
            later = [member for member in group.members if member not in defined]
            if later:
                raise PolicyError(
                    f"group {group.name!r}: member {later[0]!r} is defined after it; "
                    "names must be defined before use",
                    group.name,
                )
            defined.add(group.name)

    def _group(self, name: str) -> Group | None:
        return next((group for group in self.groups if group.name == name), None)

    def _count(self, group: Group, cosigned: Set[str]) -> int:
        return sum(self._holds(member, cosigned) for member in group.members)

    def _holds(self, name: str, cosigned: Set[str]) -> bool:
        group = self._group(name)
        if group is None:
            return name in cosigned
        return self._count(group, cosigned) >= group.required

    def satisfied(self, cosigned: Set[str]) -> bool:
        """Whether witnesses named in ``cosigned`` form a quorum; unknown names do not count."""
        return self._holds(self.quorum, cosigned)

    def _wanted(self, name: str) -> str:
        group = self._group(name)
        if group is None:
            return name
        n = len(group.members)
        if group.required == n:
            return f"all {n} {name}"
        return f"{group.required} of {n} {name}"

    def _present(self, name: str, cosigned: Set[str]) -> str | None:
        group = self._group(name)
        if group is None:
            return name if name in cosigned else None
        return f"{self._count(group, cosigned)} of {len(group.members)} {name}"

    def explain(self, cosigned: Set[str]) -> str:
        """Say in plain words what the quorum needs and what ``cosigned`` provides.

        E.g. ``quorum not met: needs regulator and 4 of 5 hospitals; has 3 of 5 hospitals``.
        """
        top = self._group(self.quorum)
        if top is not None and top.required == len(top.members):
            parts: Iterable[str] = top.members
        else:
            parts = (self.quorum,)
        needs = " and ".join(self._wanted(part) for part in parts)
        present = [text for part in parts if (text := self._present(part, cosigned))]
        has = " and ".join(present) if present else "no cosignature that counts"
        verdict = "quorum met" if self.satisfied(cosigned) else "quorum not met"
        return f"{verdict}: needs {needs}; has {has}"

    def format(self) -> str:
        """The policy file text; comments and spacing of a parsed file are not kept."""
        lines = [" ".join(filter(None, ("log", log.key, log.url))) for log in self.logs]
        lines += [" ".join(filter(None, ("witness", w.name, w.key, w.url))) for w in self.witnesses]
        lines += [" ".join(("group", g.name, g.threshold, *g.members)) for g in self.groups]
        lines.append(f"quorum {self.quorum}")
        return "\n".join(lines) + "\n"


def _find_cycle(name: str, groups: dict[str, Group], path: list[str]) -> list[str] | None:
    """A cycle of group references reachable from ``name``, as a path of names, or None."""
    if name in path:
        return [*path[path.index(name) :], name]
    group = groups.get(name)
    if group is None:
        return None
    for member in group.members:
        cycle = _find_cycle(member, groups, [*path, name])
        if cycle:
            return cycle
    return None


def parse_policy(text: str) -> Policy:
    """Read a policy file; every error names its line."""
    logs: list[Log] = []
    witnesses: list[Witness] = []
    groups: list[Group] = []
    quorums: list[str] = []
    lines: dict[str, int] = {}  # name -> line of its (last) definition
    for number, raw in enumerate(text.splitlines(), start=1):
        words = raw.split("#", 1)[0].split()
        if not words:
            continue
        directive, args = words[0], words[1:]
        try:
            if directive == "log" and len(args) in (1, 2):
                logs.append(Log(*args))
            elif directive == "witness" and len(args) in (2, 3):
                witnesses.append(Witness(*args))
                lines[args[0]] = number
            elif directive == "group" and len(args) >= 3:
                groups.append(Group(args[0], args[1], tuple(args[2:])))
                lines[args[0]] = number
            elif directive == "quorum" and len(args) == 1:
                quorums.append(args[0])
            elif directive in ("log", "witness", "group", "quorum"):
                raise PolicyError(f"wrong number of fields for {directive!r}")
            else:
                raise PolicyError(f"unknown directive {directive!r}")
        except PolicyError as exc:
            raise PolicyError(f"line {number}: {exc}", exc.definition) from None
    if len(quorums) != 1:
        raise PolicyError(f"a policy needs exactly one quorum line, found {len(quorums)}")
    try:
        return Policy(tuple(witnesses), tuple(groups), quorums[0], tuple(logs))
    except PolicyError as exc:
        where = lines.get(exc.definition) if exc.definition else None
        if where is None:
            raise
        raise PolicyError(f"line {where}: {exc}", exc.definition) from None


def consortium_policy(
    regulator: str, hospitals: Sequence[str], *, logs: Sequence[str] = ()
) -> Policy:
    """The default quorum: the regulator and at least two thirds (ceil(2n/3)) of the hospitals.

    ``regulator`` and ``hospitals`` are witness vkeys; each witness is named by its key name.
    """
    regulator_witness = Witness(_check_vkey(regulator, "regulator"), regulator)
    hospital_witnesses = tuple(Witness(_check_vkey(key, "hospital"), key) for key in hospitals)
    if not hospital_witnesses:
        raise PolicyError("a consortium needs at least one hospital witness")
    for witness in (regulator_witness, *hospital_witnesses):
        if witness.name in (HOSPITALS_GROUP, CONSORTIUM_GROUP):
            raise PolicyError(f"witness name {witness.name!r} clashes with a consortium group name")
    return Policy(
        witnesses=(regulator_witness, *hospital_witnesses),
        groups=(
            Group(HOSPITALS_GROUP, CONSORTIUM_THRESHOLD, tuple(w.name for w in hospital_witnesses)),
            Group(CONSORTIUM_GROUP, "all", (regulator_witness.name, HOSPITALS_GROUP)),
        ),
        quorum=CONSORTIUM_GROUP,
        logs=tuple(Log(key) for key in logs),
    )
