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

Names and addresses have no fixed shape. A Chinese name is a known surname and one or two more
characters, and counts only with context: a label or relation before it (患者, 姓名, 其女), a
title after it (先生), or a clause it opens as the subject (王建国诉头痛). A Latin name follows
a title or a label, or precedes a degree or an age. An address runs from a known division, or
from an address label, down to the flat. ``medspace.synth.notes`` writes labelled notes that
measure all of this, kind by kind.
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
    "ID_NUMBER", "INSURANCE", "MRN", "EMAIL", "URL", "PHONE", "IP", "DATE", "ADDRESS", "NAME",
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
_ANY_FULL_WIDTH = re.compile("[\uff01-\uff5e\u3000]")

_CJK = "\u4e00-\u9fff"
# Python's engine tries a pattern at every position of the text. A pattern that opens with a
# character class or literals lets it skip in C to where a match can start, so the boundary
# before a number is checked by a lookbehind placed after its first characters: in
# "[0-9](?<![0-9A-Za-z][0-9])" the digit has no letter or digit before it, and after a 4-digit
# year "(?<![0-9]{5})" says the same. A pattern that cannot open that way starts with a
# lookahead on its possible first characters, the next cheapest way to give up at a position.
_NOT_ALNUM_BEFORE = r"(?<![0-9A-Za-z])"
_NOT_ALNUM_AFTER = r"(?![0-9A-Za-z])"

# The 18-character number, the legacy 15-digit one, and the 18 characters as people group them
# by hand: district, birth date, sequence and check.
_ID = re.compile(
    r"[0-9](?<![0-9A-Za-z][0-9])"
    r"(?:[0-9]{16}[0-9Xx]|[0-9]{14}|[0-9]{5}(?P<sep>[ -])[0-9]{8}(?P=sep)[0-9]{3}[0-9Xx])"
    + _NOT_ALNUM_AFTER
)

_MOBILE = re.compile(
    r"(?=[+01])(?<![0-9+])(?:(?:\+86|0086)[ -]?)?1[3-9][0-9](?:[ -]?[0-9]{4}){2}(?![0-9])"
)
# Area codes: 10 and 2x for the largest cities, three digits elsewhere; written with a trunk 0
# at home ("0571-", "(010)", "0571 ") or without it after the country code ("+86-571-").
_AREA = r"(?:10|2[0-9]|[3-9][0-9]{2})"
_LANDLINE = re.compile(
    r"(?=[(0+])(?<![0-9+])"
    r"(?:\(0[0-9]{2,3}\) ?[0-9]{7,8}|0[0-9]{2,3}-[0-9]{7,8}|0[0-9]{2,3} [2-9][0-9]{6,7}"
    rf"|(?:\+86|0086)[ -]?(?:\(0?{_AREA}\)|0?{_AREA})[ -]?[2-9][0-9]{{6,7}})"
    r"(?:-[0-9]{1,5})?(?![0-9])"
)
_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
)
# Without a scheme or "www.", a host name counts only with a path after it, so that file names
# and the domains of e-mail addresses stay out.
_URL = re.compile(
    r"(?:https?://|www\.|(?<![A-Za-z0-9.@_-])(?:[A-Za-z0-9-]+\.)+(?:cn|com|org|net|edu|gov|io)/)"
    r"[A-Za-z0-9._~:/?#@!$&'*+,;=%-]*(?<![.,;:!?'])"
)
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_IP = re.compile(rf"(?=[0-9])(?<![0-9.]){_OCTET}(?:\.{_OCTET}){{3}}(?![0-9]|\.[0-9])")

