"""Operators that de-identify one value: mask, pseudonymise, encrypt, generalise, shift, suppress.

Each is a pure function of one value (and its parameters) so a dataset's profile can name one
per column and apply it row by row; ``None`` passes through as ``None`` because a missing value
reveals nothing more once de-identified. Keyed operators use secret keys that never leave the
node: an unkeyed hash of an identifier with little entropy (a phone number, an MRN) can be
reversed by hashing every candidate.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from datetime import date, timedelta
from typing import Literal

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from medspace.store.codes import normalise_icd10
from medspace.store.tokens import check_key, keyed_id
from medspace.synth.divisions import BY_CODE, CITIES, DIVISIONS, PROVINCES

#: A pseudonym: ``dp:`` and 128 bits of HMAC-SHA256 in hex.
PSEUDONYM_PATTERN = r"^dp:[0-9a-f]{32}$"
#: An encrypted value: ``enc:`` and URL-safe base64 of the nonce, ciphertext and tag.
ENCRYPTED_PATTERN = r"^enc:[A-Za-z0-9_\-]+=*$"
#: HIPAA Safe Harbor: three-digit ZIP prefixes whose areas hold 20,000 people or fewer.
LOW_POPULATION_ZIP3 = frozenset(
    {
        "036", "059", "063", "102", "203", "556", "692", "790", "821",
        "823", "830", "831", "878", "879", "884", "890", "893",
    }
)  # fmt: skip

_AES_KEY_BYTES = 32
_NONCE_BYTES = 12
_TAG_BYTES = 16
_ENCRYPTED_PREFIX = "enc:"
_ZIP = re.compile(r"[0-9]{5}(-[0-9]{4})?")


class DeidError(ValueError):
    """A value or parameter an operator cannot work with (the message never repeats a key)."""


def mask(value: str | None, keep_start: int = 3, keep_end: int = 4, char: str = "*") -> str | None:
    """The value with all but its first ``keep_start`` and last ``keep_end`` characters masked
    (``13812345678`` → ``138****5678``): enough for a clerk to confirm a number, too little to
    dial it. A value no longer than what would be kept is masked whole, or it would be shown."""
    if value is None:
        return None
    if keep_start < 0 or keep_end < 0 or len(char) != 1:
        raise DeidError("mask keeps a non-negative number of characters and masks with one")
    if len(value) <= keep_start + keep_end:
        return char * len(value)
    hidden = len(value) - keep_start - keep_end
    return value[:keep_start] + char * hidden + value[len(value) - keep_end :]


def pseudonym(value: str | None, key: bytes, context: str) -> str | None:
    """``dp:`` + 128 bits of HMAC-SHA256(key, context, value): the same value always gives the
    same pseudonym under one key and context, so records still join, but nobody without the key
    can compute or test one; a distinct context keeps one column's pseudonyms from matching
    another's."""
    if value is None:
        return None
    return keyed_id("dp", f"medspace-deid\x00{context}", value, key)


def encrypt(value: str | None, key: bytes, context: str) -> str | None:
    """``enc:`` + URL-safe base64 of AES-256-GCM(value) under a random nonce: reversible by the
    key holder, e.g. for re-contacting a patient. The context is associated data, so a token
    moved to another column or dataset fails to decrypt instead of being misread."""
    if value is None:
        return None
    cipher = AESGCM(_aes_key(key))
    nonce = os.urandom(_NONCE_BYTES)
    sealed = cipher.encrypt(nonce, value.encode("utf-8"), context.encode("utf-8"))
    return _ENCRYPTED_PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")


def decrypt(token: str | None, key: bytes, context: str) -> str | None:
    """The value :func:`encrypt` sealed; a wrong key, another context or a changed token is
    refused with :class:`DeidError`, never answered with garbage."""
    if token is None:
        return None
    cipher = AESGCM(_aes_key(key))
    if not token.startswith(_ENCRYPTED_PREFIX):
        raise DeidError("not an encrypted value (it does not start with 'enc:')")
    try:
        raw = base64.urlsafe_b64decode(token[len(_ENCRYPTED_PREFIX) :].encode("ascii"))
    except (binascii.Error, UnicodeEncodeError) as error:
        raise DeidError("an encrypted value that is not URL-safe base64") from error
    if len(raw) < _NONCE_BYTES + _TAG_BYTES:
        raise DeidError("an encrypted value too short to hold a nonce and a tag")
    try:
        plain = cipher.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], context.encode("utf-8"))
    except InvalidTag as error:
        raise DeidError(
            "the value does not decrypt: wrong key, wrong context or a tampered token"
        ) from error
    return plain.decode("utf-8")


def _aes_key(key: bytes) -> bytes:
    check_key(key, "encryption key")
    if len(key) != _AES_KEY_BYTES:
        raise DeidError(f"an AES-256 key is exactly {_AES_KEY_BYTES} bytes")
    return key


def generalise_number(value: int | None, width: int, start: int = 0) -> str | None:
    """The band of ``width`` holding the value, bands counted from ``start`` (37 → ``35-39``
    for width 5): an exact age or count singles people out, a band hides them among others."""
    if value is None:
        return None
    if width < 1:
        raise DeidError("a band is at least 1 wide")
    low = start + (value - start) // width * width
    return f"{low}-{low + width - 1}"


