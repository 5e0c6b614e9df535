"""Units of measure in one canonical UCUM form, so that a lab value's unit can be trusted.

A unit is read as a UCUM case-sensitive ("c/s") expression, following the grammar of the UCUM
specification (§2-§4): a term of components joined by ``.`` (times) and ``/`` (divided by), an
optional leading ``/`` (``/min``), parentheses, integer factors (``10``, ``1.73`` is the factor
1 times the factor 73), annotations in curly braces (``{beats}/min``), and simple units made of
an atom, optionally preceded by a prefix if the atom is metric, and followed by an integer
exponent (``m2``, ``s-1``, ``10*9``). As in UCUM's own table of example units, a factor or a
parenthesis may carry an annotation (``100{cells}``, ``g/(8.h){shift}``). The atoms and prefixes
are UCUM 2.2's own (:mod:`medspace.store.ucum_atoms`); the parser is written here, not taken
from a package, because a validator this small should not bring a parser generator and a units
library into every connector, and should say exactly what is wrong (``unknown unit 'LL'``,
``'min' is not a metric unit and takes no prefix``).

The result is canonical where UCUM has synonyms for one unit: ``l`` is written ``L`` (so
``mg/dl`` and ``mg/dL`` are one unit in the store), ``[iU]`` is written ``[IU]``, ``10^`` is
written ``10*``, and an exponent loses a ``+`` sign and leading zeros. Nothing else is
rewritten: ``m/s`` and ``m.s-1`` stay two spellings, as UCUM itself leaves them.

Labs also send spellings that are not UCUM. A few common ones are mapped, and only when the
text is not already valid UCUM, so a mapping never changes a UCUM unit's meaning:

* whole units (:data:`UNIT_ALIASES`): ``bpm`` and ``beats/min`` → ``/min``;
* powers of ten: ``x10^9/L``, ``×10^9/L``, ``x10*9/L``, ``10E9/L`` and ``10⁹/L`` → ``10*9/L``;
* superscript exponents: ``kg/m²`` → ``kg/m2``;
* symbols (:data:`SYMBOL_ALIASES`), also after a prefix where the UCUM atom is metric:
  ``IU`` → ``[IU]`` (``mIU/L`` → ``m[IU]/L``), ``Eq`` → ``eq`` (``mEq/L`` → ``meq/L``),
  ``Osm`` → ``osm``, ``mHg`` → ``m[Hg]`` (``mmHg`` → ``mm[Hg]``), ``mH2O`` → ``m[H2O]``
  (``cmH2O`` → ``cm[H2O]``), ``°C``/``℃`` → ``Cel``, ``°F``/``℉`` → ``[degF]``, ``mcg`` →
  ``ug``, ``hr`` → ``h``;
* the micro signs ``µ`` (U+00B5) and ``μ`` (U+03BC) as the prefix ``u`` (``µmol/L`` → ``umol/L``).

Refused, with the reason: anything else unknown (``foo``, ``mmol/LL``), broken syntax
(``mg//dL``, ``(mg``), a prefix on a non-metric unit (``kmin``), an exponent of 0, text with
spaces, empty text, and units longer than :data:`~medspace.store.codes.UNIT_MAX_LENGTH`
characters (the store's column). Annotations are free text in UCUM; here they may hold only the
characters of :data:`~medspace.store.codes.UNIT_PATTERN`, because the store keeps no free text.
Input is read case-sensitively, as c/s requires: ``MG/DL`` is refused, not guessed at.
"""

from __future__ import annotations

import functools
import re

from medspace.store.codes import CACHED_CODES, UNIT_MAX_LENGTH, CodeError
from medspace.store.ucum_atoms import METRIC_ATOMS, NON_METRIC_ATOMS, PREFIXES

