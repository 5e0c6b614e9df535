"""Labelled synthetic clinical notes, and the scorer that measures a recogniser against them.

Real notes cannot be published with their identifiers marked, and a recogniser measured on a
handful of hand-written sentences measures the author's imagination. These notes are generated,
so the generator knows the offsets and kind of every identifier it writes: precision and recall
of the free-text recogniser (:mod:`medspace.deid.text`) can be computed exactly.

The notes are built to be hard in the ways hand-typed hospital text is hard: discharge
summaries, ward-round and nursing notes and referral letters in Chinese and English;
identifiers glued to the Chinese text on both sides; numbers spaced, dashed or typed in
full-width digits; legacy 15-digit ID numbers; landlines with area codes; names with no context
word before them; and sentences full of numbers that are *not* identifiers (lab values, doses,
ICD codes, bed numbers, durations, lot numbers) and of clinical words that begin with a surname
character (高血压, 叶酸, 林格液), so that precision is measured on what a recogniser must leave
alone as well as on what it must find.

Labels follow the recogniser's conventions: a labelled number is the number without its label
("住院号：" is not part of the MRN), a name is the name without its title, a date is the date
without its time of day.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from medspace.synth.divisions import DIVISIONS
from medspace.synth.identities import (
    Identity,
    draw_given_name,
    draw_identity,
    draw_phone,
    draw_surname,
)
from medspace.synth.resident_id import IdNumberAllocator

LANGUAGES: tuple[str, ...] = ("zh", "en")
"""The languages notes are written in: Chinese and English."""


@dataclass(frozen=True, slots=True)
class LabelledNote:
    """One note and the truth about it: every identifier as (start, end, kind) offsets."""

    text: str
    labels: frozenset[tuple[int, int, str]]
    language: str


class Found(Protocol):
    """What a recogniser reports for one identifier; :class:`medspace.deid.text.Span` is one."""

    @property
    def start(self) -> int: ...

    @property
    def end(self) -> int: ...

    @property
    def kind(self) -> str: ...


Recogniser = Callable[[str], Iterable[Found]]
"""What :func:`score` measures: text in, identifiers found out (``medspace.deid.text.find``)."""


@dataclass(frozen=True)
class Scores:
    """Counts of labelled, predicted and exactly matched spans per kind.

    A predicted span is true only if its start, end and kind all equal a label's: a phone
    number found without its last digit leaves that digit in the released text, so a near miss
    is a miss and a false positive at once.
    """

    labelled: Mapping[str, int] = field(default_factory=Counter)
    predicted: Mapping[str, int] = field(default_factory=Counter)
    true: Mapping[str, int] = field(default_factory=Counter)

    @property
    def kinds(self) -> list[str]:
        """Every kind that was labelled or predicted, sorted."""
        return sorted(set(self.labelled) | set(self.predicted))

    def recall(self, kind: str) -> float:
        """The share of ``kind``'s labels found exactly; NaN when none was labelled."""
        return _ratio(self.true.get(kind, 0), self.labelled.get(kind, 0))

    def precision(self, kind: str) -> float:
        """The share of spans predicted as ``kind`` that are labels; NaN when none was."""
        return _ratio(self.true.get(kind, 0), self.predicted.get(kind, 0))

    @property
    def overall_recall(self) -> float:
        """The share of all labels found exactly."""
        return _ratio(sum(self.true.values()), sum(self.labelled.values()))

    @property
    def overall_precision(self) -> float:
        """The share of all predicted spans that are labels."""
        return _ratio(sum(self.true.values()), sum(self.predicted.values()))


def _ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else math.nan


def score(notes: Iterable[LabelledNote], recogniser: Recogniser) -> Scores:
    """How well ``recogniser`` finds the labelled identifiers of ``notes``, kind by kind."""
    labelled, predicted, true = Counter[str](), Counter[str](), Counter[str]()
    for note in notes:
        spans = {(s.start, s.end, s.kind) for s in recogniser(note.text)}
        labelled.update(kind for _, _, kind in note.labels)
        predicted.update(kind for _, _, kind in spans)
        true.update(kind for _, _, kind in spans & note.labels)
    return Scores(labelled, predicted, true)


def labelled_notes(n: int, seed: int) -> list[LabelledNote]:
    """``n`` notes, about 60 % Chinese and 40 % English; the same ``seed`` gives the same notes."""
    rng = random.Random(seed)
    allocator = IdNumberAllocator(owner=0)
    notes = []
    for _ in range(n):
        person = draw_identity(
            rng, allocator, rng.choice(DIVISIONS), rng.randint(1935, 2005), rng.random() < 0.5
        )
        if rng.random() < 0.6:
            template = rng.choice(_CHINESE_TEMPLATES)
            note = _Note("zh", rng, full_width=rng.random() < 0.3)
        else:
            template = rng.choice(_ENGLISH_TEMPLATES)
            note = _Note("en", rng, full_width=False)
        template(note, person)
        notes.append(note.done())
    return notes


