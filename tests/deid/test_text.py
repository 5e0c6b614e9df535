"""The free-text recogniser finds identifiers in Chinese and English notes, at their offsets."""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Callable

from hypothesis import given
from hypothesis import strategies as st

from medspace.deid.text import KINDS, Span, find, scrub
from medspace.synth.divisions import DIVISIONS
from medspace.synth.identities import Identity, draw_identity
from medspace.synth.resident_id import IdNumberAllocator, check_character

VALID_ID = "11010119900307451" + check_character("11010119900307451")


def _kinds(text: str) -> list[tuple[str, str]]:
    return [(s.kind, s.text) for s in find(text)]


def test_an_id_number_glued_to_chinese_text_is_found() -> None:
    assert _kinds(f"身份证号{VALID_ID}已核实") == [("ID_NUMBER", VALID_ID)]


def test_an_id_number_with_a_wrong_check_character_is_not_an_id_number() -> None:
    wrong = VALID_ID[:17] + ("0" if VALID_ID[17] != "0" else "1")
    assert all(s.kind != "ID_NUMBER" for s in find(f"身份证号{wrong}"))


def test_an_id_number_with_a_lower_case_x_check_character_is_found() -> None:
    first17 = next(
        f"11010119900307{n:03d}"
        for n in range(1000)
        if check_character(f"11010119900307{n:03d}") == "X"
    )
    assert _kinds(f"证件{first17}x") == [("ID_NUMBER", first17 + "x")]


def test_a_legacy_15_digit_id_number_with_a_plausible_birth_date_is_found() -> None:
    assert _kinds("旧证号110101900307451。") == [("ID_NUMBER", "110101900307451")]


def test_a_15_digit_number_without_a_birth_date_is_not_an_id_number() -> None:
    assert find("编号110101901399451") == []


def test_a_mobile_number_glued_to_chinese_text_is_found() -> None:
    assert _kinds("电话13812345678联系") == [("PHONE", "13812345678")]


def test_spaced_dashed_and_country_code_mobile_numbers_are_found_whole() -> None:
    text = "甲138 1234 5678，乙138-1234-5678，丙+86 13812345678"
    assert [t for _, t in _kinds(text)] == ["138 1234 5678", "138-1234-5678", "+86 13812345678"]


def test_landline_numbers_with_area_codes_are_phones() -> None:
    assert _kinds("座机010-12345678或(0755)1234567") == [
        ("PHONE", "010-12345678"),
        ("PHONE", "(0755)1234567"),
    ]


def test_a_number_longer_than_a_mobile_is_not_a_phone() -> None:
    assert find("流水号138123456789") == []


def test_emails_urls_and_ip_addresses_are_found_without_trailing_punctuation() -> None:
    text = "见https://his.example.cn/p?id=7。邮箱zhang.wei@example.com，主机10.2.3.4."
    assert _kinds(text) == [
        ("URL", "https://his.example.cn/p?id=7"),
        ("EMAIL", "zhang.wei@example.com"),
        ("IP", "10.2.3.4"),
    ]


def test_a_date_inside_chinese_text_is_found_where_backslash_b_fails() -> None:
    text = "于2023-04-18入院"
    assert re.search(r"\b\d{4}-\d{2}-\d{2}\b", text) is None
    assert _kinds(text) == [("DATE", "2023-04-18")]


def test_slashed_chinese_and_day_first_dates_are_found() -> None:
    assert [t for _, t in _kinds("2023/4/18、2023年4月18日、18/04/2023")] == [
        "2023/4/18",
        "2023年4月18日",
        "18/04/2023",
    ]


def test_an_impossible_date_is_not_a_date() -> None:
    assert find("于2023-02-30复查") == []


def test_numbers_after_record_labels_are_mrns() -> None:
    assert _kinds("住院号：ZY20230418，MRN# 00123456") == [
        ("MRN", "ZY20230418"),
        ("MRN", "00123456"),
    ]


def test_a_labelled_mrn_that_looks_like_a_phone_stays_an_mrn() -> None:
    assert _kinds("病历号13812345678") == [("MRN", "13812345678")]