_YEAR = r"(?P<y>(?:19|20)[0-9]{2})"
_MONTH = r"(?P<m>0?[1-9]|1[0-2])"
_DAY = r"(?P<d>0?[1-9]|[12][0-9]|3[01])"
_MONTH_NAME = (
    r"(?P<mn>Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?"
    r"|Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?"
)
_MONTH_NUMBER = {name: i for i, name in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
)}  # fmt: skip
_DATES = (
    re.compile(rf"{_YEAR}(?<![0-9]{{5}})(?P<sep>[-/.]){_MONTH}(?P=sep){_DAY}(?![0-9])"),
    re.compile(rf"(?=[0-9])(?<![0-9]){_DAY}/{_MONTH}/{_YEAR}(?![0-9])"),
)
_ENGLISH_DATES = (
    re.compile(
        rf"(?=[0-9])(?<![0-9A-Za-z]){_DAY}(?:st|nd|rd|th)? {_MONTH_NAME},? {_YEAR}(?![0-9])"
    ),
    re.compile(
        rf"(?=[ADFJMNOS])(?<![A-Za-z]){_MONTH_NAME} {_DAY}(?:st|nd|rd|th)?,? {_YEAR}(?![0-9])"
    ),
)
_CHINESE_DATES = (
    re.compile(rf"{_YEAR}(?<![0-9]{{5}}) ?年 ?{_MONTH} ?月 ?{_DAY} ?[日号]"),
    re.compile(rf"(?=[0-9])(?<![0-9]){_MONTH}月{_DAY}[日号]"),
)
# Formal letters and signatures write dates in numerals: 二〇二三年四月十八日.
_NUMERALS = "〇一二三四五六七八九"
_WORD_DATE = re.compile(
    r"(?P<y>[〇零一二三四五六七八九]{4})年(?P<m>十[一二]?|[一二三四五六七八九])月"
    r"(?P<d>[二三]?十[一二三四五六七八九]?|[一二三四五六七八九])[日号]"
)

_LABEL_GAP = r"[ \t]*(?:[:#][ \t]*)?"
# A number, or digits in groups of four as card numbers are printed.
_NUMBER_AFTER_LABEL = (
    r"(?P<n>[0-9]{4}(?: [0-9]{4}){1,4}|[A-Za-z0-9](?:[A-Za-z0-9-]{2,22}[A-Za-z0-9]))"
    + _NOT_ALNUM_AFTER
)
_NUMBER_WORD = r"(?:no\.?|number|num\.?|id)"
_MRN_LABEL = (
    r"(?:(?:病历|住院|门诊|病案|登记|就诊|就诊卡|档案)号|(?:患者)?(?-i:ID)号?|MRN"
    rf"|medical record(?: {_NUMBER_WORD})?"
    rf"|(?:hospital|(?:in|out)patient|patient|case|record) {_NUMBER_WORD})(?:码)?"
)
_MRN = re.compile(
    r"(?=[病住门登就档患IMHOPCR])(?<![A-Za-z])" + _MRN_LABEL + _LABEL_GAP + _NUMBER_AFTER_LABEL,
    re.IGNORECASE,
)
_INSURANCE_LABEL = (
    r"(?:(?:医保|社保|医疗保险|参保)(?:卡)?(?:个人)?(?:编号|号)"
    rf"|(?:medical )?insurance(?: card)? {_NUMBER_WORD}|policy {_NUMBER_WORD})(?:码)?"
)
_INSURANCE = re.compile(
    r"(?=[医社参MIP])(?<![A-Za-z])" + _INSURANCE_LABEL + _LABEL_GAP + _NUMBER_AFTER_LABEL,
    re.IGNORECASE,
)


def _alternation(words: Iterable[str]) -> str:
    """A regex alternation of literal words, longest first so that the longest one wins.

    Python's engine tries the words one by one at every position of the text, so the
    alternation is guarded by a class of their first characters, which fails at C speed.
    """
    ordered = sorted(set(words), key=len, reverse=True)
    initials = "".join(sorted({w[0] for w in ordered}))
    return f"(?=[{re.escape(initials)}])(?:" + "|".join(re.escape(w) for w in ordered) + ")"