class _Note:
    """A note being written: literal text, and identifiers whose offsets are recorded."""

    def __init__(self, language: str, rng: random.Random, full_width: bool) -> None:
        self.language = language
        self.rng = rng
        self.full_width = full_width
        self._parts: list[str] = []
        self._size = 0
        self._labels: set[tuple[int, int, str]] = set()

    def say(self, *texts: str) -> None:
        for text in texts:
            self._parts.append(text)
            self._size += len(text)

    def mark(self, kind: str, value: str) -> None:
        """Write an identifier; in a note typed with a full-width input method, about a third
        of the identifiers come out in full-width characters."""
        if self.full_width and kind != "NAME" and self.rng.random() < 0.35:
            value = value.translate(_TO_FULL_WIDTH)
        self._labels.add((self._size, self._size + len(value), kind))
        self.say(value)

    def filler(self, pool: tuple[str, ...], low: int, high: int) -> None:
        """Between ``low`` and ``high`` sentences that hold no identifier."""
        self.say(*self.rng.sample(pool, self.rng.randint(low, high)))

    def done(self) -> LabelledNote:
        return LabelledNote("".join(self._parts), frozenset(self._labels), self.language)


_TO_FULL_WIDTH = {c: c + 0xFEE0 for c in range(0x21, 0x7F)}

# --- Identifiers as people type them -----------------------------------------------------------


def _mobile(rng: random.Random, space: str = " ") -> str:
    """A mobile number as typed: whole, grouped 3-4-4 by spaces or dashes, with +86."""
    number = draw_phone(rng)
    style = rng.randrange(7)
    if style == 1:
        return f"{number[:3]}{space}{number[3:7]}{space}{number[7:]}"
    if style == 2:
        return f"{number[:3]}-{number[3:7]}-{number[7:]}"
    if style == 3:
        return "+86 " + number
    if style == 4:
        return f"+86-{number[:3]}-{number[3:7]}-{number[7:]}"
    return number


_AREA_CODES = ("010", "021", "022", "025", "0512", "0571", "0574", "0531", "0532", "027", "020",
               "0755", "028", "029")  # fmt: skip


def _landline(rng: random.Random) -> str:
    """A fixed line with its area code: dashed, bracketed, spaced, international, extended."""
    area = rng.choice(_AREA_CODES)
    local = f"{rng.randint(2, 8)}{rng.randrange(10**7):07d}"
    if len(area) == 4 and rng.random() < 0.3:
        local = local[:7]
    style = rng.randrange(6)
    if style == 1:
        return f"({area}){local}"
    if style == 2:
        return f"{area} {local}"
    if style == 3:
        return f"+86-{area[1:]}-{local}"
    if style == 4:
        return f"{area}-{local}-{rng.randint(100, 8999)}"
    return f"{area}-{local}"


def _id_number(rng: random.Random, person: Identity) -> str:
    """Mostly the 18-character number, sometimes grouped 6-8-4, sometimes the legacy 15 digits
    that people born before 1984 still carry on old cards and forms."""
    number = person.resident_id
    style = rng.randrange(8)
    if style == 0 and person.birth_date.year < 1984:
        return number[:6] + number[8:17]
    if style == 1:
        return f"{number[:6]} {number[6:14]} {number[14:]}"
    if style == 2:
        return f"{number[:6]}-{number[6:14]}-{number[14:]}"
    if style == 3:
        return number.lower()
    return number


def _date_zh(rng: random.Random, day: dt.date) -> str:
    y, m, d = day.year, day.month, day.day
    return rng.choice(
        [f"{y}-{m:02d}-{d:02d}", f"{y}/{m}/{d}", f"{y}年{m}月{d}日", f"{y}.{m:02d}.{d:02d}",
         f"{y}年{m:02d}月{d:02d}日", f"{y} 年 {m} 月 {d} 日"]
    )  # fmt: skip


_CHINESE_DIGITS = "〇一二三四五六七八九"


def _chinese_numeral(n: int) -> str:
    """1 to 31 as written in words: 十, 十八, 二十一."""
    tens, units = divmod(n, 10)
    return (
        ("" if tens < 2 else _CHINESE_DIGITS[tens])
        + ("十" if tens else "")
        + (_CHINESE_DIGITS[units] if units else "")
    )


def _date_words(day: dt.date) -> str:
    """A date in Chinese numerals, as formal letters and signatures write it."""
    year = "".join(_CHINESE_DIGITS[int(c)] for c in str(day.year))
    return f"{year}年{_chinese_numeral(day.month)}月{_chinese_numeral(day.day)}日"


