"""The egress filter: the last check that no direct identifier the node holds leaves it.

De-identification decides what a result may contain; this filter does not trust that it was
done right. It knows the exact names, ID numbers and phone numbers in the node's own vault and
screens every outbound payload for them — as they are written, with spaces or dashes inside the
numbers, in full-width digits, glued to Chinese text. A hit blocks the payload; the hit names
the kind of identifier and where it was, never the identifier itself, so the refusal can be
logged and shown.

Matching is by lookup, not by scanning for each identifier: the payload's candidate numbers
(runs of digits) and candidate names (runs of Chinese characters, and word pairs for Latin
names) are looked up in hashed sets, so a payload costs time in its own length whatever the
size of the vault. :class:`VaultEgressFilter` keeps the sets in step with the vault: a
patient ingested while the node runs is screened for from the next payload on.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from medspace.deid.text import normalise
from medspace.store.vault import Identity, IdentityVault

#: A run of digits possibly broken by spaces, dashes or dots, ending in a check ``X``.
_NUMBER = re.compile(r"(?<![0-9])[0-9](?:[0-9 \-.]*[0-9])?[Xx]?")
_JSON_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+")
_WORD = re.compile(r"[^\W\d_]+(?:['\-][^\W\d_]+)*")
_SHORTEST_NUMBER = 7
_SHORTEST_NAME = 2
_LONGEST_CJK_NAME = 4


@dataclass(frozen=True)
class Hit:
    """An identifier found in a payload: its kind and where, never its value."""

    kind: str
    start: int
    end: int


class EgressBlocked(Exception):
    """A payload that would have carried a direct identifier out of the node."""

    def __init__(self, hits: list[Hit]) -> None:
        kinds = ", ".join(sorted({hit.kind for hit in hits}))
        super().__init__(f"blocked: the payload holds {len(hits)} direct identifier(s) of this "
                         f"node's patients ({kinds})")
        self.hits = hits


def _digits(text: str) -> str:
    return re.sub(r"[^0-9Xx]", "", text).upper()


class EgressFilter:
    """The node's identifiers, ready to be looked for in outbound payloads."""

    def __init__(self, identities: Iterable[Identity]) -> None:
        self._numbers: dict[str, str] = {}
        self._names: set[str] = set()
        self._longest_name_words = 1
        for identity in identities:
            for kind, value in (("id_number", identity.id_number), ("phone", identity.phone),
                                ("mrn", identity.mrn)):
                number = _digits(normalise(value)) if value else ""
                if len(number) >= _SHORTEST_NUMBER:
                    self._numbers[number] = kind
            name = " ".join(normalise(identity.name).split()).lower()
            if len(name.replace(" ", "")) >= _SHORTEST_NAME:
                self._names.add(name)
                self._longest_name_words = max(self._longest_name_words, len(name.split()))

    def __len__(self) -> int:
        return len(self._numbers) + len(self._names)

    def scan(self, payload: str) -> list[Hit]:
        """Every identifier of the node's patients in ``payload`` (text or JSON: ``\\u``
        escapes are read as the characters they stand for; positions are in the read text)."""
        text = normalise(_JSON_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), payload))
        hits = [Hit(self._numbers[number], m.start(), m.end())
                for m in _NUMBER.finditer(text)
                if (number := _digits(m.group())) in self._numbers]
        for run in _CJK.finditer(text):
            hits += self._cjk_names(run.group(), run.start())
        hits += self._latin_names(text)
        return sorted(hits, key=lambda hit: (hit.start, hit.end))

    def _cjk_names(self, run: str, offset: int) -> list[Hit]:
        found = []
        for start in range(len(run)):
            for length in range(_SHORTEST_NAME, min(_LONGEST_CJK_NAME, len(run) - start) + 1):
                if run[start:start + length] in self._names:
                    found.append(Hit("name", offset + start, offset + start + length))
        return found

    def _latin_names(self, text: str) -> list[Hit]:
        words = list(_WORD.finditer(text))
        found = []
        for first in range(len(words)):
            for count in range(2, self._longest_name_words + 1):
                last = first + count - 1
                if last >= len(words):
                    break
                name = " ".join(w.group().lower() for w in words[first:last + 1])
                if name in self._names:
                    found.append(Hit("name", words[first].start(), words[last].end()))
        return found

    def check(self, payload: str) -> None:
        """Raise :class:`EgressBlocked` if ``payload`` holds any of the node's identifiers."""
        hits = self.scan(payload)
        if hits:
            raise EgressBlocked(hits)


class Screen(Protocol):
    """What the node asks of an egress filter: refuse a payload that holds an identifier."""

    def check(self, payload: str) -> None:
        """Raise :class:`EgressBlocked` if ``payload`` holds any of the node's identifiers."""


class VaultEgressFilter:
    """An :class:`EgressFilter` over a live vault, rebuilt whenever the vault has changed.

    An ingest or an HL7 listener adds patients while the node's agent runs in another process;
    each check first reads the vault's write counter (one small query) and, when it moved,
    decrypts the vault again before screening.
    """

    def __init__(self, vault: IdentityVault) -> None:
        self._vault = vault
        self._lock = threading.Lock()
        self._version: int | None = None
        self._filter = EgressFilter(())

    def current(self) -> EgressFilter:
        """The filter for the vault as it is now."""
        with self._lock:
            version = self._vault.version()
            if version != self._version:
                self._filter = EgressFilter(self._vault.identities())
                self._version = version
            return self._filter

    def check(self, payload: str) -> None:
        """Raise :class:`EgressBlocked` if ``payload`` holds an identifier the vault holds now."""
        self.current().check(payload)
