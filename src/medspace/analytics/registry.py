"""The analyses a node can run, each pinned by version and by the digest of its code.

A hospital decides what code may run on its data. It allows an analysis by kind *and* by the
SHA-256 of the module that implements it (:attr:`Analysis.digest`); after an upgrade changes
that code, the node refuses the kind until the hospital has looked and pinned the new digest.
Each analysis also names the ODRL action it performs, so a usage policy that permits only
``aggregate`` (or only ``train``) decides which analyses may touch a dataset.
"""

from __future__ import annotations

import hashlib
import inspect
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from types import MappingProxyType
from typing import Any

from medspace.analytics.counting import DisclosureRules, count_task
from medspace.store.consent import ConsentRule
from medspace.store.engine import ClinicalStore

__all__ = ["ANALYSES", "Analysis", "Compute", "pins"]

Compute = Callable[[ClinicalStore, dict[str, Any], DisclosureRules, ConsentRule], dict[str, Any]]


@dataclass(frozen=True)
class Analysis:
    """One kind of task: its code, its version, and the policy action it performs."""

    kind: str
    version: str
    action: str
    compute: Compute

    @cached_property
    def digest(self) -> str:
        """``sha256:`` of the source of the module that holds :attr:`compute`."""
        source = inspect.getsource(sys.modules[self.compute.__module__])
        return "sha256:" + hashlib.sha256(source.encode("utf-8")).hexdigest()

    @property
    def pin(self) -> str:
        """What a hospital writes to allow exactly this code: ``version@digest``."""
        return f"{self.version}@{self.digest}"


ANALYSES: Mapping[str, Analysis] = MappingProxyType({
    "count": Analysis("count", "1", "aggregate", count_task),
})
"""Every analysis this version of medspace can run, by kind."""


def pins(kinds: list[str] | None = None) -> dict[str, str]:
    """The pins of ``kinds`` (default: every analysis), for a node's allowlist."""
    return {kind: ANALYSES[kind].pin for kind in (kinds if kinds is not None else ANALYSES)}
