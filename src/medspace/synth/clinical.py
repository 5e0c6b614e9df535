"""The clinical model: what happens to a patient, and what a hospital records of it.

Two steps, because a person treated at several hospitals has one course of illness but a
separate record at each: ``draw_course`` fixes the person-level facts (diagnoses and their dates,
treatments, responses, allergies, death), ``build_record`` turns a course into one hospital's
encounters, diagnoses, drugs, labs (through that hospital's analyser calibration), procedures
and notes. Effects are built in on purpose so that the study scenarios have something to find:
prevalence rises with age, responders to a drug live longer, labs follow the diagnoses.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from dataclasses import dataclass

from medspace.synth.codes import ALLERGENS, DISEASES, DRUG_A, DRUGS, LABS, Substance
from medspace.synth.identities import Identity, draw_given_name, draw_surname
from medspace.synth.profiles import HospitalProfile
from medspace.synth.records import (
    Allergy,
    Diagnosis,
    Encounter,
    EncounterKind,
    LabResult,
    Medication,
    Note,
    PatientRecord,
    Procedure,
    Response,
)

REFERENCE_DATE = dt.date(2025, 12, 31)
"""The export date: fixed, not today, so that the same seed gives the same files every day."""
WINDOW_START = dt.date(2016, 1, 1)
"""The earliest encounter a hospital exports."""

_DAYS_PER_YEAR = 365.25
_KIND_RANK = {"outpatient": 0, "emergency": 1, "inpatient": 2}
_COMPLAINTS = {
    "C34": "咳嗽、咳痰伴痰中带血2月",
    "C50": "发现右乳肿物1月",
    "C16": "上腹部隐痛伴消瘦3月",
    "C22": "右上腹胀痛伴乏力1月",
    "C18": "大便习惯改变伴便血2月",
    "C11": "回吸性涕血伴右颈部肿块1月",
    "G12.2": "进行性四肢无力1年",
    "D56": "乏力、面色苍白半年",
    "I10": "头晕、头痛1周",
    "E11": "口干、多饮、多尿3月",
    "J44": "反复咳嗽咳痰伴气促10年，加重3天",
    "I25": "活动后胸闷、胸痛半年",
    "N18": "双下肢水肿伴夜尿增多2月",
    "J45": "反复发作性喘息5年，加重1天",
    "J18": "发热、咳嗽3天",
    "S72": "跌倒致右髋部疼痛、活动受限2小时",
}


@dataclass(frozen=True, slots=True)
class Course:
    """A person's illness, the same whichever hospital records it."""

    first_visit: dt.date
    onsets: dict[str, dt.date]
    """ICD-10 code -> date of diagnosis."""
    treatments: tuple[tuple[str, str], ...]
    """(ICD-10 code, ATC code) pairs: the drugs given for each diagnosis, from its onset."""
    responses: dict[str, bool]
    """ATC code -> responded, for the drugs whose response is assessed."""
    allergies: tuple[Substance, ...]
    death: dt.datetime | None


def age_on(birth: dt.date, day: dt.date) -> int:
    """Age in completed years on ``day``."""
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def draw_course(rng: random.Random, profile: HospitalProfile, identity: Identity) -> Course:
    """A person's course of illness under the case mix of ``profile``."""
    age = age_on(identity.birth_date, REFERENCE_DATE)
    conditions = [
        code
        for code, prevalence in profile.prevalence.items()
        if rng.random() < _risk(code, prevalence, age, identity.male)
    ]
    earliest = max(WINDOW_START, identity.birth_date)
    latest = max(earliest, REFERENCE_DATE - dt.timedelta(days=7))
    first = earliest + dt.timedelta(days=rng.randint(0, (latest - earliest).days))
    span = (REFERENCE_DATE - first).days
    onsets = {
        code: first
        if DISEASES[code].kind == "chronic" and rng.random() < 0.6
        else first + dt.timedelta(days=rng.randint(0, int(span * 0.4)))
        for code in conditions
    }
    treatments = tuple(
        (code, atc)
        for code in conditions
        for atc in DISEASES[code].drugs
        if rng.random() < _prescription_rate(atc, age)
    )
    responses = {
        atc: rng.random() < _response_probability(atc, age, identity.male, profile)
        for _, atc in treatments
        if DRUGS[atc].response_logit is not None
    }
    allergies: tuple[Substance, ...] = ()
    if rng.random() < 0.12:
        allergies = tuple(rng.sample(ALLERGENS, k=1 if rng.random() < 0.9 else 2))
    death = _draw_death(rng, age, first, onsets, treatments, responses)
    return Course(first, onsets, treatments, responses, allergies, death)