# A given name is one or two CJK characters, but Chinese has no spaces, so the second
# character may just as well be the start of the next word ("王伟入院"). A character that
# starts one of these words, or one that is a common function character, ends the name.
_AFTER_NAME = (
    "先生|女士|小姐|医生|医师|大夫|主任|主治|副|护士|教授|老师|之子|之女|之妻|之夫|之母|之父|家属|"
    "入院|出院|就诊|主诉|因|于|在|为|是|的|和|与|及|等|男|女|今|现|自|从|来|去|诉|述|称|说|系|患|"
    "行|已|经|年|岁|昨|身|住|电|联|号|家|手|签|同|意|病|查|诊|术|告|陪|拒|表|要|不|也|都|将|被|"
    "把|向|对|给|让|请|到|回|送|咳嗽|咯血|头痛|头晕|胸痛|胸闷|腹痛|腹泻|腹胀|发热|发烧|呕吐|恶心|"
    "乏力|气促|气短|心悸|反复|无明显|突发|神志|精神|饮食|食欲|睡眠|夜间|目前|生命|一般|情况|病情|"
    "二便|大便|小便|体温|血压|心率|情绪|交代|告知|说明|沟通|解释|谈话|既往|平素|否认|无|有|近|曾|"
    "偶|常|仍|又|再|还|尚|即|并|但|且|或"
)
_GIVEN = rf"(?:(?!{_AFTER_NAME})[{_CJK}]){{1,2}}"
_COMPOUND = tuple(s for s in SURNAMES if len(s) > 1)
# Only labels that announce a person count as context: a bare colon does not, or every
# "诊断：高血压" would report the diagnosis as a name.
_NAME_BEFORE = (
    r"(?:患者|病人|病患|姓名|家属|之子|之女|其子|其女|其妻|其夫|配偶|爱人|妻子|丈夫|儿子|女儿|母亲|"
    r"父亲|医生|医师|主任|护士|联系人|监护人|签名|签字|记录人|记录者|报告人|审核人|申请人|操作员|"
    r"操作者|[Pp]atient|[Nn]ame|Mr\.?|Mrs\.?|Ms\.?|Dr\.?)[ \t]*:?[ \t]*"
)
# Everyday and clinical words that begin with a surname character ("高热", "马上", "叶酸")
# and would otherwise read as a name right after "患者" or at the start of a clause.
_NOT_A_NAME = (
    "高热|高血|高烧|高龄|高度|高危|高钾|高糖|高脂|黄疸|黄染|黄体|周身|周围|周期|马上|何时|于是|"
    "任何|许多|陈旧|曾经|曾有|曾行|曾于|余无|余未|余同|程度|苏醒|丁香|吕氏|叶酸|林格液|林格氏|"
    "罗红霉素|杜冷丁|朱砂|胡言|张口|孙辈|徐缓|潘生丁|谢谢|唐氏|田七|何种|许可"
)
# A person is the subject of these: "王建国诉头痛", "李娜，女，34岁", "张伟因胸痛入院".
_PERSON_PREDICATE = re.compile(
    r"自诉|自述|主诉|诉|述|因|于|今日|今晨|昨日|昨晚|入院|出院|就诊|来院"
    r"|[,(]?[男女](?:[,)、 ]|性)|[,(]?[0-9]{1,3}岁"
)
# Telling someone something: "已向王伟交代病情", "与李娜沟通".
_TOLD_BEFORE = frozenset("向与同给对")
_TOLD_AFTER = re.compile(r"交代|告知|说明|沟通|解释|谈话|商议")
# Where a clause starts, in the normalised text: after punctuation, a line break or a label.
_CLAUSE_START = frozenset("。;!?\n\r,:、 \t([【“\"'")
_NAME_AFTER = (
    r"先生|女士|小姐|医生|医师|大夫|主任|主治|副主任|护士|教授|之子|之女|之妻|之夫|之母|之父"
)
# Every start position is tried (the lookahead matches empty), so names that overlap, as in
# "患者王李明", all become candidates and the longest wins in :func:`find`.
_CN_NAME = re.compile(rf"(?=(?P<n>{_alternation(SURNAMES)}{_GIVEN}))(?!{_NOT_A_NAME})")
_CN_NAME_AFTER_CONTEXT = re.compile(rf"(?:{_NAME_BEFORE})$")
_CN_NAME_BEFORE_CONTEXT = re.compile(rf"(?:{_NAME_AFTER})")