_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")  # fmt: skip


def _ordinal(n: int) -> str:
    return "th" if 10 < n % 100 < 14 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")


def _date_en(rng: random.Random, day: dt.date) -> str:
    month = _MONTHS[day.month - 1]
    return rng.choice(
        [f"{day:%Y-%m-%d}", f"{day.day:02d}/{day.month:02d}/{day.year}",
         f"{day.day} {month[:3]} {day.year}", f"{month} {day.day}, {day.year}",
         f"{month[:3]} {day.day}, {day.year}", f"{day.day} {month} {day.year}",
         f"{day.day}{_ordinal(day.day)} {month} {day.year}"]
    )  # fmt: skip


def _visit(rng: random.Random) -> tuple[dt.date, dt.date]:
    admitted = dt.date(2015, 1, 1) + dt.timedelta(days=rng.randrange(11 * 365))
    return admitted, admitted + dt.timedelta(days=rng.randint(2, 21))


def _age(person: Identity, on: dt.date) -> int:
    born = person.birth_date
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def _mrn(rng: random.Random) -> str:
    return rng.choice(
        [f"ZY{rng.randrange(10**8):08d}", f"MZ{rng.randrange(10**8):08d}",
         f"{rng.randrange(10**8):08d}", f"{rng.randint(2015, 2025)}{rng.randrange(10**6):06d}",
         f"H{rng.randrange(10**7):07d}", f"BA-{rng.randrange(10**6):06d}"]
    )  # fmt: skip


def _insurance(rng: random.Random) -> str:
    digits = f"{rng.randrange(10**12):012d}"
    return rng.choice(
        [f"{rng.randrange(10**10):010d}", f"YB{rng.randrange(10**10):010d}",
         f"{digits[:4]} {digits[4:8]} {digits[8:]}", f"R{rng.randrange(10**8):08d}",
         f"AB-{rng.randrange(10**6):06d}"]
    )  # fmt: skip


_PINYIN_SURNAMES = ("Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Huang", "Zhao", "Wu", "Zhou",
                    "Xu", "Sun", "Ma", "Zhu", "Hu", "Guo", "He", "Gao", "Lin", "Luo", "Zheng",
                    "Liang", "Xie", "Song", "Tang", "Ouyang")  # fmt: skip
_PINYIN_GIVEN = (
    ("Wei", "Qiang", "Lei", "Jun", "Yong", "Jie", "Tao", "Ming", "Chao", "Jianguo", "Xiaoming",
     "Zhiqiang", "Hua", "Jian-Guo"),
    ("Fang", "Na", "Min", "Jing", "Li", "Xiaohong", "Haiyan", "Lijuan", "Guiying", "Shuang",
     "Yan", "Xin", "Yufei", "Xiao-Li"),
)  # fmt: skip
_WESTERN_GIVEN = (
    ("James", "Michael", "David", "Thomas", "Peter", "Robert"),
    ("Emily", "Sarah", "Anna", "Laura", "Maria", "Helen"),
)  # fmt: skip
_WESTERN_SURNAMES = ("Carter", "Wilson", "Johnson", "Brown", "Schmidt", "Miller", "Taylor",
                     "Anderson", "Martin", "Evans", "O'Brien", "Clarke")  # fmt: skip


def _latin_name(rng: random.Random, male: bool | None = None) -> tuple[str, str]:
    """A full name and the surname alone: pinyin surname first (in capitals one time in five,
    as passports write it), or a Western name; ``male`` None draws the sex too."""
    sex = int(not male) if male is not None else rng.randrange(2)
    if rng.random() < 0.75:
        surname, given = rng.choice(_PINYIN_SURNAMES), rng.choice(_PINYIN_GIVEN[sex])
        written = surname.upper() if rng.random() < 0.2 else surname
        return f"{written} {given}", surname
    surname = rng.choice(_WESTERN_SURNAMES)
    return f"{rng.choice(_WESTERN_GIVEN[sex])} {surname}", surname


def _chinese_name(rng: random.Random) -> str:
    return draw_surname(rng) + draw_given_name(rng, rng.random() < 0.5)


_EMAIL_DOMAINS = ("163.com", "126.com", "qq.com", "gmail.com", "sina.com", "zju.edu.cn",
                  "hospital.org.cn", "example-hospital.cn")  # fmt: skip


