"""Combining the hospitals' released aggregates into one study result.

Each hospital releases only cells that passed its own disclosure rules; a suppressed cell
arrives as ``null``. The pooled count of a cell is the sum of what was released, and the
result says which hospitals suppressed it, so no one reads a lower bound as the total.
"""

from __future__ import annotations

from typing import Any


class UnknownKind(ValueError):
    """The hub does not know how to combine results of this kind of task."""


def combine(kind: str, payloads: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The study result of ``kind`` from each hospital's released ``payloads``."""
    if kind != "count":
        raise UnknownKind(f"no way to combine results of kind {kind!r}")
    return combine_counts(payloads)


def combine_counts(payloads: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Counts by hospital and group, and pooled over hospitals."""
    group_by: list[str] | None = None
    by_hospital: list[dict[str, Any]] = []
    pooled: dict[tuple[str, ...], dict[str, Any]] = {}
    for hospital in sorted(payloads):
        payload = payloads[hospital]
        if group_by is None:
            group_by = list(payload["group_by"])
        elif list(payload["group_by"]) != group_by:
            raise ValueError(f"{hospital} grouped by {payload['group_by']}, not {group_by}")
        for cell in payload["cells"]:
            key = tuple(str(v) for v in cell["key"])
            count = cell["count"]
            by_hospital.append({"hospital": hospital, "key": list(key), "count": count})
            total = pooled.setdefault(key, {"key": list(key), "count": 0, "suppressed_at": []})
            if count is None:
                total["suppressed_at"].append(hospital)
            else:
                total["count"] += int(count)
    return {
        "group_by": group_by or [],
        "by_hospital": by_hospital,
        "pooled": [pooled[k] for k in sorted(pooled)],
        "hospitals": sorted(payloads),
    }