def _risk(code: str, prevalence: float, age: int, male: bool) -> float:
    disease = DISEASES[code]
    risk = prevalence * math.exp(disease.age_slope * (age - 60) / 10)
    risk *= disease.male_factor if male else disease.female_factor
    if age < 18 and disease.kind in ("chronic", "cancer") and code != "J45":
        risk *= 0.05
    return min(risk, 0.9)


def _prescription_rate(atc: str, age: int) -> float:
    if atc == DRUG_A:
        return 0.6 if age >= 18 else 0.0
    return 0.7 if DRUGS[atc].response_logit is not None else 0.85


def _response_probability(atc: str, age: int, male: bool, profile: HospitalProfile) -> float:
    logit = DRUGS[atc].response_logit or 0.0
    logit += -0.035 * (age - 37.5) + (0.0 if male else 0.3) + profile.drug_a_effect
    return 1 / (1 + math.exp(-logit))


def _draw_death(
    rng: random.Random,
    age: int,
    first: dt.date,
    onsets: dict[str, dt.date],
    treatments: tuple[tuple[str, str], ...],
    responses: dict[str, bool],
) -> dt.datetime | None:
    """Death from a fatal diagnosis (slower for responders) or from age and comorbidity."""
    chronic = sum(DISEASES[c].kind == "chronic" for c in onsets)
    yearly = 0.01 * math.exp(0.09 * (age - 60)) * 1.3**chronic
    candidates = [first + dt.timedelta(days=min(rng.expovariate(yearly), 150) * _DAYS_PER_YEAR)]
    for code, onset in onsets.items():
        median = DISEASES[code].median_survival_years
        if median is None:
            continue
        if any(responses.get(atc) for c, atc in treatments if c == code):
            median *= 2.5
        years = min(rng.expovariate(math.log(2) / median), 150)
        candidates.append(onset + dt.timedelta(days=max(1.0, years * _DAYS_PER_YEAR)))
    day = min(candidates)
    if day > REFERENCE_DATE:
        return None
    day = max(day, first + dt.timedelta(days=1))
    return dt.datetime.combine(day, dt.time(rng.randrange(24), rng.randrange(60)))


def build_record(
    rng: random.Random,
    profile: HospitalProfile,
    patient_id: str,
    mrn: str,
    identity: Identity,
    course: Course,
    shared_person: int | None = None,
) -> PatientRecord:
    """What ``profile``'s hospital recorded of ``course``: encounters and everything in them."""
    record = PatientRecord(profile.id, patient_id, mrn, identity, course.death, shared_person)
    last = course.death.date() - dt.timedelta(days=1) if course.death else REFERENCE_DATE
    first = min(course.first_visit, last)
    by_day = _encounter_days(rng, profile, course, first, last)
    for n, (day, kind) in enumerate(sorted(by_day.items()), start=1):
        record.encounters.append(_encounter(rng, f"{patient_id}-enc-{n}", kind, day, course))
    enc_on = {e.start.date(): e for e in record.encounters}
    _add_diagnoses(rng, record, course, first, last, enc_on)
    _add_labs(rng, profile, record, set(course.onsets), identity.male)
    _add_allergies(record, course, first)
    _add_note(rng, record)
    return record