def _email(rng: random.Random) -> str:
    surname = rng.choice(_PINYIN_SURNAMES).lower()
    given = rng.choice(rng.choice(_PINYIN_GIVEN)).lower()
    given = given.replace("-", "")
    local = rng.choice(
        [f"{surname}{given}", f"{given}.{surname}", f"{surname}_{given}{rng.randint(60, 99)}",
         f"{rng.randint(10**7, 10**10)}"]
    )  # fmt: skip
    return f"{local}@{rng.choice(_EMAIL_DOMAINS)}"


def _ip(rng: random.Random) -> str:
    return rng.choice(
        [f"192.168.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
         f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
         f"172.{rng.randint(16, 31)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"]
    )  # fmt: skip


def _url(rng: random.Random) -> str:
    host = rng.choice(["his.example-hospital.cn", "pacs.zju.edu.cn", "portal.hospital.org.cn"])
    return rng.choice(
        [f"https://{host}/emr/patient?id={rng.randrange(10**7)}",
         f"http://{_ip(rng)}:8080/pacs/viewer?study={rng.randrange(10**9)}",
         f"www.{host.split('.', 1)[1]}/report/{rng.randrange(10**6)}",
         f"{host}/viewer?id={rng.randrange(10**8)}",
         f"https://{host}/r/{rng.getrandbits(40):010x}"]
    )  # fmt: skip


_EN_PLACES = (
    ("Chaoyang District", "Beijing", ""), ("Haidian District", "Beijing", ""),
    ("Xuhui District", "Shanghai", ""), ("Jing'an District", "Shanghai", ""),
    ("Pudong New Area", "Shanghai", ""), ("Xihu District", "Hangzhou", "Zhejiang"),
    ("Binjiang District", "Hangzhou", "Zhejiang"), ("Tianhe District", "Guangzhou", "Guangdong"),
    ("Nanshan District", "Shenzhen", "Guangdong"), ("Wuhou District", "Chengdu", "Sichuan"),
    ("Gulou District", "Nanjing", "Jiangsu"), ("Wuchang District", "Wuhan", "Hubei"),
    ("Yanta District", "Xi'an", "Shaanxi"), ("Shinan District", "Qingdao", "Shandong"),
)  # fmt: skip
_EN_ROADS = ("Zhongshan Road", "Renmin Road", "Jiefang Road", "Jianshe Road", "Heping Road",
             "Xinhua Road", "Xueyuan Road", "Wenhua Road", "Guangming Street", "Binhe Road",
             "Keji Road", "Shengli Street")  # fmt: skip
_COMPOUNDS = ("幸福小区", "金都花园", "阳光家园", "翠苑", "锦绣公寓", "和平新村")


def _address_zh(rng: random.Random, person: Identity) -> str:
    """From the province, the city or the district down, or only the street after a label
    ("住址：中山路12号"); sometimes through a residential compound, sometimes with building,
    unit and flat written as "3-2-501"."""
    d = person.division
    city = "" if d.city == d.province else d.city
    start = rng.choice(
        [d.province + city + d.district] * 2 + [(city or d.province) + d.district, d.district, ""]
    )
    road, rest = person.street.split("号", 1)
    building, flat = rest.split("栋", 1)
    style = rng.randrange(5)
    if style == 0:
        street = (
            f"{road}号{rng.choice(_COMPOUNDS)}{building}{rng.choice(['栋', '幢'])}"
            f"{rng.randint(1, 4)}单元{flat}"
        )
    elif style == 1:
        street = f"{road}号{building}-{rng.randint(1, 4)}-{flat.removesuffix('室')}"
    else:
        street = person.street
    return start + street


def _address_en(rng: random.Random) -> str:
    district, city, province = rng.choice(_EN_PLACES)
    number = f"No. {rng.randint(1, 399)}" if rng.random() < 0.6 else str(rng.randint(1, 399))
    flat = ""
    if rng.random() < 0.35:
        flat = f"Room {rng.randint(1, 28)}{rng.randint(1, 4):02d}, Building {rng.randint(1, 30)}, "
    tail = f", {province}" if province and rng.random() < 0.5 else ""
    if rng.random() < 0.3:
        tail += ", China"
    return f"{flat}{number} {rng.choice(_EN_ROADS)}, {district}, {city}{tail}"


# --- Sentences that hold no identifier ----------------------------------------------------------