def test_numbers_after_insurance_labels_are_insurance_numbers() -> None:
    assert _kinds("医保卡号:1234567890 insurance no. AB-99887") == [
        ("INSURANCE", "1234567890"),
        ("INSURANCE", "AB-99887"),
    ]


def test_a_chinese_name_after_a_context_word_stops_before_the_next_word() -> None:
    assert _kinds("患者王伟入院") == [("NAME", "王伟")]


def test_a_chinese_name_before_an_honorific_is_found() -> None:
    assert _kinds("请李明先生到诊室") == [("NAME", "李明")]


def test_a_bare_surname_with_an_honorific_is_not_a_name() -> None:
    assert find("王先生已离院") == []


def test_a_surname_character_in_ordinary_text_is_not_a_name() -> None:
    assert find("黄疸三天，高血压病史") == []


def test_a_word_after_a_colon_label_that_is_not_a_person_is_not_a_name() -> None:
    assert find("诊断：高血压；处理：马上复查") == []


def test_a_common_word_starting_with_a_surname_after_patient_is_not_a_name() -> None:
    assert find("患者高热3天") == []


def test_a_compound_surname_name_is_found_without_context() -> None:
    assert _kinds("欧阳娜因胸痛就诊") == [("NAME", "欧阳娜")]


def test_latin_names_after_titles_are_found() -> None:
    assert _kinds("Seen by Dr. Jane Doe; Patient Li Hua stable") == [
        ("NAME", "Jane Doe"),
        ("NAME", "Li Hua"),
    ]


def test_a_chinese_address_runs_from_the_division_to_the_flat() -> None:
    assert _kinds("住址：北京市朝阳区中山路12号3栋1203室。") == [
        ("ADDRESS", "北京市朝阳区中山路12号3栋1203室")
    ]


def test_a_district_name_alone_is_not_an_address() -> None:
    assert find("转诊至朝阳区医院") == []


def test_an_english_street_address_is_found() -> None:
    assert _kinds("Lives at No. 12 Zhongshan Road, Chaoyang District.") == [
        ("ADDRESS", "No. 12 Zhongshan Road, Chaoyang District")
    ]


def test_full_width_digits_are_found_at_their_original_offsets() -> None:
    text = "电话：１３８１２３４５６７８，谢谢"
    (span,) = find(text)
    assert span == Span(3, 14, "PHONE", "１３８１２３４５６７８")
    assert text[span.start : span.end] == span.text


def test_full_width_punctuation_is_read_as_ascii() -> None:
    assert _kinds("座机（０１０）１２３４５６７８") == [("PHONE", "（０１０）１２３４５６７８")]


def test_overlapping_candidates_resolve_to_the_longest_span() -> None:
    # The URL contains a date and an IP address; only the URL is reported.
    assert _kinds("http://10.0.0.1/notes/2023-04-18") == [
        ("URL", "http://10.0.0.1/notes/2023-04-18")
    ]


def test_scrub_replaces_each_identifier_with_its_kind() -> None:
    assert scrub("患者王伟，电话13812345678，于2023-04-18入院") == (
        "患者[NAME]，电话[PHONE]，于[DATE]入院"
    )


@given(st.text())
def test_find_never_raises_and_returns_ordered_spans_within_the_text(text: str) -> None:
    spans = find(text)
    end = 0
    for span in spans:
        assert end <= span.start < span.end <= len(text)
        assert span.text == text[span.start : span.end]
        assert span.kind in KINDS
        end = span.end


@given(st.text(alphabet="0123456789１２３４５６７８９０-/ 年月日患者王伟电话住院号：:XxMr."))
def test_find_never_raises_on_dense_digit_and_label_text(text: str) -> None:
    assert all(0 <= s.start < s.end <= len(text) for s in find(text))


# --- A labelled synthetic corpus --------------------------------------------------------------

_FULL = str.maketrans("0123456789-()", "０１２３４５６７８９－（）")

Piece = str | tuple[str, str]
"""Literal text, or (kind, text) for an identifier the recogniser must find."""