def _encounter_days(
    rng: random.Random,
    profile: HospitalProfile,
    course: Course,
    first: dt.date,
    last: dt.date,
) -> dict[dt.date, EncounterKind]:
    """The days with an encounter and the strongest kind of encounter on each day."""
    kinds: list[EncounterKind] = ["inpatient", "outpatient", "emergency"]
    weights = [profile.encounter_mix[k] for k in kinds]
    days: dict[dt.date, EncounterKind] = {}

    def add(day: dt.date, kind: EncounterKind) -> None:
        day = min(max(day, first), last)
        if day not in days or _KIND_RANK[kind] > _KIND_RANK[days[day]]:
            days[day] = kind

    add(first, rng.choices(kinds, weights)[0])
    for code, onset in course.onsets.items():
        add(onset, _onset_kind(rng, code, profile, kinds, weights))
    for code, atc in course.treatments:
        if atc in course.responses:
            follow_up = course.onsets[code] + dt.timedelta(days=rng.randint(60, 90))
            if follow_up <= last:
                add(follow_up, "outpatient")
    extra = min(10, int(rng.expovariate(1 / (1 + 1.5 * len(course.onsets)))))
    span = (last - first).days
    for _ in range(extra):
        add(first + dt.timedelta(days=rng.randint(0, span)), rng.choices(kinds, weights)[0])
    return days


def _onset_kind(
    rng: random.Random,
    code: str,
    profile: HospitalProfile,
    kinds: list[EncounterKind],
    weights: list[float],
) -> EncounterKind:
    if code == "S72" or (code == "J18" and profile.level == "primary"):
        return "emergency"
    if DISEASES[code].kind == "cancer" or code == "J18":
        return "outpatient" if profile.level == "primary" else "inpatient"
    return rng.choices(kinds, weights)[0]


def _encounter(
    rng: random.Random, encounter_id: str, kind: EncounterKind, day: dt.date, course: Course
) -> Encounter:
    if kind == "inpatient":
        start = dt.datetime.combine(day, dt.time(rng.randint(8, 20), rng.randrange(60)))
        end = start + dt.timedelta(days=rng.randint(3, 14), hours=rng.randint(-4, 4))
    elif kind == "emergency":
        start = dt.datetime.combine(day, dt.time(rng.randrange(24), rng.randrange(60)))
        end = start + dt.timedelta(hours=rng.randint(2, 8))
    else:
        start = dt.datetime.combine(day, dt.time(rng.randint(8, 16), rng.randrange(60)))
        end = start + dt.timedelta(minutes=rng.randint(15, 90))
    ceiling = course.death or dt.datetime.combine(REFERENCE_DATE, dt.time(23, 59))
    return Encounter(encounter_id, kind, start, min(end, ceiling))


def _add_diagnoses(
    rng: random.Random,
    record: PatientRecord,
    course: Course,
    first: dt.date,
    last: dt.date,
    enc_on: dict[dt.date, Encounter],
) -> None:
    """Diagnoses, their drugs, responses and procedures, each tied to the encounter it was in."""
    pid = record.patient_id
    for code, onset in course.onsets.items():
        day = min(max(onset, first), last)
        encounter = enc_on[day]
        record.diagnoses.append(Diagnosis(f"{pid}-dx-{code}", code, encounter.id, day))
        treated = False
        for c, atc in course.treatments:
            if c != code:
                continue
            treated = True
            med_id = f"{pid}-med-{code}-{atc}"
            end = None
            if DRUGS[atc].response_logit is not None:
                end = min(day + dt.timedelta(days=rng.randint(90, 365)), last)
            elif course.death:
                end = last
            record.medications.append(Medication(med_id, atc, encounter.id, day, end))
            if atc in course.responses:
                _add_response(record, med_id, atc, course.responses[atc], day, enc_on)
        for proc in DISEASES[code].procedures:
            chemo = proc == "99.25"
            if (treated if chemo else encounter.kind != "outpatient") and rng.random() < 0.6:
                record.procedures.append(
                    Procedure(f"{pid}-proc-{len(record.procedures) + 1}", proc, encounter.id, day)
                )


def _add_response(
    record: PatientRecord,
    med_id: str,
    atc: str,
    responded: bool,
    start: dt.date,
    enc_on: dict[dt.date, Encounter],
) -> None:
    """The response assessment at the first follow-up 60-90 days after starting the drug."""
    for day in sorted(enc_on):
        if start + dt.timedelta(days=60) <= day <= start + dt.timedelta(days=90):
            encounter = enc_on[day]
            record.responses.append(
                Response(f"{med_id}-resp", med_id, atc, responded, encounter.id, encounter.start)
            )
            return