_ZH_CLINICAL = (
    "血常规：WBC 12.5×10^9/L，N 85.3%，Hb 98g/L，PLT 230×10^9/L。",
    "血钾3.2mmol/L，肌酐132μmol/L，空腹血糖7.8mmol/L。",
    "查体：T 38.5℃，P 96次/分，R 20次/分，BP 150/90mmHg。",
    "心电图示V1-V4导联ST段抬高0.3mV。",
    "予阿司匹林100mg qd、氯吡格雷75mg qd、阿托伐他汀20mg qn口服。",
    "胰岛素8-10-8U三餐前皮下注射。",
    "0.9%氯化钠注射液250ml+头孢曲松2.0g ivgtt qd。",
    "林格液500ml静滴。",
    "叶酸片0.4mg qd。",
    "既往高血压病史10余年，最高180/110mmHg。",
    "2019年行冠脉支架植入术。",
    "余未见明显异常。",
    "陈旧性脑梗死病史。",
    "双肺呼吸音粗，可闻及少许湿啰音。",
    "肌张力正常，病理征阴性。",
    "现住3病区12床。",
    "胸痛持续约30分钟，休息后缓解。",
    "心脏超声：EF 45%，左室舒张末内径56mm。",
    "NT-proBNP 1234pg/mL，cTnI 2.35ng/mL。",
    "于14:30行急诊PCI术。",
    "术后第3天，引流量约50ml。",
    "给予吸氧2L/min。",
    "高热3天，最高体温39.2℃。",
    "黄疸加重1周。",
    "周身乏力，食欲减退。",
    "出院后1周、1个月、3个月门诊复查。",
    "GCS评分15分，NRS评分3分。",
    "体重72.5kg，身高170cm，BMI 25.1。",
    "尿蛋白(++)，尿比重1.020。",
    "所用支架批号C20230418。",
    "诊断：急性ST段抬高型心肌梗死（I21.9），2型糖尿病（E11.9）。",
    "高血压病3级（很高危），ICD编码I10。",
    "曾于外院行胃镜检查，未见异常。",
    "任何不适随时就诊。",
    "马上予硝酸甘油0.5mg舌下含服。",
    "程度较前减轻。",
    "许多症状已缓解。",
    "周一至周五上午门诊。",
    "李斯特菌感染已排除。",
    "何首乌等中药已停用。",
    "3天后复查，2周后拆线。",
    "血压控制于130/80mmHg以下。",
    "心率徐缓，最低48次/分。",
    "予吸氧、心电监护，监测血压q2h。",
    "雾化吸入布地奈德2mg bid。",
    "第2次化疗后出现Ⅳ度骨髓抑制。",
    "Killip分级Ⅱ级，GRACE评分156分。",
)
_ZH_COMPLAINTS = ("胸痛3小时", "反复咳嗽、咳痰2周", "发热伴头痛2天", "腹痛1天", "头晕3天",
                  "胸闷气促1周", "右下腹痛12小时")  # fmt: skip
_ZH_PREDICATES = ("诉头痛", "诉胸闷较前好转", "因胸痛入院", "自诉夜间睡眠差", "今晨诉腹胀",
                  "于今日出院")  # fmt: skip
_ZH_HISTORY = ("既往体健", "平素体健", "否认高血压、糖尿病病史", "有吸烟史20年", "近3天食欲差",
               "无药物过敏史")  # fmt: skip
_ZH_STATES = ("神志清，精神可", "精神差，食欲减退", "饮食睡眠可", "生命体征平稳", "一般情况可",
              "病情稳定", "目前无胸痛", "夜间睡眠欠佳")  # fmt: skip
_RELATIONS_ZH = (("其子", "儿子"), ("其女", "女儿"), ("配偶", "配偶"), ("家属", "家属"),
                 ("母亲", "母亲"), ("父亲", "父亲"))  # fmt: skip
_HOSPITALS_ZH = ("浙江大学医学院附属第一医院", "省人民医院心内科", "市中心医院",
                 "北京协和医院")  # fmt: skip

_EN_CLINICAL = (
    "Troponin I 2.35 ng/mL, CK-MB 45 U/L. ",
    "WBC 12.5 x10^9/L, Hb 98 g/L, platelets 230 x10^9/L. ",
    "BP 150/90 mmHg, HR 96 bpm, SpO2 95% on room air. ",
    "ECG: ST elevation in leads V1-V4. ",
    "Diagnosis: STEMI (ICD-10 I21.9); type 2 diabetes (E11.9). ",
    "Started aspirin 100 mg daily and atorvastatin 20 mg at night. ",
    "Insulin 8-10-8 units before meals. ",
    "Patient denies fever or chills. ",
    "No known drug allergies. ",
    "Follow up in 2 weeks, repeat echo in 3 months. ",
    "Bed 12, Ward 3. ",
    "Ejection fraction 45%. ",
    "Patient Education: low-salt diet, smoking cessation. ",
    "History of hypertension for 10 years; PCI in 2019. ",
    "Creatinine 132 umol/L, eGFR 48 mL/min/1.73m2. ",
    "Temp 38.5 C at 02:30. ",
    "Metoprolol 12.5 mg bid. ",
    "Discussed with the family; questions answered. ",
    "Dr. on call notified. ",
    "Stent lot number C20230418. ",
    "Seen in Cardiology Clinic. ",
    "Nurse Practitioner review booked. ",
    "Patient Safety: no incidents. ",
    "Given 2 units of packed red cells. ",
    "CHA2DS2-VASc score 4, HAS-BLED 2. ",
    "Plan: PCI to LAD, then dual antiplatelet therapy for 12 months. ",
)
_EN_RELATIONS = ("daughter", "son", "wife", "husband")