#: Whole units that labs send for a UCUM unit that has no word for the thing counted.
UNIT_ALIASES: dict[str, str] = {"bpm": "/min", "beats/min": "/min"}
#: Symbols that labs send for a UCUM unit; the ones naming a metric atom also take a prefix.
SYMBOL_ALIASES: dict[str, str] = {
    "IU": "[IU]",
    "Eq": "eq",
    "Osm": "osm",
    "mHg": "m[Hg]",
    "mH2O": "m[H2O]",
    "°C": "Cel",
    "℃": "Cel",
    "°F": "[degF]",
    "℉": "[degF]",
    "mcg": "ug",
    "hr": "h",
}
#: The micro signs that stand for UCUM's prefix ``u``.
PREFIX_ALIASES: dict[str, str] = {"µ": "u", "μ": "u"}
#: UCUM synonyms, each written in one way.
CANONICAL_ATOMS: dict[str, str] = {"l": "L", "[iU]": "[IU]", "10^": "10*"}

_ATOMS = METRIC_ATOMS | NON_METRIC_ATOMS
_PREFIXES = sorted((*PREFIXES, *PREFIX_ALIASES), key=len, reverse=True)
_SUPERSCRIPTS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻", "0123456789+-")
#: A power of ten written the way lab reports print it, at the start of a component.
_POWER_OF_TEN = re.compile(r"(^|[./(])[x×]?10(?:[\^*E](?=[+-]?[0-9])|(?=[⁺⁻⁰¹²³⁴⁵⁶⁷⁸⁹]))")
_ANNOTATION = re.compile(r"\{[^{}]*\}")
_ANNOTATION_TEXT = re.compile(r"[0-9A-Za-z%/^.*_\-\[\]()+'#]*")
_STOP = "./(){}"


@functools.lru_cache(maxsize=CACHED_CODES)
def normalise_unit(text: str) -> str:
    """The unit in its canonical UCUM c/s form (``mg/dl`` → ``mg/dL``, ``mmHg`` → ``mm[Hg]``).

    Raises :class:`~medspace.store.codes.CodeError` naming what is wrong when the text is not a
    UCUM unit and not one of the documented lab spellings.
    """
    unit = text.strip()
    if not unit:
        raise CodeError("not a UCUM unit: the unit is empty")
    if len(unit) > UNIT_MAX_LENGTH:
        raise CodeError(f"not a UCUM unit: {len(unit)} characters, more than {UNIT_MAX_LENGTH}")
    if re.search(r"\s", unit):
        raise CodeError(f"not a UCUM unit: {text!r} contains a space")
    try:
        canonical = _Parser(unit).unit()
    except CodeError as error:
        alias = _lab_spelling(unit)
        if alias == unit:
            raise CodeError(f"not a UCUM unit: {text!r}: {error}") from None
        try:
            canonical = _Parser(alias).unit()
        except CodeError:
            raise CodeError(f"not a UCUM unit: {text!r}: {error}") from None
    if len(canonical) > UNIT_MAX_LENGTH:
        raise CodeError(f"not a UCUM unit: {text!r} is longer than {UNIT_MAX_LENGTH} as UCUM")
    return canonical


def _lab_spelling(unit: str) -> str:
    """The unit with the documented non-UCUM spellings of whole units and exponents replaced."""
    if unit in UNIT_ALIASES:
        return UNIT_ALIASES[unit]
    parts: list[str] = []
    start = 0
    for match in _ANNOTATION.finditer(unit):
        parts.extend((_exponents(unit[start : match.start()]), match.group()))
        start = match.end()
    parts.append(_exponents(unit[start:]))
    return "".join(parts)


def _exponents(text: str) -> str:
    return _POWER_OF_TEN.sub(r"\g<1>10*", text).translate(_SUPERSCRIPTS)