def top_code(value: int | None, ceiling: int, label: str) -> int | str | None:
    """``label`` for a value above ``ceiling`` (ages over 89 → ``90+``), else the value: the
    few people at an extreme are identifiable by the extreme alone."""
    if value is None:
        return None
    return label if value > ceiling else value


def bottom_code(value: int | None, floor: int, label: str) -> int | str | None:
    """``label`` for a value below ``floor``, else the value: :func:`top_code` at the low end."""
    if value is None:
        return None
    return label if value < floor else value


def generalise_date(value: date | None, to: Literal["month", "year", "5-year"]) -> str | None:
    """The month (``2023-04``), year (``2023``) or five-year span (``2020-2024``) of a date: a
    full date of birth, admission or death is a quasi-identifier; a coarser one keeps trends."""
    if value is None:
        return None
    if to == "month":
        return f"{value.year:04d}-{value.month:02d}"
    if to == "year":
        return f"{value.year:04d}"
    if to == "5-year":
        first = value.year - value.year % 5
        return f"{first:04d}-{first + 4:04d}"
    raise DeidError(f"a date generalises to 'month', 'year' or '5-year', not {to!r}")


def generalise_icd10(code: str | None, level: int = 3) -> str | None:
    """The first ``level`` characters of the normalised code (``c34.900x001`` → ``C34``): a rare
    exact diagnosis can identify a patient, its category rarely does. Going through
    :func:`~medspace.store.codes.normalise_icd10` makes every spelling of a code give one
    category and refuses what is not ICD-10."""
    if code is None:
        return None
    if level < 1:
        raise DeidError("an ICD-10 code keeps at least its chapter letter")
    characters = normalise_icd10(code).replace(".", "")[:level]
    return f"{characters[:3]}.{characters[3:]}" if len(characters) > 3 else characters


def generalise_place(place: str | None, to: Literal["city", "province"]) -> str | None:
    """The city or province of a district, up the GB/T 2260 hierarchy: a six-digit code gives a
    code (``320506`` → ``320500`` or ``320000``), a name gives a name (``吴中区`` → ``苏州市``).
    A district is small enough to help single out a patient; a city or province is not."""
    if place is None:
        return None
    if to not in ("city", "province"):
        raise DeidError(f"a place generalises to 'city' or 'province', not {to!r}")
    if re.fullmatch(r"[0-9]{6}", place):
        if place not in BY_CODE:
            raise DeidError(f"{place!r} is not a district code of the divisions table")
        return place[:4] + "00" if to == "city" else place[:2] + "0000"
    code = _code_of_name(place)
    if to == "province":
        return PROVINCES[code[:2]]
    if len(code) < 4:
        raise DeidError(f"{place!r} is a province: it has no single city")
    return CITIES[code[:4]]


def _full_names() -> dict[str, str]:
    """Each district as written with its province and city before it (``江苏省苏州市吴中区``,
    ``苏州市吴中区``, ``北京市海淀区``), by code."""
    names: dict[str, str] = {}
    for d in DIVISIONS:
        for written in (d.province + d.city + d.district, d.city + d.district):
            names[written] = d.code
        names[d.province + d.city] = d.code[:4]
    return names


_FULL_NAMES = _full_names()


def _code_of_name(name: str) -> str:
    """The code of the district, city or province with this name, written alone or after its
    province and city; a name shared by a city and its province (``北京市``) is the city, a
    name shared by unrelated divisions is refused."""
    if name in _FULL_NAMES:
        return _FULL_NAMES[name]
    codes = [d.code for d in DIVISIONS if d.district == name]
    codes += [code for code, city in CITIES.items() if city == name]
    codes += [code for code, province in PROVINCES.items() if province == name]
    if not codes:
        raise DeidError(f"{name!r} is not a division of the divisions table")
    longest = max(codes, key=len)
    if not all(longest.startswith(code) for code in codes):
        raise DeidError(f"{name!r} names more than one division: give its six-digit code")
    return longest


def zip3(zip_code: str | None) -> str | None:
    """The first three digits of a US ZIP code, ``000`` where HIPAA Safe Harbor finds that the
    prefix covers 20,000 people or fewer (those areas are small enough to identify)."""
    if zip_code is None:
        return None
    if not _ZIP.fullmatch(zip_code.strip()):
        raise DeidError("not a ZIP code (five digits, optionally -four digits)")
    prefix = zip_code.strip()[:3]
    return "000" if prefix in LOW_POPULATION_ZIP3 else prefix


def date_shift_days(person_key: str, key: bytes, max_days: int = 365) -> int:
    """A per-patient shift in days, in [-max_days, max_days] and never 0, from an HMAC of the
    patient's key: every date of one patient moves by the same amount, so intervals (length of
    stay, time to relapse) stay true while calendar dates stop matching outside records."""
    if max_days < 1:
        raise DeidError("a date shift is at least one day either way")
    digest = keyed_id("ds", "medspace-date-shift", person_key, key)
    offset = int(digest.partition(":")[2], 16) % (2 * max_days)
    return offset - max_days if offset < max_days else offset - max_days + 1


def shift_date(value: date | None, days: int) -> date | None:
    """The date moved by ``days`` (from :func:`date_shift_days`)."""
    if value is None:
        return None
    return value + timedelta(days=days)


def suppress(value: object) -> None:
    """Nothing: for a value no generalisation makes safe (a name, a free-text address)."""
    return None