# --- Chinese templates --------------------------------------------------------------------------


def _zh_header_fields(note: _Note, person: Identity, admitted: dt.date) -> None:
    rng = note.rng
    note.say(rng.choice(["姓名：", "姓名 : ", "姓名 ："]))
    note.mark("NAME", person.name)
    note.say(f"  性别：{'男' if person.male else '女'}  年龄：{_age(person, admitted)}岁  ")
    note.say(rng.choice(["住院号：", "住院号", "病案号：", "病历号:", "登记号："]))
    note.mark("MRN", _mrn(rng))
    note.say(f"  床号：{rng.randint(1, 60)}床\n")
    note.say(rng.choice(["身份证号：", "身份证号码", "身份证："]))
    note.mark("ID_NUMBER", _id_number(rng, person))
    note.say(rng.choice(["  联系电话：", "  手机", "  电话："]))
    note.mark("PHONE", _mobile(rng))
    note.say("\n", rng.choice(["家庭住址：", "现住址", "户籍地址："]))
    note.mark("ADDRESS", _address_zh(rng, person))
    note.say("\n")


def _zh_discharge_summary(note: _Note, person: Identity) -> None:
    rng = note.rng
    admitted, discharged = _visit(rng)
    note.say(rng.choice(["出院小结\n", "出院记录\n"]))
    _zh_header_fields(note, person, admitted)
    note.say("入院日期：")
    note.mark("DATE", _date_zh(rng, admitted))
    note.say("  出院日期：")
    note.mark("DATE", _date_zh(rng, discharged))
    note.say("\n诊疗经过：")
    note.mark("NAME", person.name)
    note.say(f"因“{rng.choice(_ZH_COMPLAINTS)}”于")
    note.mark("DATE", _date_zh(rng, admitted))
    note.say("入院。")
    note.filler(_ZH_CLINICAL, 1, 3)
    note.say("患者")
    note.mark("NAME", person.name)
    note.say(rng.choice(_ZH_HISTORY), "。")
    note.filler(_ZH_CLINICAL, 0, 2)
    note.say("\n出院医嘱：")
    note.filler(_ZH_CLINICAL, 1, 2)
    note.say("如有不适请拨打科室电话")
    note.mark("PHONE", _landline(rng))
    note.say("。\n医师签名：")
    note.mark("NAME", _chinese_name(rng))
    note.say("  ")
    note.mark("DATE", _date_words(discharged) if rng.random() < 0.3 else _date_zh(rng, discharged))


def _zh_ward_round(note: _Note, person: Identity) -> None:
    rng = note.rng
    day = _visit(rng)[0]
    note.mark("DATE", _date_zh(rng, day))
    note.say(f" {rng.randint(7, 11):02d}:{rng.choice(['00', '30'])} 查房记录\n")
    note.mark("NAME", _chinese_name(rng))
    note.say(rng.choice(["主任医师", "副主任医师", "主治医师", "主任"]), "查房：")
    note.say(rng.choice(["患者", "病人"]))
    note.mark("NAME", person.name)
    note.say(rng.choice(_ZH_STATES), "。")
    note.filler(_ZH_CLINICAL, 1, 3)
    later = day + dt.timedelta(days=rng.randint(1, 5))
    note.say("拟于")
    note.mark("DATE", f"{later.month}月{later.day}日")
    note.say("行冠脉造影，已向")
    note.mark("NAME", _chinese_name(rng))
    note.say(rng.choice(["交代病情", "说明手术风险", "告知病情"]), "，签字同意。")
    note.filler(_ZH_CLINICAL, 1, 2)
    note.say("嘱")
    note.mark("DATE", _date_zh(rng, day + dt.timedelta(days=3)))
    note.say("复查血常规。\n", rng.choice(["记录者：", "记录人：", "住院医师："]))
    note.mark("NAME", _chinese_name(rng))


def _zh_nursing(note: _Note, person: Identity) -> None:
    rng = note.rng
    day = _visit(rng)[0]
    note.mark("DATE", _date_zh(rng, day))
    note.say(f" {rng.randint(12, 23):02d}:00 护理记录：")
    note.mark("NAME", person.name)
    note.say(rng.choice(_ZH_PREDICATES), "。")
    note.filler(_ZH_CLINICAL, 1, 3)
    short, _ = rng.choice(_RELATIONS_ZH)
    note.say(short)
    note.mark("NAME", _chinese_name(rng))
    note.say("陪护，联系电话")
    note.mark("PHONE", _mobile(rng, rng.choice([" ", "\u3000"])))
    note.say("。\n责任护士：")
    note.mark("NAME", _chinese_name(rng))


