"""Chinese resident identity numbers (GB 11643-1999).

Eighteen characters: a six-digit GB/T 2260 district code, the birth date as YYYYMMDD, a
three-digit sequence number whose last digit is odd for men and even for women, and a check
character computed with ISO 7064 MOD 11-2. Linkage across hospitals keys on this number, so the
synthetic numbers must pass the same checks a real system applies, and must never collide.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"

SEQUENCES_PER_SEX = 500
"""Sequence numbers available per district, birth date and sex (000-999, split by parity)."""
MAX_OWNERS = 64
"""Independent issuers (the shared pool plus up to 63 hospitals) that never collide."""
_SLOTS = 365 * SEQUENCES_PER_SEX


def check_character(first17: str) -> str:
    """The ISO 7064 MOD 11-2 check character of the first seventeen digits."""
    if len(first17) != 17 or not first17.isdigit():
        raise ValueError(f"need 17 digits, got {first17!r}")
    total = sum(int(c) * w for c, w in zip(first17, _WEIGHTS, strict=True))
    return _CHECK[total % 11]


@dataclass(frozen=True, slots=True)
class ResidentId:
    """What a valid resident ID number says about its holder."""

    number: str
    area_code: str
    birth_date: dt.date
    male: bool


def parse_resident_id(number: str) -> ResidentId:
    """Check a resident ID number and read it; raises ``ValueError`` saying what is wrong."""
    if len(number) != 18 or not number[:17].isdigit():
        raise ValueError("a resident ID number has 17 digits and a check character")
    if number[17] != check_character(number[:17]):
        raise ValueError("check character does not match (ISO 7064 MOD 11-2)")
    try:
        birth = dt.date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError as exc:
        raise ValueError(f"birth date is not a date: {number[6:14]}") from exc
    return ResidentId(number, number[:6], birth, int(number[16]) % 2 == 1)


def make_resident_id(area_code: str, birth_date: dt.date, sequence: int) -> str:
    """The full number for a district, a birth date and a three-digit sequence number."""
    first17 = f"{area_code}{birth_date:%Y%m%d}{sequence:03d}"
    return first17 + check_character(first17)


@dataclass(slots=True)
class IdNumberAllocator:
    """Issues unique (birth date, ID number) pairs without remembering the numbers issued.

    Each (district, birth year, sex) group keeps a counter; the n-th person of a group owned by
    issuer ``owner`` takes slot ``n * MAX_OWNERS + owner`` of the group's 365 x 500 (day of
    year, sequence) slots, scrambled by an affine permutation so that birthdays look random.
    Distinct issuers and distinct counters give distinct slots, hence distinct numbers, and the
    memory used grows with the number of groups, not with the number of patients.
    """

    owner: int
    _counters: dict[tuple[str, int, bool], int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0 <= self.owner < MAX_OWNERS:
            raise ValueError(f"owner must be in [0, {MAX_OWNERS}), got {self.owner}")

    def issue(self, area_code: str, birth_year: int, male: bool) -> tuple[dt.date, str]:
        """The next unused birth date and ID number of the group."""
        key = (area_code, birth_year, male)
        n = self._counters.get(key, 0)
        self._counters[key] = n + 1
        k = n * MAX_OWNERS + self.owner
        if k >= _SLOTS:
            raise ValueError(f"ID numbers exhausted for district {area_code}, year {birth_year}")
        a, b = _permutation(key)
        slot = (a * k + b) % _SLOTS
        day, seq = divmod(slot, SEQUENCES_PER_SEX)
        birth = dt.date(birth_year, 1, 1) + dt.timedelta(days=day)
        return birth, make_resident_id(area_code, birth, 2 * seq + (1 if male else 0))


def _permutation(key: tuple[str, int, bool]) -> tuple[int, int]:
    """A multiplier coprime with the slot count (2^2 x 5^4 x 73) and an offset for a group."""
    h = int.from_bytes(hashlib.sha256(repr(key).encode()).digest()[:8], "big")
    a = h % _SLOTS
    while a % 2 == 0 or a % 5 == 0 or a % 73 == 0:
        a += 1
    return a, (h >> 32) % _SLOTS
