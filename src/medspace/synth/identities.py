"""Realistic Chinese identities: names, resident ID numbers, mobile numbers and addresses.

De-identification, linkage and the identity vault are only tested for real if the identities look
like the ones hospitals hold: weighted common surnames (a few compound ones), one- or
two-character given names, mobile numbers on real mainland prefixes, and ID numbers whose
district, birth date and sex agree with the rest of the record.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from itertools import accumulate

from medspace.synth.divisions import Division
from medspace.synth.resident_id import IdNumberAllocator

_SURNAMES: tuple[tuple[str, float], ...] = (
    ("王", 7.1), ("李", 7.0), ("张", 6.7), ("刘", 5.4), ("陈", 4.5), ("杨", 3.1), ("黄", 2.2),
    ("赵", 2.0), ("吴", 2.0), ("周", 1.9), ("徐", 1.3), ("孙", 1.2), ("马", 1.1), ("朱", 1.1),
    ("胡", 1.0), ("郭", 1.0), ("何", 0.9), ("高", 0.9), ("林", 0.9), ("罗", 0.9), ("郑", 0.8),
    ("梁", 0.8), ("谢", 0.6), ("宋", 0.6), ("唐", 0.6), ("许", 0.5), ("韩", 0.5), ("冯", 0.5),
    ("邓", 0.5), ("曹", 0.5), ("彭", 0.5), ("曾", 0.5), ("肖", 0.5), ("田", 0.4), ("董", 0.4),
    ("袁", 0.4), ("潘", 0.4), ("于", 0.4), ("蒋", 0.4), ("蔡", 0.4), ("余", 0.4), ("杜", 0.4),
    ("叶", 0.4), ("程", 0.4), ("苏", 0.3), ("魏", 0.3), ("吕", 0.3), ("丁", 0.3), ("任", 0.3),
    ("沈", 0.3), ("欧阳", 0.05), ("司马", 0.02), ("诸葛", 0.01),
)  # fmt: skip
#: The surnames the generator draws from (also what the note scrubber knows as surnames).
SURNAMES = tuple(s for s, _ in _SURNAMES)
_SURNAME_CUM = tuple(accumulate(w for _, w in _SURNAMES))

_MALE_CHARS = "伟强磊军勇杰涛明超刚平辉鹏华飞鑫波斌宇浩凯健俊帆帅旭宁龙林建国志文峰"
_FEMALE_CHARS = "芳娜敏静丽艳娟霞秀玲燕红婷雪琳晶慧颖倩洁佳欣怡梅萍兰莉月悦彤"
_NEUTRAL_CHARS = "子一晓春海云嘉思雨安"

MOBILE_PREFIXES: tuple[str, ...] = (
    "134", "135", "136", "137", "138", "139", "147", "150", "151", "152", "157", "158", "159",
    "172", "178", "182", "183", "184", "187", "188", "195", "197", "198",
    "130", "131", "132", "145", "155", "156", "166", "175", "176", "185", "186", "196",
    "133", "149", "153", "173", "177", "180", "181", "189", "190", "191", "193", "199",
)  # fmt: skip
"""Mainland mobile prefixes of China Mobile, China Unicom and China Telecom."""

_ROADS = (
    "中山路", "人民路", "解放路", "建设路", "和平路", "新华路", "学院路", "长江路",
    "文化路", "胜利路", "光明街", "友谊路", "幸福路", "青年路", "滨河路", "科技路",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Identity:
    """The direct identifiers of one person, the same in every hospital that treats them."""

    surname: str
    given: str
    male: bool
    birth_date: dt.date
    resident_id: str
    phone: str
    division: Division
    street: str

    @property
    def name(self) -> str:
        """The full name as written in Chinese: surname first, no space."""
        return self.surname + self.given

    @property
    def address_text(self) -> str:
        """The one-line postal address; a municipality's name is not repeated as its city."""
        d = self.division
        city = "" if d.city == d.province else d.city
        return f"{d.province}{city}{d.district}{self.street}"


def draw_surname(rng: random.Random) -> str:
    """A surname, weighted by how common it is."""
    return rng.choices(SURNAMES, cum_weights=_SURNAME_CUM)[0]


def draw_given_name(rng: random.Random, male: bool) -> str:
    """A given name of one or two characters, drawn from sex-leaning character pools."""
    pool = (_MALE_CHARS if male else _FEMALE_CHARS) + _NEUTRAL_CHARS
    length = 1 if rng.random() < 0.35 else 2
    return "".join(rng.choice(pool) for _ in range(length))


def draw_phone(rng: random.Random) -> str:
    """An eleven-digit mainland mobile number."""
    return rng.choice(MOBILE_PREFIXES) + f"{rng.randrange(100_000_000):08d}"


def draw_street(rng: random.Random) -> str:
    """A street address below district level: road, number, building and flat."""
    return (
        f"{rng.choice(_ROADS)}{rng.randint(1, 399)}号"
        f"{rng.randint(1, 30)}栋{rng.randint(1, 28)}{rng.randint(1, 4):02d}室"
    )


def draw_identity(
    rng: random.Random,
    allocator: IdNumberAllocator,
    division: Division,
    birth_year: int,
    male: bool,
) -> Identity:
    """A new person living in ``division``; the allocator guarantees a unique ID number."""
    birth, number = allocator.issue(division.code, birth_year, male)
    return Identity(
        surname=draw_surname(rng),
        given=draw_given_name(rng, male),
        male=male,
        birth_date=birth,
        resident_id=number,
        phone=draw_phone(rng),
        division=division,
        street=draw_street(rng),
    )