def _zh_referral(note: _Note, person: Identity) -> None:
    rng = note.rng
    admitted, discharged = _visit(rng)
    note.say("转诊单\n", rng.choice(_HOSPITALS_ZH), "：\n兹有患者")
    note.mark("NAME", person.name)
    note.say(f"，{'男' if person.male else '女'}，{_age(person, admitted)}岁，身份证号")
    note.mark("ID_NUMBER", _id_number(rng, person))
    note.say(rng.choice(["，医保卡号", "，社保卡号：", "，医保号"]))
    note.mark("INSURANCE", _insurance(rng))
    note.say(f"，因{rng.choice(_ZH_COMPLAINTS)}于")
    note.mark("DATE", _date_zh(rng, admitted))
    note.say("在我院住院治疗。")
    note.filler(_ZH_CLINICAL, 1, 3)
    note.say("现转至贵院进一步诊治。\n联系人：")
    note.mark("NAME", _chinese_name(rng))
    _, relation = rng.choice(_RELATIONS_ZH)
    note.say(f"（{relation}），电话")
    note.mark("PHONE", _mobile(rng))
    note.say("；家住")
    note.mark("ADDRESS", _address_zh(rng, person))
    note.say("。\n我科电话")
    note.mark("PHONE", _landline(rng))
    note.say("，邮箱")
    note.mark("EMAIL", _email(rng))
    note.say("。影像资料见")
    note.mark("URL", _url(rng))
    note.say("。\n转诊医生：")
    note.mark("NAME", _chinese_name(rng))
    note.say("  ")
    note.mark("DATE", _date_zh(rng, discharged))


def _zh_outpatient(note: _Note, person: Identity) -> None:
    rng = note.rng
    day = _visit(rng)[0]
    note.say(rng.choice(["门诊号", "门诊号：", "ID号："]))
    note.mark("MRN", _mrn(rng))
    note.say("。")
    note.mark("NAME", person.name)
    sex, age = "男" if person.male else "女", _age(person, day)
    note.say(rng.choice([f"，{sex}，{age}岁，因", f"（{sex}，{age}岁）因"]))
    note.say(rng.choice(_ZH_COMPLAINTS), "就诊。")
    note.filler(_ZH_CLINICAL, 1, 3)
    note.say("身份证")
    note.mark("ID_NUMBER", _id_number(rng, person))
    note.say(rng.choice(["已核实，手机", "，手机"]))
    note.mark("PHONE", _mobile(rng))
    note.say(rng.choice(["联系。", "，可随时联系。"]))
    if rng.random() < 0.5:
        note.say("医保编号")
        note.mark("INSURANCE", _insurance(rng))
        note.say("。")


def _zh_export_log(note: _Note, person: Identity) -> None:
    rng = note.rng
    note.say("病历于")
    note.mark("DATE", _date_zh(rng, _visit(rng)[0]))
    note.say("由工作站IP")
    note.mark("IP", _ip(rng))
    note.say("导出，查看地址")
    note.mark("URL", _url(rng))
    note.say("。操作员：")
    note.mark("NAME", _chinese_name(rng))
    note.say("。患者")
    note.mark("NAME", person.name)
    note.say("，病案号")
    note.mark("MRN", _mrn(rng))
    note.say("，邮箱")
    note.mark("EMAIL", _email(rng))
    note.say("。")
    note.filler(_ZH_CLINICAL, 1, 2)


# --- English templates --------------------------------------------------------------------------


def _title(rng: random.Random, male: bool) -> str:
    return rng.choice(["Mr. ", "Mr "] if male else ["Ms. ", "Mrs. ", "Ms "])


