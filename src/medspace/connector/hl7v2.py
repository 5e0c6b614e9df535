"""HL7 v2 batch files: split into messages, route each to its patient, map segments to facts.

Line endings are normalised first: files are read in universal-newline mode, so ``\\r``,
``\\n`` and ``\\r\\n`` all end a segment, and each message is re-joined with ``\\r`` before
python-hl7 sees it (it silently misparses ``\\n``). Routing needs only the MRN in PID-3, read
by a plain split; the full parse happens once, per batch, in :class:`Hl7Mapper`. A message that
does not parse is quarantined whole; so is one with a segment that cannot be mapped, under that
segment's name, while its other segments load (a retry loads the message again, which changes
nothing for the segments already in).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import hl7

from medspace.connector.codemap import CodeMap
from medspace.connector.encoding import decode, shown
from medspace.connector.mapping import (
    Fact,
    Origin,
    PatientRows,
    PersonFacts,
    Routed,
    atc,
    birth_date_in_range,
    icd10,
    loinc,
    required,
    unexpected_shape,
    unit,
)
from medspace.connector.quarantine import Quarantine, Rejected
from medspace.store.vault import Identity

_ENVELOPE = frozenset({"FHS", "BHS", "BTS", "FTS"})
_PATIENT_CLASS = {"I": "inpatient", "O": "outpatient", "E": "emergency"}
_SEXES = {"F": "female", "M": "male", "O": "other", "U": "unknown", "A": "other", "N": "unknown"}
_ATC_SYSTEMS = frozenset({"WHOATC", "ATC"})
_RESPONSE_CODE = "treatment-response"



def files(export_dir: Path) -> list[Path]:
    """The HL7 batch files of an export, ADT first so identities and visits come early."""
    return sorted(export_dir.glob("*.hl7"), key=lambda p: (not p.stem.startswith("ADT"), p.name))


def _segments(path: Path) -> Iterator[bytes]:
    """Every segment of a file, whatever ends it (``\r``, ``\n`` or ``\r\n``), read as a
    stream of lines so that a file of any size takes little memory."""
    with path.open("rb") as handle:
        for line in handle:
            yield from line.rstrip(b"\n").split(b"\r")


def messages(path: Path) -> Iterator[tuple[int, list[str], Rejected | None]]:
    """``(message number, segments, why it is unreadable or None)`` for each message in a file.

    Segments before the first MSH that are not batch envelope come out as message 0 so that
    they can be quarantined rather than dropped. A segment that is neither UTF-8 nor GB 18030
    makes its message unreadable; it is shown with its bytes escaped.
    """
    number, current, problem = 0, [], None
    for raw in _segments(path):
        try:
            segment = decode(raw)
        except Rejected as rejected:
            segment, problem = shown(raw), problem or rejected
        if not segment.strip() or segment[:3] in _ENVELOPE:
            continue
        if segment.startswith("MSH"):
            if current:
                yield number, current, problem
            number, current, problem = number + 1, [], None
        current.append(segment)
    if current:
        yield number, current, problem


def mrn_from_pid3(value: str) -> str | None:
    """The medical record number in PID-3: the first identifier of type ``MR``, or else the
    only identifier when PID-3 holds just one and gives it no type (as many feeds and the
    standard's own examples do)."""
    identifiers = [rep.split("^") for rep in value.split("~") if rep.split("^")[0]]
    for parts in identifiers:
        if len(parts) > 4 and parts[4] == "MR":
            return parts[0]
    if len(identifiers) == 1 and (len(identifiers[0]) < 5 or not identifiers[0][4]):
        return identifiers[0][0]
    return None


def _route_key(segments: list[str]) -> str:
    if not segments[0].startswith("MSH"):
        raise Rejected("HL7 message does not parse", "segments outside any message")
    for segment in segments:
        if segment.startswith("PID|"):
            fields = segment.split("|")
            mrn = mrn_from_pid3(fields[3]) if len(fields) > 3 else None
            return required(mrn, "PID-3 (MR)")
    raise Rejected("missing required field", "PID segment")


def route_message(source: str, number: int, segments: list[str], problem: Rejected | None,
                  quarantine: Quarantine) -> Routed | None:
    """One message as ``(MRN, origin, text joined by \r)``, or None once it is quarantined."""
    text = "\r".join(segments)
    header = segments[0].split("|") if segments else []
    kind = header[8] if len(header) > 8 and header[0] == "MSH" else "unknown"
    try:
        if problem is not None:
            raise problem
        key = _route_key(segments)
    except Rejected as rejected:
        quarantine.add(source, number, kind, rejected, text)
        return None
    return key, Origin(source, number, kind), text


def route(export_dir: Path, quarantine: Quarantine, skipped: Counter[str]) -> Iterator[Routed]:
    """Every message of the export's files; the unreadable ones quarantined."""
    del skipped  # every HL7 message is routed; skipped segments are counted when mapped
    for path in files(export_dir):
        for number, segments, problem in messages(path):
            routed = route_message(path.name, number, segments, problem, quarantine)
            if routed is not None:
                yield routed


def _date(value: str, what: str) -> dt.date:
    text = required(value, what)
    try:
        return dt.date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    except ValueError:
        raise Rejected("invalid date", f"{what}={text!r}") from None


class _Message:
    """Field and component access on a parsed message, with HL7 escapes undone."""

    def __init__(self, text: str) -> None:
        try:
            self.parsed = hl7.parse(text)
        except Exception as exc:  # python-hl7 raises assorted errors on malformed input
            raise Rejected("HL7 message does not parse", f"{type(exc).__name__}: {exc}") from None

    def field(self, segment: hl7.Segment, n: int) -> str:
        return str(segment[n]) if len(segment) > n else ""

    def components(self, segment: hl7.Segment, n: int) -> list[str]:
        return [self.parsed.unescape(c) for c in self.field(segment, n).split("^")]

    @staticmethod
    def component(parts: list[str], n: int) -> str:
        return parts[n - 1] if len(parts) >= n else ""


def _person(m: _Message, pid: hl7.Segment) -> PersonFacts:
    mrn = required(mrn_from_pid3(m.field(pid, 3)), "PID-3 (MR)")
    id_number = None
    for rep in m.field(pid, 3).split("~"):
        parts = rep.split("^")
        if len(parts) > 4 and parts[4] == "NNCHN":
            id_number = parts[0]
    name = "".join(m.components(pid, 5)[:2])
    birth = birth_date_in_range(_date(m.field(pid, 7), "PID-7"))
    sex = _SEXES.get(m.field(pid, 8) or "U")
    if sex is None:
        raise Rejected("invalid code", f"PID-8={m.field(pid, 8)!r}")
    address = m.components(pid, 11)
    street, city, province, district = (m.component(address, i) for i in (1, 3, 4, 8))
    city = "" if city == province else city
    phone = m.component(m.components(pid, 13), 1)
    death = m.field(pid, 29)
    identity = Identity(
        name=name,
        mrn=mrn,
        id_number=id_number or None,
        phone=phone or None,
        address=f"{province}{city}{district}{street}" or None,
        birth_date=birth,
    )
    return PersonFacts(identity, sex, birth, _date(death, "PID-29") if death else None)


def _prior_mrn(m: _Message) -> str:
    """The MRN of the patient an A40 retires, from MRG-1 (prior patient identifier list)."""
    try:
        mrg = m.parsed.segment("MRG")
    except KeyError:
        raise Rejected("missing required field", "MRG segment of an A40") from None
    return required(mrn_from_pid3(m.field(mrg, 1)), "MRG-1 (MR)")


def _result_record(m: _Message, obx: hl7.Segment, order: str) -> str:
    """A lab result's own identity: the filler order number (OBR-3), the observation (OBX-3)
    and its sub-id (OBX-4), so a corrected result (OBX-11 ``C``) replaces the first one."""
    code = m.component(m.components(obx, 3), 1)
    return f"OBX/{order}/{code}/{m.field(obx, 4)}"


def _coded(m: _Message, segment: hl7.Segment, n: int, systems: frozenset[str],
           code_map: CodeMap) -> str:
    """The code of a CE/CWE field in one of ``systems``: its identifier, else its alternate
    identifier (components 4–6), else what the hospital's code map makes of either."""
    parts = m.components(segment, n)
    pairs = [(m.component(parts, 1), m.component(parts, 3)),
             (m.component(parts, 4), m.component(parts, 6))]
    if not any(pairs[0]):
        raise Rejected("no code (text only)", f"{segment[0]}-{n}")
    for code, system in pairs:
        if code and system in systems:
            return code
    for code, system in pairs:
        mapped = code_map.hl7(system, code) if code else None
        if mapped is not None and mapped[0] in systems:
            return mapped[1]
    seen = ", ".join(repr(system) for code, system in pairs if code)
    raise Rejected("unknown code system", f"{segment[0]}-{n}: {seen}")


class Hl7Mapper:
    """Maps one batch's messages into :class:`PatientRows`, quarantining what fails.

    The PID of the latest ADT message gives the patient's demographics (an A08 updates them);
    another message's PID describes only a patient neither an ADT message nor the store has.
    An A40's MRG segment names a patient to merge into the PID's patient; the merges are
    collected in ``merges`` as ``(prior MRN, surviving MRN)`` and applied after the whole feed
    is loaded.
    """

    #: Routing keys are the hospital's MRNs.
    key_namespace = "mrn"

    def __init__(self, quarantine: Quarantine, skipped: Counter[str],
                 code_map: CodeMap | None = None) -> None:
        self.quarantine = quarantine
        self.skipped = skipped
        self.code_map = code_map or CodeMap()
        self.merges: list[tuple[str, str]] = []

    def add(self, patients: dict[str, PatientRows], key: str, origin: Origin, text: str) -> None:
        """Parse one message and add what it says about its patient."""
        try:
            m = _Message(text)
            rows = patients.setdefault(key, PatientRows(key))
            adt = origin.kind.startswith("ADT")
            if adt or not rows.known:
                rows.person = _person(m, m.parsed.segment("PID"))
                rows.person_origin = Origin(origin.source, origin.position, "PID")
            if origin.kind.startswith("ADT^A40"):
                self.merges.append((_prior_mrn(m), key))
        except (Rejected, KeyError) as exc:
            rejected = exc if isinstance(exc, Rejected) else Rejected("missing required field")
            self.quarantine.add(origin.source, origin.position, origin.kind, rejected, text)
            return
        except (TypeError, ValueError, AttributeError, IndexError) as exc:
            self.quarantine.add(origin.source, origin.position, origin.kind,
                                unexpected_shape(exc), text)
            return
        visit, order = None, None
        for segment in m.parsed:
            kind = str(segment[0])
            if kind == "OBR":
                order = m.component(m.components(segment, 3), 1) or None
            try:
                fact = self._fact(m, segment, kind, visit, origin)
                if fact is not None:
                    if kind == "OBX" and order is not None and fact.table == "measurement":
                        fact = dataclasses.replace(fact, record=_result_record(m, segment, order))
                    rows.put([fact])
            except Rejected as rejected:
                self.quarantine.add(origin.source, origin.position, kind, rejected, text)
                continue
            except (TypeError, ValueError, AttributeError, IndexError, KeyError) as exc:
                self.quarantine.add(origin.source, origin.position, kind,
                                    unexpected_shape(exc), text)
                continue
            if fact is not None and kind == "PV1":
                visit = fact.visit_ref

    def _fact(
        self, m: _Message, seg: hl7.Segment, kind: str, visit: str | None, origin: Origin
    ) -> Fact | None:
        at = Origin(origin.source, origin.position, kind)
        if kind == "PV1":
            visit_type = _PATIENT_CLASS.get(m.field(seg, 2))
            if visit_type is None:
                raise Rejected("invalid code", f"PV1-2={m.field(seg, 2)!r}")
            row = {
                "visit_type": visit_type,
                "start_date": _date(m.field(seg, 44), "PV1-44"),
                "end_date": _date(m.field(seg, 45), "PV1-45") if m.field(seg, 45) else None,
            }
            return Fact("visit", row, at, required(m.field(seg, 19), "PV1-19"))
        if kind == "DG1":
            code = icd10(_coded(m, seg, 3, frozenset({"I10", "ICD10"}), self.code_map))
            row = {"condition_source_value": code, "start_date": _date(m.field(seg, 5), "DG1-5")}
            return Fact("condition", row, at, visit)
        if kind == "AL1":
            code = _coded(m, seg, 3, frozenset({"SCT", "SNM"}), self.code_map)
            when = m.field(seg, 6) or m.field(self._msh(m), 7)
            row = {"allergy_source_value": code, "recorded_date": _date(when, "AL1-6")}
            return Fact("allergy", row, at)
        if kind == "PR1":
            code = _coded(m, seg, 3, frozenset({"I9C", "I10P", "SCT"}), self.code_map)
            when = _date(m.field(seg, 5), "PR1-5")
            row = {"procedure_source_value": code, "procedure_date": when}
            return Fact("procedure", row, at, visit)
        if kind == "RXE":
            timing = m.components(seg, 1)
            start, end = m.component(timing, 4), m.component(timing, 5)
            row = {
                "drug_source_value": atc(_coded(m, seg, 2, _ATC_SYSTEMS, self.code_map)),
                "start_date": _date(start, "RXE-1.4"),
                "end_date": _date(end, "RXE-1.5") if end else None,
            }
            return Fact("drug_exposure", row, at, visit)
        if kind == "RXA":
            row = {
                "drug_source_value": atc(_coded(m, seg, 5, _ATC_SYSTEMS, self.code_map)),
                "start_date": _date(m.field(seg, 3), "RXA-3"),
            }
            return Fact("drug_exposure", row, at, visit)
        if kind == "OBX":
            return self._obx(m, seg, visit, at)
        return None

    @staticmethod
    def _msh(m: _Message) -> hl7.Segment:
        return m.parsed.segment("MSH")

    def _obx(self, m: _Message, seg: hl7.Segment, visit: str | None, at: Origin) -> Fact | None:
        value_type = m.field(seg, 2)
        code_parts = m.components(seg, 3)
        code, system = m.component(code_parts, 1), m.component(code_parts, 3)
        when = _date(m.field(seg, 14) or m.field(self._msh(m), 7), "OBX-14")
        if value_type == "TX":
            self.skipped["OBX (free text)"] += 1
            return None
        if code == _RESPONSE_CODE:
            answer = m.component(m.components(seg, 5), 1)
            if answer not in ("Y", "N"):
                raise Rejected("invalid code", f"OBX-5={answer!r}")
            row = {
                "observation_source_value": _RESPONSE_CODE,
                "value_as_concept": answer,
                "observation_date": when,
            }
            return Fact("observation", row, at, visit)
        if system != "LN":
            mapped = self.code_map.hl7(system, code)
            if mapped is None or mapped[0] != "LN":
                raise Rejected("unknown code system", f"OBX-3: {system!r}")
            code = mapped[1]
        raw_value = m.field(seg, 5)
        try:
            value = float(raw_value) if raw_value else None
        except ValueError:
            raise Rejected("invalid value", f"OBX-5={raw_value!r}") from None
        ucum = unit(m.component(m.components(seg, 6), 1))
        row = {
            "measurement_source_value": loinc(required(code, "OBX-3")),
            "value_as_number": value,
            "unit_source_value": ucum,
            "measurement_date": when,
        }
        return Fact("measurement", row, at, visit)
