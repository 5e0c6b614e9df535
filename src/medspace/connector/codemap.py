"""A hospital's code map: local or foreign codes translated into the codes the store keeps.

The store keeps ICD-10 diagnoses, ATC drugs and LOINC tests; many systems send SNOMED CT,
RxNorm or house codes instead, and their records would stay in the quarantine. A code map is
a CSV table the hospital maintains (often exported from its terminology server)::

    source_system,source_code,target_system,target_code
    http://snomed.info/sct,44054006,icd-10,E11.9
    http://www.nlm.nih.gov/research/umls/rxnorm,860975,atc,A10BA02
    SCT,44054006,icd-10,E11.9
    LOCAL-LAB,GLU,loinc,2345-7

``source_system`` is written as the data writes it (a FHIR system URL, an HL7 v2 coding system
name such as ``SCT``); ``target_system`` is ``icd-10``, ``atc`` or ``loinc`` (or its FHIR URL).
A mapped code is offered next to the original, never instead of it, and is checked like any
other code. Changing the map makes an export a new one (its fingerprint includes the map), and
``medspace node quarantine retry`` loads what the new map can now translate.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medspace.connector.encoding import decode
from medspace.connector.quarantine import Rejected

ICD10_URL = "http://hl7.org/fhir/sid/icd-10"
ATC_URL = "http://www.whocc.no/atc"
LOINC_URL = "http://loinc.org"

#: Target systems by the names a map may use: FHIR URL and HL7 v2 name.
_TARGETS: dict[str, tuple[str, str]] = {
    "icd-10": (ICD10_URL, "I10"),
    "icd10": (ICD10_URL, "I10"),
    ICD10_URL: (ICD10_URL, "I10"),
    "atc": (ATC_URL, "WHOATC"),
    ATC_URL: (ATC_URL, "WHOATC"),
    "loinc": (LOINC_URL, "LN"),
    LOINC_URL: (LOINC_URL, "LN"),
}
_COLUMNS = ("source_system", "source_code", "target_system", "target_code")


class CodeMapError(ValueError):
    """A code map file that cannot be used; the message names the file and line."""


@dataclass(frozen=True)
class CodeMap:
    """``(source system, source code)`` → ``(target FHIR URL, target HL7 name, target code)``."""

    entries: dict[tuple[str, str], tuple[str, str, str]] = field(default_factory=dict)
    path: Path | None = None

    @classmethod
    def load(cls, path: Path) -> CodeMap:
        """Read a code map CSV (UTF-8 or GB 18030); every problem is named with its line."""
        try:
            text = decode(path.read_bytes().removeprefix(b"\xef\xbb\xbf"))
        except Rejected as exc:
            raise CodeMapError(f"{path}: {exc}") from None
        except OSError as exc:
            raise CodeMapError(f"{path}: {exc.strerror or exc}") from None
        reader = csv.DictReader(text.splitlines())
        missing = [c for c in _COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise CodeMapError(f"{path}: the header lacks {', '.join(missing)}"
                               f" (it needs {', '.join(_COLUMNS)})")
        entries: dict[tuple[str, str], tuple[str, str, str]] = {}
        for line, row in enumerate(reader, start=2):
            values = {c: (row.get(c) or "").strip() for c in _COLUMNS}
            if not all(values.values()):
                raise CodeMapError(f"{path}:{line}: every column needs a value")
            target = _TARGETS.get(values["target_system"].lower()) or _TARGETS.get(
                values["target_system"])
            if target is None:
                raise CodeMapError(f"{path}:{line}: target_system {values['target_system']!r}"
                                   " is not icd-10, atc or loinc")
            key = (values["source_system"], values["source_code"])
            mapped = (*target, values["target_code"])
            if entries.get(key, mapped) != mapped:
                raise CodeMapError(f"{path}:{line}: {key[0]} {key[1]} is mapped twice,"
                                   " to different codes")
            entries[key] = mapped
        return cls(entries, path)

    def extend(self, resource: Any) -> Any:
        """``resource`` with a coding of the mapped code added after every mapped coding."""
        if not self.entries:
            return resource
        if isinstance(resource, list):
            return [self.extend(item) for item in resource]
        if not isinstance(resource, dict):
            return resource
        out = {key: self.extend(value) for key, value in resource.items()}
        codings = out.get("coding")
        if isinstance(codings, list):
            added = []
            for coding in codings:
                if isinstance(coding, dict):
                    found = self.entries.get((str(coding.get("system")), str(coding.get("code"))))
                    if found is not None:
                        added.append({"system": found[0], "code": found[2]})
            out["coding"] = codings + [a for a in added if a not in codings]
        return out

    def hl7(self, system: str, code: str) -> tuple[str, str] | None:
        """The mapped ``(HL7 coding system name, code)`` of an HL7 v2 coded value, if any."""
        found = self.entries.get((system, code))
        return None if found is None else (found[1], found[2])