def _en_discharge_summary(note: _Note, person: Identity) -> None:
    rng = note.rng
    admitted, discharged = _visit(rng)
    name, _ = _latin_name(rng, person.male)
    note.say("DISCHARGE SUMMARY\n", rng.choice(["Patient: ", "Name: ", "Patient name: "]))
    note.mark("NAME", name)
    note.say("  ", rng.choice(["MRN: ", "MRN# ", "Hospital No. ", "Inpatient No.: "]))
    note.mark("MRN", _mrn(rng))
    note.say("  DOB: ")
    note.mark("DATE", _date_en(rng, person.birth_date))
    note.say("\nResident ID: ")
    note.mark("ID_NUMBER", _id_number(rng, person))
    note.say("  ", rng.choice(["Insurance No.: ", "Insurance ID: ", "insurance number "]))
    note.mark("INSURANCE", _insurance(rng))
    note.say("\nAddress: ")
    note.mark("ADDRESS", _address_en(rng))
    note.say("\nPhone: ")
    note.mark("PHONE", _mobile(rng))
    note.say("  Email: ")
    note.mark("EMAIL", _email(rng))
    note.say("\nAdmitted ")
    note.mark("DATE", _date_en(rng, admitted))
    note.say(", discharged ")
    note.mark("DATE", _date_en(rng, discharged))
    note.say(".\nHospital course: ")
    note.mark("NAME", name)
    note.say(
        f" is a {_age(person, admitted)}-year-old {'man' if person.male else 'woman'} "
        "admitted with chest pain. "
    )
    note.filler(_EN_CLINICAL, 2, 4)
    note.say("\nAttending: Dr. ")
    note.mark("NAME", _latin_name(rng)[0])


def _en_referral(note: _Note, person: Identity) -> None:
    rng = note.rng
    admitted, _ = _visit(rng)
    name, _ = _latin_name(rng, person.male)
    note.mark("DATE", _date_en(rng, admitted))
    note.say("\n\nDear Dr. ")
    note.mark("NAME", _latin_name(rng)[1])
    note.say(",\n\nThank you for seeing ", _title(rng, person.male))
    note.mark("NAME", name)
    note.say(
        f", a {_age(person, admitted)}-year-old {'man' if person.male else 'woman'} "
        "with exertional chest pain. "
    )
    note.filler(_EN_CLINICAL, 1, 3)
    note.say(f"{'He' if person.male else 'She'} can be reached on ")
    note.mark("PHONE", _mobile(rng))
    note.say(" or at ")
    note.mark("EMAIL", _email(rng))
    note.say(". Imaging is available at ")
    note.mark("URL", _url(rng))
    note.say(".\n\nYours sincerely,\n\n")
    note.mark("NAME", _latin_name(rng)[0])
    note.say(rng.choice([", MD\n", ", MD, PhD\n"]), "Department of Cardiology, tel. ")
    note.mark("PHONE", _landline(rng))


def _en_ward_round(note: _Note, person: Identity) -> None:
    rng = note.rng
    day = _visit(rng)[0]
    note.say("Ward round ")
    note.mark("DATE", _date_en(rng, day))
    note.say(" 08:30, Dr. ")
    note.mark("NAME", _latin_name(rng)[0])
    note.say(".\n", rng.choice(["Patient ", "Pt "]))
    note.mark("NAME", _latin_name(rng)[0])
    note.say(" reports less chest tightness. ")
    note.filler(_EN_CLINICAL, 1, 3)
    note.say("Discussed with Dr. ")
    note.mark("NAME", _latin_name(rng)[1])
    note.say("'s team. ")
    note.filler(_EN_CLINICAL, 1, 2)
    note.say("Lives at ")
    note.mark("ADDRESS", _address_en(rng))
    note.say(". Repeat bloods on ")
    note.mark("DATE", _date_en(rng, day + dt.timedelta(days=2)))
    note.say(".")


def _en_nursing(note: _Note, person: Identity) -> None:
    rng = note.rng
    note.mark("DATE", _date_en(rng, _visit(rng)[0]))
    note.say(" 14:00 Nursing note. ", _title(rng, person.male))
    note.mark("NAME", _latin_name(rng, person.male)[0])
    note.say(" ambulating independently. ")
    note.filler(_EN_CLINICAL, 1, 3)
    if rng.random() < 0.5:
        note.say(rng.choice(["Daughter ", "Son ", "His wife ", "Her husband "]))
        note.mark("NAME", _latin_name(rng)[0])
        note.say(" visited in the afternoon. ")
    note.say("Next of kin: ")
    note.mark("NAME", _latin_name(rng)[0])
    note.say(f" ({rng.choice(_EN_RELATIONS)}), ")
    note.mark("PHONE", _mobile(rng))
    note.say(". Workstation ")
    note.mark("IP", _ip(rng))
    note.say(rng.choice([":3389", "", " (VPN)"]), ". Nurse ")
    note.mark("NAME", _latin_name(rng)[0])
    note.say(", RN")


_Template = Callable[[_Note, Identity], None]
_CHINESE_TEMPLATES: tuple[_Template, ...] = (
    _zh_discharge_summary, _zh_ward_round, _zh_nursing, _zh_referral, _zh_outpatient,
    _zh_export_log,
)  # fmt: skip
_ENGLISH_TEMPLATES: tuple[_Template, ...] = (
    _en_discharge_summary, _en_referral, _en_ward_round, _en_nursing,
)  # fmt: skip