class _Parser:
    """A recursive-descent reader of one UCUM expression that writes it back canonically."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def unit(self) -> str:
        lead = self._take("/")
        result = lead + self._term()
        if self.pos < len(self.text):
            raise CodeError(f"unexpected {self.text[self.pos]!r} at position {self.pos + 1}")
        return result

    def _peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def _take(self, char: str) -> str:
        if self._peek() == char:
            self.pos += 1
            return char
        return ""

    def _term(self) -> str:
        result = self._component()
        while self._peek() in (".", "/"):
            operator = self.text[self.pos]
            self.pos += 1
            result += operator + self._component()
        return result

    def _component(self) -> str:
        char = self._peek()
        if char == "(":
            self.pos += 1
            inner = self._term()
            if not self._take(")"):
                raise CodeError("a '(' is not closed")
            return f"({inner})" + self._annotation()
        if char == "{":
            return self._annotation()
        if not char or char in _STOP:
            where = f"at position {self.pos + 1}" if char else "at the end"
            raise CodeError(f"a unit is missing {where}")
        return self._simple_unit() + self._annotation()

    def _annotation(self) -> str:
        if self._peek() != "{":
            return ""
        end = self.text.find("}", self.pos)
        if end < 0:
            raise CodeError("a '{' is not closed")
        body = self.text[self.pos + 1 : end]
        if "{" in body:
            raise CodeError("annotations do not nest")
        if not _ANNOTATION_TEXT.fullmatch(body):
            raise CodeError(
                f"annotation {{{body}}} may hold letters, digits and %/^.*_-[]()+'# only"
            )
        self.pos = end + 1
        return f"{{{body}}}"

    def _simple_unit(self) -> str:
        start = self.pos
        while self._peek() and self._peek() not in _STOP:
            if self._peek() == "[":
                close = self.text.find("]", self.pos)
                if close < 0:
                    raise CodeError("a '[' is not closed")
                self.pos = close + 1
            else:
                self.pos += 1
        return _simple(self.text[start : self.pos])


def _simple(text: str) -> str:
    """A factor (``10``) or a prefixed atom with its exponent (``mmol``, ``m2``, ``10*-3``)."""
    if text.isdigit() and text.isascii():
        if text.startswith("0"):
            raise CodeError(f"a factor is a whole number from 1 without a leading 0: {text!r}")
        return text
    symbol = text.rstrip("0123456789")
    exponent = text[len(symbol) :]
    if exponent and symbol.endswith(("+", "-")):
        symbol, exponent = symbol[:-1], symbol[-1] + exponent
    if not symbol:
        raise CodeError(f"the exponent {text!r} has no unit")
    if symbol.isdigit() and symbol.isascii():
        raise CodeError(f"the factor {symbol!r} takes no exponent (10*{exponent} is a power)")
    atom = _atom(symbol)
    if not exponent:
        return atom
    if int(exponent) == 0:
        raise CodeError(f"the exponent of {symbol!r} is 0")
    return f"{atom}{int(exponent)}"


def _atom(symbol: str) -> str:
    """UCUM's reading of a symbol (an atom, else a prefix and a metric atom), else a lab's."""
    if symbol in _ATOMS:
        return CANONICAL_ATOMS.get(symbol, symbol)
    splits = [(p, symbol[len(p) :]) for p in _PREFIXES if symbol.startswith(p) and symbol != p]
    for prefix, rest in splits:
        if prefix in PREFIXES and rest in METRIC_ATOMS:
            return prefix + CANONICAL_ATOMS.get(rest, rest)
    if symbol in SYMBOL_ALIASES:
        return SYMBOL_ALIASES[symbol]
    for prefix, rest in splits:
        atom = rest if rest in _ATOMS else SYMBOL_ALIASES.get(rest, "")
        if atom in METRIC_ATOMS:
            return PREFIX_ALIASES.get(prefix, prefix) + CANONICAL_ATOMS.get(atom, atom)
    for _, rest in splits:
        if rest in NON_METRIC_ATOMS:
            raise CodeError(f"{rest!r} is not a metric unit and takes no prefix")
    raise CodeError(f"unknown unit {symbol!r}")
