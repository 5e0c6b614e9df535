"""FHIR R4 JSON files beside bulk NDJSON: Bundles of every type, and single resources.

A Bundle (``collection``, ``transaction``, ``batch``, ``searchset``, ``document``, …) is read
entry by entry; a file holding one resource is that resource. Inside a Bundle, resources refer
to each other by their entry's ``fullUrl`` — often ``urn:uuid:…`` in transactions — so every
reference to a ``fullUrl`` of the same Bundle is rewritten to the ``Type/id`` form the mapper
reads. Each resource then goes through the same routing and mapping as an NDJSON line, with
the file and the entry number as its origin.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from medspace.connector.encoding import decode
from medspace.connector.quarantine import Rejected

Entry = tuple[int, dict[str, Any] | Rejected, Any]
"""An entry's position (1-based; 0 for a file that is one resource), its resource or why it
cannot be read, and the entry as it was (for the quarantine)."""


def files(export_dir: Path) -> list[Path]:
    """The FHIR JSON files of an export folder (``manifest.json`` is the export's own)."""
    return sorted(p for p in export_dir.glob("*.json") if p.name != "manifest.json")


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise Rejected("malformed JSON", str(exc)) from None
    except RecursionError:
        raise Rejected("malformed JSON", "nested too deeply") from None


def json_object(text: str) -> dict[str, Any]:
    """The JSON object in ``text``; :class:`Rejected` if it is malformed or not an object."""
    value = _loads(text)
    if not isinstance(value, dict):
        raise Rejected("malformed JSON", "not a JSON object")
    return value


def read(path: Path) -> dict[str, Any]:
    """The FHIR resource (or Bundle) in ``path``; :class:`Rejected` if it is not one."""
    document = _loads(decode(path.read_bytes()))
    if not isinstance(document, dict) or not isinstance(document.get("resourceType"), str):
        raise Rejected("not a FHIR resource", "no resourceType")
    return document


def entries(document: dict[str, Any]) -> Iterator[Entry]:
    """The resources of a Bundle, references between them made ``Type/id``; or the resource."""
    if document["resourceType"] != "Bundle":
        yield 0, document, document
        return
    listed = document.get("entry", [])
    if not isinstance(listed, list):
        yield 1, Rejected("wrong type or structure", "Bundle.entry is not a list"), listed
        return
    local = {
        entry["fullUrl"]: f"{entry['resource']['resourceType']}/{entry['resource']['id']}"
        for entry in listed
        if isinstance(entry, dict) and isinstance(entry.get("fullUrl"), str)
        and isinstance(entry.get("resource"), dict)
        and isinstance(entry["resource"].get("resourceType"), str)
        and isinstance(entry["resource"].get("id"), str)
    }
    for position, entry in enumerate(listed, start=1):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            yield position, Rejected("not a FHIR resource", f"Bundle.entry[{position - 1}]"), entry
            continue
        yield position, _resolved(resource, local), entry


def _resolved(value: Any, local: dict[str, str]) -> Any:
    """``value`` with every ``reference`` to a ``fullUrl`` of the Bundle made ``Type/id``."""
    if isinstance(value, list):
        return [_resolved(v, local) for v in value]
    if not isinstance(value, dict):
        return value
    resolved = {k: _resolved(v, local) for k, v in value.items()}
    reference = resolved.get("reference")
    if isinstance(reference, str) and reference in local:
        resolved["reference"] = local[reference]
    return resolved
