"""Render a patient record as HL7 v2.5.1 messages, as primary-care HIS/LIS systems export them.

ADT^A01 per encounter (PID with the identity, PV1, DG1 diagnoses, PR1 procedures, AL1
allergies), ORU^R01 per encounter with lab results (OBX with LOINC codes and UCUM units), ORU^R01
for treatment responses (OBR-4 names the drug, OBX-5 is Y or N) and for free-text notes (OBX of
type TX), and RDE^O11 for drugs. Segments end in a carriage return, as the standard requires;
files are HL7 batch files (FHS/BHS ... BTS/FTS).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from medspace.synth.codes import DISEASES, DRUGS, LABS, PROCEDURES, RESPONSE_CODE
from medspace.synth.records import Encounter, PatientRecord

Segments = list[str]
"""One message: its segments, without terminators."""

MESSAGE_TYPES = ("ADT_A01", "ORU_R01", "RDE_O11")
"""Message structures a HL7 v2 export holds, one batch file each."""

_ALLERGY_TYPE = {"medication": "DA", "food": "FA", "environment": "EA"}
_PATIENT_CLASS = {"inpatient": "I", "outpatient": "O", "emergency": "E"}
_ESCAPES = (("\\", "\\E\\"), ("|", "\\F\\"), ("^", "\\S\\"), ("&", "\\T\\"), ("~", "\\R\\"))


def escape(text: str) -> str:
    """Escape the delimiters in free text; line breaks become the ``\\.br\\`` escape."""
    for raw, escaped in _ESCAPES:
        text = text.replace(raw, escaped)
    return text.replace("\n", "\\.br\\")


def ts(value: dt.datetime | dt.date) -> str:
    """An HL7 TS value (YYYYMMDD[HHMMSS])."""
    if isinstance(value, dt.datetime):
        return value.strftime("%Y%m%d%H%M%S")
    return value.strftime("%Y%m%d")


def _msh(hospital: str, when: dt.datetime, message_type: str, control_id: str) -> str:
    return (
        f"MSH|^~\\&|HIS|{hospital}|MEDSPACE|MEDSPACE|{ts(when)}||{message_type}|{control_id}"
        "|P|2.5.1|||||CHN|UNICODE UTF-8"
    )


def pid_segment(record: PatientRecord) -> str:
    """PID: MRN and resident ID number, name, birth date, sex, address, mobile phone, death."""
    who = record.identity
    d = who.division
    fields = [
        "PID",
        "1",
        "",
        f"{record.mrn}^^^{record.hospital_id}^MR~{who.resident_id}^^^CHN^NNCHN",
        "",
        f"{escape(who.surname)}^{escape(who.given)}",
        "",
        ts(who.birth_date),
        "M" if who.male else "F",
        "",
        "",
        f"{escape(who.street)}^^{d.city}^{d.province}^^CHN^H^{d.district}^{d.code}",
        "",
        f"{who.phone}^PRN^CP",
    ]
    if record.death:
        fields += [""] * 15 + [ts(record.death), "Y"]
    return "|".join(fields)


def _pv1(record: PatientRecord, encounter: Encounter) -> str:
    fields = ["PV1", "1", _PATIENT_CLASS[encounter.kind]] + [""] * 16 + [encounter.id]
    fields += [""] * 24 + [ts(encounter.start), ts(encounter.end)]
    return "|".join(fields)


def messages(record: PatientRecord, control_ids: Iterator[int]) -> Iterator[tuple[str, Segments]]:
    """Every message of one patient as (message structure, segments), in encounter order."""
    hospital = record.hospital_id
    pid = pid_segment(record)
    allergies = [
        f"AL1|{n}|{_ALLERGY_TYPE[a.substance.category]}|"
        + (
            f"{a.substance.snomed}^{a.substance.display}^SCT^^{escape(a.substance.text)}"
            if a.substance.snomed
            else f"^^^^{escape(a.substance.text)}"
        )
        for n, a in enumerate(record.allergies, start=1)
    ]
    for encounter in record.encounters:
        pv1 = _pv1(record, encounter)
        adt = [
            _msh(hospital, encounter.start, "ADT^A01^ADT_A01", f"{next(control_ids):010d}"),
            f"EVN|A01|{ts(encounter.start)}",
            pid,
            pv1,
        ]
        dx = [d for d in record.diagnoses if d.encounter_id == encounter.id]
        adt += [
            f"DG1|{n}||{d.code}^{DISEASES[d.code].display}^I10||{ts(d.onset)}|F"
            for n, d in enumerate(dx, start=1)
        ]
        adt += allergies
        procs = [p for p in record.procedures if p.encounter_id == encounter.id]
        adt += [
            f"PR1|{n}||{p.code}^{PROCEDURES[p.code]}^I9C||{ts(p.date)}"
            for n, p in enumerate(procs, start=1)
        ]
        yield "ADT_A01", adt
        labs = [lab for lab in record.labs if lab.encounter_id == encounter.id]
        if labs:
            when = labs[0].time
            oru = [
                _msh(hospital, when, "ORU^R01^ORU_R01", f"{next(control_ids):010d}"),
                pid,
                pv1,
                f"ORC|RE|{encounter.id}-lab",
                f"OBR|1|{encounter.id}-lab||LAB^Laboratory results^L|||{ts(when)}",
            ]
            for n, lab in enumerate(labs, start=1):
                test = LABS[lab.loinc]
                value = f"{lab.value:.{test.decimals}f}"
                flag = "L" if lab.value < test.low else "H" if lab.value > test.high else "N"
                oru.append(
                    f"OBX|{n}|NM|{lab.loinc}^{test.display}^LN||{value}|{test.unit}^{test.unit}"
                    f"^UCUM|{test.low:g}-{test.high:g}|{flag}|||F|||{ts(lab.time)}"
                )
            yield "ORU_R01", oru
        for med in (m for m in record.medications if m.encounter_id == encounter.id):
            end = ts(med.end) if med.end else ""
            yield (
                "RDE_O11",
                [
                    _msh(hospital, encounter.start, "RDE^O11^RDE_O11", f"{next(control_ids):010d}"),
                    pid,
                    pv1,
                    f"ORC|NW|{med.id}",
                    f"RXE|^^^{ts(med.start)}^{end}|{med.atc}^{DRUGS[med.atc].display}^WHOATC|1||1^unit",
                ],
            )
        for resp in (r for r in record.responses if r.encounter_id == encounter.id):
            answer = "Y^Yes^HL70136" if resp.responded else "N^No^HL70136"
            yield (
                "ORU_R01",
                [
                    _msh(hospital, resp.time, "ORU^R01^ORU_R01", f"{next(control_ids):010d}"),
                    pid,
                    pv1,
                    f"ORC|RE|{resp.id}",
                    f"OBR|1|{resp.id}||{resp.atc}^{DRUGS[resp.atc].display}^WHOATC|||{ts(resp.time)}",
                    f"OBX|1|CWE|{RESPONSE_CODE}^Response to treatment^MEDSPACE||{answer}||||||F|||"
                    f"{ts(resp.time)}",
                ],
            )
        for note in (n for n in record.notes if n.encounter_id == encounter.id):
            yield (
                "ORU_R01",
                [
                    _msh(hospital, note.time, "ORU^R01^ORU_R01", f"{next(control_ids):010d}"),
                    pid,
                    pv1,
                    f"ORC|RE|{note.id}",
                    f"OBR|1|{note.id}||11506-3^Progress note^LN|||{ts(note.time)}",
                    f"OBX|1|TX|11506-3^Progress note^LN||{escape(note.text)}||||||F|||"
                    f"{ts(note.time)}",
                ],
            )


def batch_header(hospital: str, when: dt.datetime) -> str:
    """FHS and BHS segments opening a batch file, each ending in a carriage return."""
    tail = f"|^~\\&|HIS|{hospital}|MEDSPACE|MEDSPACE|{ts(when)}\r"
    return f"FHS{tail}BHS{tail}"


def batch_trailer(message_count: int) -> str:
    """BTS and FTS segments closing a batch file of ``message_count`` messages."""
    return f"BTS|{message_count}\rFTS|1\r"


def encode(segments: Segments) -> str:
    """The message as text: every segment terminated by a carriage return."""
    return "\r".join(segments) + "\r"