_TITLE = r"(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Nurse)"
# Words that follow a title or a label as often as a name does: "Nurse Practitioner".
_ROLE = (
    r"(?:Practitioner|Specialist|Manager|Educator|Consultant|Assistant|Registrar|Resident|Intern"
    r"|Team|Clinic|Department|Ward|Unit|Service|Station|Office|On|In|Of|The)"
)
# A word of a Latin-script name: "Wang", "O'Brien", but not the "'s" of "Dr. Chen's team"; a
# surname in capitals as passports write it ("WANG Wei") only when a capitalised given name
# follows. A word followed by a colon is a field label ("Patient Education:"), not a name.
_LATIN_WORD = (
    rf"(?!(?:{_TITLE}|{_ROLE})(?![a-z]))"
    r"(?:[A-Z]'[A-Z][a-z]+|[A-Z][a-z]+(?:'(?!s(?![a-z]))[a-z]+)?)(?![A-Za-z:]|'(?!s(?![a-z])))"
)
_LATIN_SURNAME = rf"(?:[A-Z]{{2,}}(?= [A-Z][a-z])|{_LATIN_WORD})"
_LATIN_NAME = re.compile(
    r"(?=[ACDFHMNPRSWacdfhmnprsw])(?<![A-Za-z])(?:(?i:patient(?: name)?|pt|name|attending"
    r"|signed(?: by)?|contact|next of kin|physician|surgeon|nurse|doctor|referred by"
    r"|(?:his |her )?(?:wife|husband|daughter|son|mother|father))"
    rf"[ \t]*:?[ \t]+(?:{_TITLE}\.?[ \t]+)?|{_TITLE}\.?[ \t]+)"
    rf"(?P<n>{_LATIN_SURNAME}(?:[ -]{_LATIN_WORD}){{0,2}})"
)
# A full name followed by what only follows a person: a degree or qualification ("Guo Haiyan,
# MD"), or an age that introduces them ("Wang Wei is a 65-year-old man").
_LATIN_NAME_BEFORE_CONTEXT = re.compile(
    rf"(?=[A-Z])(?<![A-Za-z'-])(?P<n>{_LATIN_SURNAME}(?:[ -]{_LATIN_WORD}){{1,2}})"
    r"(?:,[ \t]?(?:MD|RN|PhD|DO|MBBS|FRCP|NP|PA)(?![A-Za-z])"
    r"|,? (?:(?:is|was) )?an? [0-9]{1,3}[- ]year[- ]old(?![A-Za-z]))"
)

_ADMIN = _alternation([*PROVINCES.values(), *CITIES.values(), *(d.district for d in DIVISIONS)])
_ROAD = rf"[{_CJK}]{{1,10}}?(?:大道|街道|路|街|巷|弄|村|镇|乡)"
_STREET_UNIT = r"[0-9]+(?:-[0-9]+)?(?:号楼|号院|号|弄|栋|幢|座|单元|室|楼|层|组)"
# A residential compound's name sits between the street number and the building number.
_ESTATE = rf"[{_CJK}]{{1,8}}?(?:小区|花园|家园|公寓|新村|大厦|苑)(?=[0-9])"
# Building, unit and flat as bare numbers after the street number: "12号3-2-501".
_FLAT = r"[0-9]{1,4}(?:-[0-9]{1,4}){1,2}(?![0-9])"
# The quantifiers over divisions and roads are possessive, and the street is optional in the
# pattern and required by the scanner: a run of division or road names with no street after it
# then fails once, not once per way of splitting it, nor once per position inside it.
_CN_ADDRESS = re.compile(
    rf"(?:{_ADMIN})++(?P<street>(?:{_ROAD})++(?:{_STREET_UNIT}|{_ESTATE})*"
    rf"|{_STREET_UNIT}(?:{_STREET_UNIT}|{_ESTATE})*)?"
    rf"(?:(?<=号){_FLAT})?"
)
# After an address label the street alone is an address: "住址：中山路12号3栋501室".
_LABELLED_ADDRESS = re.compile(
    r"(?=[现住家地户居])(?:现住址|住址|家住|现住|地址|住所|居住地|户籍地)[ \t]*(?:于|在)?:?[ \t]*"
    rf"(?P<n>(?:{_ROAD})++(?:{_STREET_UNIT}|{_ESTATE})+(?:(?<=号){_FLAT})?)"
)
_EN_PLACE_WORD = r"[A-Z][a-z]+(?:'[a-z]+)?"
_EN_PROVINCES = (
    "Beijing|Tianjin|Shanghai|Chongqing|Hebei|Shanxi|Liaoning|Jilin|Heilongjiang|Jiangsu|Zhejiang|"
    "Anhui|Fujian|Jiangxi|Shandong|Henan|Hubei|Hunan|Guangdong|Hainan|Sichuan|Guizhou|Yunnan|"
    "Shaanxi|Gansu|Qinghai|Inner Mongolia|Guangxi|Tibet|Ningxia|Xinjiang"
)
_EN_ADDRESS = re.compile(
    r"(?=[RFAUSBN0-9])(?<![A-Za-z0-9])"
    r"(?:(?:Room|Rm\.?|Flat|Apt\.?|Unit|Suite)[ \t]*[0-9]+[A-Za-z]?,[ \t]*)?"
    r"(?:(?:Building|Bldg\.?|Block)[ \t]*[0-9]+[A-Za-z]?,[ \t]*)?"
    rf"(?:No\.[ \t]*)?[0-9]+[A-Za-z]?,?[ \t]+(?:{_EN_PLACE_WORD}[ \t]+){{1,4}}"
    r"(?:Road|Street|Avenue|Lane|Boulevard|Rd\.|St\.|Ave\.)"
    rf"(?:,[ \t]*{_EN_PLACE_WORD}(?: {_EN_PLACE_WORD})? (?:District|County|New Area))?"
    rf"(?:,[ \t]*{_EN_PLACE_WORD}(?: City)?(?![A-Za-z:]))?"
    rf"(?:,[ \t]*(?:{_EN_PROVINCES})(?: Province)?(?![A-Za-z]))?"
    r"(?:,[ \t]*(?:P\. ?R\. ?)?China(?![A-Za-z]))?"
)