def _phone(rng: random.Random, number: str) -> str:
    style = rng.randrange(5)
    if style == 1:
        return f"{number[:3]} {number[3:7]} {number[7:]}"
    if style == 2:
        return f"{number[:3]}-{number[3:7]}-{number[7:]}"
    if style == 3:
        return "+86 " + number
    return number


def _date(rng: random.Random) -> str:
    y, m, d = rng.randint(2015, 2025), rng.randint(1, 12), rng.randint(1, 28)
    return rng.choice([f"{y}-{m:02d}-{d:02d}", f"{y}/{m}/{d}", f"{y}年{m}月{d}日"])


def _templates(p: Identity, rng: random.Random) -> list[list[Piece]]:
    name, rid, addr = ("NAME", p.name), ("ID_NUMBER", p.resident_id), ("ADDRESS", p.address_text)
    phone, date = ("PHONE", _phone(rng, p.phone)), ("DATE", _date(rng))
    title = "先生" if p.male else "女士"
    return [
        ["患者", name, "，", "男" if p.male else "女", "，身份证号", rid, "，电话", phone, "，住址",
         addr, "。"],
        [name, title + "因胸痛于", date, "入院，联系电话：", phone, "，家住", addr, "。"],
        ["姓名：", name, " 身份证：", rid, " 手机", phone, "联系 现住址", addr],
        ["家属", name, "（身份证", rid, "）陪同就诊，电话", phone, "。"],
        ["Name: ", name, "; resident ID: ", rid, "; mobile ", phone, "; lives at ", addr, "."],
        ["Patient name: ", name, ", admitted ", date, ", tel. ", phone, ", address: ", addr],
        ["主治医生", name, "查房，患者诉头痛，嘱", date, "复查。"],
        ["病人", name, "于", date, "出院，随访电话", phone, "，身份证", rid],
        ["门诊号：", ("MRN", f"MZ{rng.randrange(10**8):08d}"), "，患者", name, "咳嗽两周，手机",
         phone, "，联系人", ("NAME", p.surname + "某某")],
    ]  # fmt: skip


def _render(pieces: list[Piece], full_width: bool) -> tuple[str, set[tuple[int, int, str]]]:
    text, labels = "", set()
    for piece in pieces:
        if isinstance(piece, str):
            text += piece
            continue
        kind, value = piece
        if full_width and kind in {"ID_NUMBER", "PHONE", "DATE"}:
            value = value.translate(_FULL)
        labels.add((len(text), len(text) + len(value), kind))
        text += value
    return text, labels


def _corpus(n: int, seed: int) -> list[tuple[str, set[tuple[int, int, str]]]]:
    rng = random.Random(seed)
    allocator = IdNumberAllocator(owner=0)
    notes = []
    for _ in range(n):
        person = draw_identity(
            rng, allocator, rng.choice(DIVISIONS), rng.randint(1940, 2005), rng.random() < 0.5
        )
        template = rng.choice(_templates(person, rng))
        notes.append(_render(template, full_width=rng.random() < 0.2))
    return notes


def _scores(
    notes: list[tuple[str, set[tuple[int, int, str]]]], recogniser: Callable[[str], list[Span]]
) -> tuple[dict[str, float], float]:
    found_true, labelled = Counter[str](), Counter[str]()
    true_positives = predicted = 0
    for text, labels in notes:
        spans = {(s.start, s.end, s.kind) for s in recogniser(text)}
        for _, _, kind in labels:
            labelled[kind] += 1
        for _, _, kind in labels & spans:
            found_true[kind] += 1
        true_positives += len(labels & spans)
        predicted += len(spans)
    recall = {kind: found_true[kind] / labelled[kind] for kind in labelled}
    return recall, true_positives / predicted


def test_the_synthetic_corpus_is_found_with_high_recall_and_precision() -> None:
    recall, precision = _scores(_corpus(300, seed=11), find)
    assert recall["ID_NUMBER"] >= 0.99
    assert recall["PHONE"] >= 0.99
    assert recall["NAME"] >= 0.95
    assert recall["ADDRESS"] >= 0.95
    assert precision >= 0.9
