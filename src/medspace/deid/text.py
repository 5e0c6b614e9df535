"""Find direct identifiers in free-text clinical notes written in Chinese, English or both.

Notes carry the same identifiers as the structured record (resident ID numbers, phones, names,
addresses) plus the hospital's own numbers, typed by hand: spaced and dashed, in full-width
digits, glued to the Chinese text around them. :func:`find` returns typed spans at the offsets
of the original text so that callers can scrub, pseudonymise or audit them; :func:`scrub`
replaces each span by a typed placeholder.

Why no ``\\b``: Python's ``\\b`` treats CJK characters as word characters, so in
"于2023-04-18入院" there is no word boundary between "于" and "2", and a ``\\b``-anchored date
pattern finds nothing. Every pattern here is instead anchored by lookarounds on the ASCII
characters that would make the match part of a longer token (a digit before a phone number, a
letter after an ID number), which works the same next to CJK, spaces and punctuation.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from medspace.synth.divisions import CITIES, DIVISIONS, PROVINCES
from medspace.synth.identities import SURNAMES
from medspace.synth.resident_id import parse_resident_id

KINDS: tuple[str, ...] = (
    "ID_NUMBER", "MRN", "INSURANCE", "EMAIL", "URL", "PHONE", "IP", "DATE", "ADDRESS", "NAME",
)  # fmt: skip
"""Every kind :func:`find` reports, most specific first: on a tie in length the earlier wins."""

_PRIORITY = {kind: i for i, kind in enumerate(KINDS)}


@dataclass(frozen=True, slots=True)
class Span:
    """One identifier: its half-open offsets in the original text, its kind and its text."""

    start: int
    end: int
    kind: str
    text: str


# Full-width forms U+FF01-U+FF5E sit at a fixed offset from ASCII, and the ideographic space
# maps to a space: a one-to-one character map, so offsets in the normalised text are offsets
# in the original and no offset table is needed.
_FULL_WIDTH = {c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}

_CJK = "\u4e00-\u9fff"
_NOT_ALNUM_BEFORE = r"(?<![0-9A-Za-z])"
_NOT_ALNUM_AFTER = r"(?![0-9A-Za-z])"

_ID18 = re.compile(_NOT_ALNUM_BEFORE + r"[0-9]{17}[0-9Xx]" + _NOT_ALNUM_AFTER)
_ID15 = re.compile(_NOT_ALNUM_BEFORE + r"[0-9]{15}" + _NOT_ALNUM_AFTER)

_MOBILE = re.compile(r"(?<![0-9+])(?:(?:\+86|0086)[ -]?)?1[3-9][0-9](?:[ -]?[0-9]{4}){2}(?![0-9])")
_LANDLINE = re.compile(
    r"(?<![0-9])(?:\(0[0-9]{2,3}\) ?|0[0-9]{2,3}-)[0-9]{7,8}(?:-[0-9]{1,5})?(?![0-9])"
)
_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
)
_URL = re.compile(r"(?:https?://|www\.)[A-Za-z0-9._~:/?#@!$&'*+,;=%-]+(?<![.,;:!?'])")
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_IP = re.compile(rf"(?<![0-9.]){_OCTET}(?:\.{_OCTET}){{3}}(?![0-9]|\.[0-9])")

_YEAR = r"(?P<y>(?:19|20)[0-9]{2})"
_MONTH = r"(?P<m>0?[1-9]|1[0-2])"
_DAY = r"(?P<d>0?[1-9]|[12][0-9]|3[01])"
_DATES = (
    re.compile(rf"(?<![0-9]){_YEAR}(?P<sep>[-/.]){_MONTH}(?P=sep){_DAY}(?![0-9])"),
    re.compile(rf"(?<![0-9]){_YEAR} ?年 ?{_MONTH} ?月 ?{_DAY} ?[日号]"),
    re.compile(rf"(?<![0-9]){_DAY}/{_MONTH}/{_YEAR}(?![0-9])"),
)

_LABEL_GAP = r"[ \t]*(?:[:#][ \t]*)?"
_NUMBER_AFTER_LABEL = r"(?P<n>[A-Za-z0-9](?:[A-Za-z0-9-]{2,22}[A-Za-z0-9]))" + _NOT_ALNUM_AFTER
_MRN = re.compile(
    r"(?:病历号|住院号|门诊号|病案号|MRN|medical record(?: number| no\.?)?)(?:码)?"
    + _LABEL_GAP
    + _NUMBER_AFTER_LABEL,
    re.IGNORECASE,
)
_INSURANCE = re.compile(
    r"(?:医保卡号|社保卡号|医保号|社保号|insurance(?: card)? (?:no\.?|number))(?:码)?"
    + _LABEL_GAP
    + _NUMBER_AFTER_LABEL,
    re.IGNORECASE,
)


def _alternation(words: Iterable[str]) -> str:
    """A regex alternation of literal words, longest first so that the longest one wins."""
    return "|".join(re.escape(w) for w in sorted(set(words), key=len, reverse=True))


# A given name is one or two CJK characters, but Chinese has no spaces, so the second
# character may just as well be the start of the next word ("王伟入院"). A character that
# starts one of these words, or one that is a common function character, ends the name.
_AFTER_NAME = (
    "先生|女士|小姐|医生|大夫|主任|护士|教授|老师|之子|之女|之妻|之夫|之母|之父|家属|入院|出院|"
    "就诊|主诉|因|于|在|为|是|的|和|与|及|等|男|女|今|现|自|从|来|去|诉|称|说|系|患|行|已|经|"
    "年|岁|昨|身|住|电|联|号|家|手|签|同|意|病|查|诊|术|告|陪|拒|表|要|不|也|都|将|被|把|"
    "向|对|给|让|请|到|回|送|咳嗽|咯血|头痛|头晕|胸痛|胸闷|腹痛|腹泻|腹胀|发热|发烧|呕吐|恶心|乏力|"
    "气促|气短|心悸|反复|无明显|突发"
)
_GIVEN = rf"(?:(?!{_AFTER_NAME})[{_CJK}]){{1,2}}"
_COMPOUND = [s for s in SURNAMES if len(s) > 1]
# Only labels that announce a person count as context: a bare colon does not, or every
# "诊断：高血压" would report the diagnosis as a name.
_NAME_BEFORE = (
    r"(?:患者|病人|病患|姓名|家属|之子|之女|医生|医师|主任|护士|联系人|监护人|签名|签字|记录人|"
    r"记录者|报告人|审核人|申请人|[Pp]atient|[Nn]ame|Mr\.?|Mrs\.?|Ms\.?|Dr\.?)[ \t]*:?[ \t]*"
)
# Everyday and clinical words that begin with a surname character ("高热", "马上") and would
# otherwise read as a name right after "患者".
_NOT_A_NAME = (
    "高热|高血|高烧|高龄|高度|高危|黄疸|黄染|周身|周围|周期|马上|何时|于是|任何|许多|陈旧|曾经|"
    "曾有|曾行|曾于|余无|程度|苏醒|丁香|吕氏"
)
_NAME_AFTER = r"先生|女士|小姐|医生|大夫|主任|护士|教授|之子|之女|之妻|之夫|之母|之父"
_CN_NAME = re.compile(rf"(?!{_NOT_A_NAME})(?P<n>(?:{_alternation(SURNAMES)}){_GIVEN})")
_CN_NAME_AFTER_CONTEXT = re.compile(rf"(?:{_NAME_BEFORE})$")
_CN_NAME_BEFORE_CONTEXT = re.compile(rf"(?:{_NAME_AFTER})")
_LATIN_NAME = re.compile(
    r"(?<![A-Za-z])(?:Mr|Mrs|Ms|Miss|Dr|Patient|Name:)\.?[ \t]+"
    r"(?P<n>[A-Z][a-z]+(?:[ -][A-Z][a-z]+){0,2})(?![A-Za-z])"
)

_ADMIN = _alternation([*PROVINCES.values(), *CITIES.values(), *(d.district for d in DIVISIONS)])
_STREET_UNIT = r"(?:[0-9]+(?:-[0-9]+)?(?:号楼|号院|号|弄|栋|幢|单元|室|楼|层))"
_CN_ADDRESS = re.compile(
    rf"(?:{_ADMIN})+"
    rf"(?:(?:[{_CJK}]{{1,10}}?(?:大道|路|街|道|巷|弄|村|镇)){_STREET_UNIT}*|{_STREET_UNIT}+)"
)
_EN_ADDRESS = re.compile(
    r"(?<![A-Za-z])No\.[ \t]*[0-9]+[A-Za-z]?,?[ \t]+(?:[A-Z][a-z]+[ \t]+){1,4}"
    r"(?:Road|Street|Avenue|Lane|Rd\.|St\.|Ave\.)"
    r"(?:,[ \t]*[A-Z][a-z]+ (?:District|County))?(?:,[ \t]*[A-Z][a-z]+(?: City)?)?"
)


def normalise(text: str) -> str:
    """Full-width digits, letters and punctuation as ASCII, at the same offsets."""
    return text.translate(_FULL_WIDTH)


def _valid_date(year: int, month: int, day: int) -> bool:
    try:
        dt.date(year, month, day)
    except ValueError:
        return False
    return True


def _id_numbers(text: str) -> Iterator[tuple[int, int, str]]:
    """18 digits only count with a matching check character, which rejects 10 in 11 other
    numbers (order and lab numbers); the legacy 15-digit form has no check character, only a
    YYMMDD birth date in the 1900s, so that date must at least exist."""
    for m in _ID18.finditer(text):
        try:
            parse_resident_id(m.group().upper())
        except ValueError:
            continue
        yield m.start(), m.end(), "ID_NUMBER"
    for m in _ID15.finditer(text):
        digits = m.group()
        if _valid_date(1900 + int(digits[6:8]), int(digits[8:10]), int(digits[10:12])):
            yield m.start(), m.end(), "ID_NUMBER"


def _simple(pattern: re.Pattern[str], kind: str) -> Callable[[str], Iterator[tuple[int, int, str]]]:
    def scan(text: str) -> Iterator[tuple[int, int, str]]:
        for m in pattern.finditer(text):
            yield m.start(), m.end(), kind

    return scan


def _labelled(
    pattern: re.Pattern[str], kind: str
) -> Callable[[str], Iterator[tuple[int, int, str]]]:
    """Only the number is the identifier, not the label that introduced it."""

    def scan(text: str) -> Iterator[tuple[int, int, str]]:
        for m in pattern.finditer(text):
            yield m.start("n"), m.end("n"), kind

    return scan


def _dates(text: str) -> Iterator[tuple[int, int, str]]:
    for pattern in _DATES:
        for m in pattern.finditer(text):
            if _valid_date(int(m["y"]), int(m["m"]), int(m["d"])):
                yield m.start(), m.end(), "DATE"


def _names(text: str) -> Iterator[tuple[int, int, str]]:
    """Chinese names need context: a bare surname character is too often an ordinary word."""
    for start in range(len(text)):
        m = _CN_NAME.match(text, start)
        if m is None:
            continue
        surname_is_compound = any(m.group().startswith(s) for s in _COMPOUND)
        if (
            surname_is_compound
            or _CN_NAME_AFTER_CONTEXT.search(text, max(0, start - 8), start)
            or _CN_NAME_BEFORE_CONTEXT.match(text, m.end())
        ):
            yield m.start(), m.end(), "NAME"
    for m in _LATIN_NAME.finditer(text):
        yield m.start("n"), m.end("n"), "NAME"


_SCANNERS: tuple[Callable[[str], Iterator[tuple[int, int, str]]], ...] = (
    _id_numbers,
    _labelled(_MRN, "MRN"),
    _labelled(_INSURANCE, "INSURANCE"),
    _simple(_EMAIL, "EMAIL"),
    _simple(_URL, "URL"),
    _simple(_MOBILE, "PHONE"),
    _simple(_LANDLINE, "PHONE"),
    _simple(_IP, "IP"),
    _dates,
    _simple(_CN_ADDRESS, "ADDRESS"),
    _simple(_EN_ADDRESS, "ADDRESS"),
    _names,
)


def find(text: str) -> list[Span]:
    """The identifiers in ``text``, in order and never overlapping.

    Candidates from all patterns compete for the characters they cover: the longest wins, and
    on equal length the more specific kind (order of :data:`KINDS`), so a labelled MRN that
    happens to look like a phone number stays an MRN and a date inside a URL stays in the URL.
    """
    norm = normalise(text)
    candidates = [c for scan in _SCANNERS for c in scan(norm) if c[1] > c[0]]
    candidates.sort(key=lambda c: (c[0] - c[1], _PRIORITY[c[2]], c[0]))
    taken = [False] * len(text)
    chosen: list[Span] = []
    for start, end, kind in candidates:
        if any(taken[start:end]):
            continue
        taken[start:end] = [True] * (end - start)
        chosen.append(Span(start, end, kind, text[start:end]))
    return sorted(chosen, key=lambda s: s.start)


def scrub(text: str) -> str:
    """``text`` with each identifier replaced by its kind in brackets, e.g. ``[PHONE]``."""
    parts: list[str] = []
    last = 0
    for span in find(text):
        parts.append(text[last : span.start])
        parts.append(f"[{span.kind}]")
        last = span.end
    parts.append(text[last:])
    return "".join(parts)