def _add_labs(
    rng: random.Random,
    profile: HospitalProfile,
    record: PatientRecord,
    conditions: set[str],
    male: bool,
) -> None:
    for encounter in record.encounters:
        when = encounter.start + dt.timedelta(hours=1)
        for code in _panel(rng, encounter.kind, conditions):
            true = _true_value(rng, code, conditions, male)
            scale, offset = profile.lab_calibration.get(code, (1.0, 0.0))
            test = LABS[code]
            value = round(max(true * scale + offset, 10**-test.decimals), test.decimals)
            lab_id = f"{encounter.id}-lab-{code}"
            record.labs.append(LabResult(lab_id, code, value, encounter.id, when))


def _panel(rng: random.Random, kind: EncounterKind, conditions: set[str]) -> list[str]:
    """The tests ordered at an encounter: full panels in hospital, targeted ones in clinic."""
    if kind == "inpatient":
        return list(LABS)
    if kind == "emergency":
        return ["2345-7", "2160-0", "718-7", "6690-2"]
    tests = []
    if "E11" in conditions:
        tests += ["2345-7", "4548-4"]
    elif rng.random() < 0.2:
        tests.append("2345-7")
    if "N18" in conditions or ("I10" in conditions and rng.random() < 0.5):
        tests.append("2160-0")
    cancer = any(DISEASES[c].kind == "cancer" for c in conditions)
    if cancer or "D56" in conditions or rng.random() < 0.3:
        tests.append("718-7")
    if "I25" in conditions or ("I10" in conditions and rng.random() < 0.3):
        tests.append("2093-3")
    return tests


def _true_value(rng: random.Random, code: str, conditions: set[str], male: bool) -> float:
    """A physiological value that follows the patient's diagnoses."""
    if code == "2345-7":
        mu, sd = (150.0, 35.0) if "E11" in conditions else (92.0, 9.0)
    elif code == "4548-4":
        mu, sd = (7.6, 1.1) if "E11" in conditions else (5.3, 0.3)
    elif code == "2160-0":
        mu, sd = (2.4, 0.8) if "N18" in conditions else ((0.95, 0.15) if male else (0.75, 0.12))
    elif code == "718-7":
        mu, sd = (14.8, 1.1) if male else (13.0, 1.0)
        mu -= 2.5 * ("D56" in conditions)
        mu -= 1.2 * any(DISEASES[c].kind == "cancer" for c in conditions)
    elif code == "2093-3":
        mu, sd = (210.0 if "I25" in conditions else 190.0), 35.0
    else:
        mu, sd = (13.0, 3.0) if "J18" in conditions else (6.5, 1.5)
    return max(rng.gauss(mu, sd), mu * 0.2)


def _add_allergies(record: PatientRecord, course: Course, first: dt.date) -> None:
    for n, substance in enumerate(course.allergies, start=1):
        record.allergies.append(Allergy(f"{record.patient_id}-alg-{n}", substance, first))


def _add_note(rng: random.Random, record: PatientRecord) -> None:
    """Now and then an admission note that names the patient, for de-identification work."""
    acute = [e for e in record.encounters if e.kind != "outpatient"]
    if rng.random() >= (0.08 if acute else 0.02):
        return
    encounter = (acute or record.encounters)[0]
    who = record.identity
    age = age_on(who.birth_date, encounter.start.date())
    diagnoses = [DISEASES[d.code] for d in record.diagnoses]
    complaint = _COMPLAINTS[diagnoses[0].code] if diagnoses else "体检发现异常，要求复查"
    doctor_male = rng.random() < 0.5
    doctor = draw_surname(rng) + draw_given_name(rng, doctor_male)
    title = {"inpatient": "入院记录", "emergency": "急诊病历", "outpatient": "门诊病历"}
    text = (
        f"{title[encounter.kind]}\n"
        f"患者{who.name}，{'男' if who.male else '女'}，{age}岁，身份证号{who.resident_id}，"
        f"联系电话{who.phone}，住址{who.address_text}。\n"
        f"主诉：{complaint}。\n"
        f"初步诊断：{'；'.join(d.display_zh for d in diagnoses) or '待查'}。\n"
        f"医师：{doctor}"
    )
    note_id = f"{record.patient_id}-note-1"
    record.notes.append(Note(note_id, encounter.id, encounter.start + dt.timedelta(hours=2), text))
