"""Reading the generated files back, as an ingester would."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hl7


def read_ndjson(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            yield json.loads(line)


def read_hl7_messages(path: Path) -> list[hl7.Message]:
    """Every message of an HL7 batch file, parsed with python-hl7."""
    text = path.read_bytes().decode("utf-8")
    batch_file = hl7.parse_file(text)
    return [message for batch in batch_file for message in batch]


def fhir_hospitals(root: Path) -> list[Path]:
    return sorted(p for p in root.glob("*/export") if (p / "Patient.ndjson").exists())


def hl7_hospitals(root: Path) -> list[Path]:
    return sorted(p for p in root.glob("*/export") if (p / "ADT_A01.hl7").exists())