def normalise(text: str) -> str:
    """Full-width digits, letters and punctuation as ASCII, at the same offsets."""
    return text.translate(_FULL_WIDTH) if _ANY_FULL_WIDTH.search(text) else text


def _valid_date(year: int, month: int, day: int) -> bool:
    try:
        dt.date(year, month, day)
    except ValueError:
        return False
    return True


def _is_id_number(chars: str) -> bool:
    """18 characters only count with a matching check character, which rejects 10 in 11 other
    numbers (order and lab numbers); the legacy 15-digit form has no check character, only a
    YYMMDD birth date in the 1900s, so that date must at least exist."""
    if len(chars) == 15:
        return _valid_date(1900 + int(chars[6:8]), int(chars[8:10]), int(chars[10:12]))
    try:
        parse_resident_id(chars)
    except ValueError:
        return False
    return True


def _id_numbers(text: str) -> Iterator[tuple[int, int, str]]:
    for m in _ID.finditer(text):
        chars = m.group().upper()
        if _is_id_number(chars.replace(m["sep"], "") if m["sep"] else chars):
            yield m.start(), m.end(), "ID_NUMBER"


_Scanner = Callable[[str], Iterable[tuple[int, int, str]]]


def _simple(pattern: re.Pattern[str], kind: str) -> _Scanner:
    def scan(text: str) -> Iterator[tuple[int, int, str]]:
        for m in pattern.finditer(text):
            yield m.start(), m.end(), kind

    return scan


def _labelled(pattern: re.Pattern[str], kind: str) -> _Scanner:
    """Only the group named ``n`` is the identifier, not the label or context around it."""

    def scan(text: str) -> Iterator[tuple[int, int, str]]:
        for m in pattern.finditer(text):
            yield m.start("n"), m.end("n"), kind

    return scan


def _numeral(word: str) -> int:
    """A number written in Chinese numerals: digit by digit (二〇二三) or with 十 (二十一)."""
    word = word.replace("零", "〇")
    if "十" not in word:
        return int("".join(str(_NUMERALS.index(c)) for c in word))
    tens, _, units = word.partition("十")
    return 10 * (_NUMERALS.index(tens) if tens else 1) + (_NUMERALS.index(units) if units else 0)


