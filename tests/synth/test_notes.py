"""Labelled synthetic notes: every label is an identifier of its kind, at its exact offsets."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import cache
from itertools import pairwise

from medspace.synth.notes import LANGUAGES, LabelledNote, labelled_notes, score
from medspace.synth.resident_id import parse_resident_id

SEED = 3
_ASCII = {c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}
_CJK = re.compile(r"[\u4e00-\u9fff]")
_NUMBER_KINDS = {"ID_NUMBER", "PHONE", "MRN", "INSURANCE", "IP"}


@cache
def _notes() -> tuple[LabelledNote, ...]:
    return tuple(labelled_notes(400, SEED))


def _labelled(kind: str) -> list[tuple[LabelledNote, int, int]]:
    return [(n, s, e) for n in _notes() for s, e, k in sorted(n.labels) if k == kind]


def _ascii(text: str) -> str:
    return text.translate(_ASCII)


def _is_id_number(value: str) -> bool:
    chars = re.sub(r"[ -]", "", value).upper()
    if len(chars) == 15:
        return chars.isdigit()
    try:
        parse_resident_id(chars)
    except ValueError:
        return False
    return True


def _is_phone(value: str) -> bool:
    return (
        bool(re.fullmatch(r"[+(]?\d[\d ()-]*", value)) and 7 <= sum(map(str.isdigit, value)) <= 16
    )


_OCTET = r"(?:25[0-5]|2[0-4]\d|1?\d?\d)"
_SHAPE_PATTERNS = {
    "DATE": r"\d{4}.*|\d{1,2}月\d{1,2}日|[〇一二三四五六七八九]{4}年.*|.*\d{4}",
    "NAME": r"[\u4e00-\u9fff]{2,4}|[A-Z][A-Za-z']+(?:[ -][A-Z][A-Za-z']+)*",
    "ADDRESS": r"(?=.*\d)(?=.*(?:路|街|Road|Street)).*",
    "EMAIL": r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+",
    "URL": r"\S+/\S*",
    "IP": rf"{_OCTET}(?:\.{_OCTET}){{3}}",
    "MRN": r"[A-Za-z0-9][A-Za-z0-9-]{2,}[0-9]",
    "INSURANCE": r"[A-Za-z0-9][A-Za-z0-9 -]{2,}[0-9]",
}


def _has_shape(kind: str, value: str) -> bool:
    if kind == "ID_NUMBER":
        return _is_id_number(value)
    if kind == "PHONE":
        return _is_phone(value)
    return re.fullmatch(_SHAPE_PATTERNS[kind], value) is not None


def test_every_label_covers_exactly_one_identifier_of_its_kind() -> None:
    for note in _notes():
        for start, end, kind in note.labels:
            value = _ascii(note.text[start:end])
            assert _has_shape(kind, value), (kind, value, note.text)


def test_labels_never_overlap_nor_cut_a_number_or_a_word() -> None:
    for note in _notes():
        text = _ascii(note.text)
        ordered = sorted(note.labels)
        for (_, end, _), (start, _, _) in pairwise(ordered):
            assert end <= start
        for start, end, kind in ordered:
            assert 0 <= start < end <= len(text)
            assert text[start:end] == text[start:end].strip()
            before, after = text[start - 1 : start], text[end : end + 1]
            if kind in _NUMBER_KINDS:
                assert not before.isdigit() and not after.isdigit(), text[start:end]
            if kind == "NAME" and text[start].isascii():
                assert not before.isalpha() and not after.isalpha(), text[start:end]


def test_the_same_seed_writes_the_same_notes_and_another_seed_other_notes() -> None:
    assert labelled_notes(50, 9) == labelled_notes(50, 9)
    assert [n.text for n in labelled_notes(50, 9)] != [n.text for n in labelled_notes(50, 10)]


def test_chinese_notes_are_in_chinese_and_english_notes_hold_no_chinese() -> None:
    languages = {n.language for n in _notes()}
    assert languages == set(LANGUAGES)
    for note in _notes():
        assert bool(_CJK.search(note.text)) == (note.language == "zh")


def test_every_kind_of_identifier_is_labelled_in_both_languages_where_it_is_written() -> None:
    every = {"ID_NUMBER", "PHONE", "NAME", "ADDRESS", "DATE", "MRN", "INSURANCE", "EMAIL"}
    every |= {"URL", "IP"}
    for language in LANGUAGES:
        kinds = {kind for n in _notes() if n.language == language for *_, kind in n.labels}
        assert kinds == every, language


def test_the_corpus_holds_full_width_spaced_dashed_and_legacy_numbers() -> None:
    ids = [n.text[s:e] for n, s, e in _labelled("ID_NUMBER")]
    phones = [n.text[s:e] for n, s, e in _labelled("PHONE")]
    assert any(re.fullmatch(r"\d{15}", v) for v in ids)
    assert any(re.fullmatch(r"\d{6} \d{8} \d{3}[\dXx]", v) for v in ids)
    assert any(re.fullmatch(r"\d{6}-\d{8}-\d{3}[\dXx]", v) for v in ids)
    assert any(re.search(r"[０-９]", v) for v in ids + phones)
    assert any(re.fullmatch(r"1\d\d[ \u3000]\d{4}[ \u3000]\d{4}", v) for v in phones)
    assert any(re.fullmatch(r"1\d\d-\d{4}-\d{4}", v) for v in phones)
    assert any(re.fullmatch(r"\+86-\d{2,3}-\d{7,8}", v) for v in phones)
    assert any(re.fullmatch(r"0\d{2,3}-\d{7,8}", v) for v in phones)


def test_identifiers_are_glued_to_chinese_text_on_both_sides() -> None:
    for kind in ("ID_NUMBER", "PHONE", "DATE"):
        assert any(
            _CJK.match(n.text, s - 1) and _CJK.match(n.text, e) for n, s, e in _labelled(kind)
        ), kind


def test_some_chinese_names_have_no_context_word_before_them() -> None:
    context = re.compile(
        r"(?:患者|病人|姓名|家属|医师|签名|记录者|护士|联系人|其子|其女|配偶)\s*[:：]?\s*$"
    )
    bare = [
        n.text[s:e]
        for n, s, e in _labelled("NAME")
        if _CJK.match(n.text, s) and not context.search(n.text[max(0, s - 6) : s])
    ]
    assert len(bare) >= 20


def test_notes_hold_numbers_that_are_not_identifiers() -> None:
    chinese = "".join(n.text for n in _notes() if n.language == "zh")
    english = "".join(n.text for n in _notes() if n.language == "en")
    for look_alike in ("×10^9/L", "I21.9", "床", "mmHg", "8-10-8U", "批号C20230418", "叶酸"):
        assert look_alike in chinese
    for look_alike in ("x10^9/L", "I21.9", "Bed 12", "8-10-8 units", "Patient Education:"):
        assert look_alike in english


@dataclass(frozen=True)
class _Found:
    start: int
    end: int
    kind: str


def test_a_recogniser_that_finds_every_label_scores_one() -> None:
    truth = {n.text: n.labels for n in _notes()}
    scores = score(_notes(), lambda text: [_Found(*label) for label in truth[text]])
    assert scores.overall_recall == scores.overall_precision == 1.0
    assert all(scores.recall(k) == scores.precision(k) == 1.0 for k in scores.kinds)


def test_a_span_one_character_short_is_both_a_miss_and_a_false_positive() -> None:
    note = LabelledNote("电话13812345678", frozenset({(2, 13, "PHONE")}), "zh")
    scores = score([note], lambda _: [_Found(2, 12, "PHONE")])
    assert scores.recall("PHONE") == 0.0
    assert scores.precision("PHONE") == 0.0


def test_a_span_of_the_wrong_kind_counts_against_the_kind_it_claims() -> None:
    note = LabelledNote("病历号13812345678", frozenset({(3, 14, "MRN")}), "zh")
    scores = score([note], lambda _: [_Found(3, 14, "PHONE")])
    assert scores.recall("MRN") == 0.0
    assert scores.precision("PHONE") == 0.0
    assert math.isnan(scores.precision("MRN"))


def test_a_recogniser_that_finds_nothing_has_no_precision_to_report() -> None:
    scores = score(_notes()[:10], lambda _: [])
    assert scores.overall_recall == 0.0
    assert math.isnan(scores.overall_precision)