def _digit_dates(
    text: str, patterns: tuple[re.Pattern[str], ...] = _DATES
) -> Iterator[tuple[int, int, str]]:
    for pattern in patterns:
        for m in pattern.finditer(text):
            groups = m.groupdict()
            month = _MONTH_NUMBER[groups["mn"][:3].lower()] if groups.get("mn") else int(m["m"])
            # A date without its year is checked against a leap year, where 2月29日 exists.
            year = int(groups["y"]) if groups.get("y") else 2000
            if _valid_date(year, month, int(m["d"])):
                yield m.start(), m.end(), "DATE"


def _english_dates(text: str) -> Iterator[tuple[int, int, str]]:
    return _digit_dates(text, _ENGLISH_DATES)


def _chinese_dates(text: str) -> Iterator[tuple[int, int, str]]:
    yield from _digit_dates(text, _CHINESE_DATES)
    for m in _WORD_DATE.finditer(text):
        if _valid_date(_numeral(m["y"]), _numeral(m["m"]), _numeral(m["d"])):
            yield m.start(), m.end(), "DATE"


def _cn_addresses(text: str) -> Iterator[tuple[int, int, str]]:
    """A division alone ("转诊至朝阳区医院") is not an address; a street must follow it."""
    for m in _CN_ADDRESS.finditer(text):
        if m["street"]:
            yield m.start(), m.end(), "ADDRESS"


def _chinese_names(text: str) -> Iterator[tuple[int, int, str]]:
    """Chinese names need context, because a bare surname character is too often an ordinary
    word: a label or relation before the name, a title after it, or the start of a clause with
    the person as its subject after it. Compound surnames are rare enough words to need none."""
    for m in _CN_NAME.finditer(text):
        start, end = m.span("n")
        if (
            text.startswith(_COMPOUND, start)
            or _CN_NAME_AFTER_CONTEXT.search(text, max(0, start - 8), start)
            or _CN_NAME_BEFORE_CONTEXT.match(text, end)
            or (
                (start == 0 or text[start - 1] in _CLAUSE_START)
                and _PERSON_PREDICATE.match(text, end)
            )
            or (start > 0 and text[start - 1] in _TOLD_BEFORE and _TOLD_AFTER.match(text, end))
        ):
            yield start, end, "NAME"


def _when(needed: Callable[[str], object], scan: _Scanner) -> _Scanner:
    """``scan``, run only on texts where ``needed`` says it can find something: a test that
    runs in C over the text (``"@" in text``) costs far less than a pattern tried at every
    position of it."""

    def scan_if_needed(text: str) -> Iterable[tuple[int, int, str]]:
        return scan(text) if needed(text) else ()

    return scan_if_needed


def _has_non_ascii(text: str) -> bool:
    return not text.isascii()


def _has_at(text: str) -> bool:
    return "@" in text


# What the English dates, URL, English address and name-before-context patterns cannot match
# without.
_STREET_WORD = re.compile(r"Road|Street|Avenue|Lane|Boulevard|Rd\.|St\.|Ave\.")
_MONTH_WORD = re.compile(r"Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec")
_URL_START = re.compile(r"://|www\.|\.(?:cn|com|org|net|edu|gov|io)/")
_DEGREE_OR_AGE = re.compile(r", ?(?:MD|RN|PhD|DO|MBBS|FRCP|NP|PA)|year")

_SCANNERS: tuple[_Scanner, ...] = (
    _id_numbers,
    _labelled(_INSURANCE, "INSURANCE"),
    _labelled(_MRN, "MRN"),
    _when(_has_at, _simple(_EMAIL, "EMAIL")),
    _when(_URL_START.search, _simple(_URL, "URL")),
    _simple(_MOBILE, "PHONE"),
    _simple(_LANDLINE, "PHONE"),
    _simple(_IP, "IP"),
    _digit_dates,
    _when(_MONTH_WORD.search, _english_dates),
    _when(_has_non_ascii, _chinese_dates),
    _when(_has_non_ascii, _cn_addresses),
    _when(_has_non_ascii, _labelled(_LABELLED_ADDRESS, "ADDRESS")),
    _when(_STREET_WORD.search, _simple(_EN_ADDRESS, "ADDRESS")),
    _when(_has_non_ascii, _chinese_names),
    _labelled(_LATIN_NAME, "NAME"),
    _when(_DEGREE_OR_AGE.search, _labelled(_LATIN_NAME_BEFORE_CONTEXT, "NAME")),
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
