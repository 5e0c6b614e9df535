"""The free-text recogniser finds identifiers in Chinese and English notes, at their offsets."""

from __future__ import annotations

import re
import time
from functools import cache

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medspace.deid.text import KINDS, Span, find, scrub
from medspace.synth.notes import Scores, labelled_notes, score
from medspace.synth.resident_id import check_character

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


_DENSE = "0123456789１２３４５６７８９０-/ 年月日患者王伟电话住院号：:XxMr.北京市中山路栋室诉"


@given(st.text(alphabet=_DENSE))
def test_find_never_raises_on_dense_digit_and_label_text(text: str) -> None:
    assert all(0 <= s.start < s.end <= len(text) for s in find(text))


def test_an_id_number_grouped_by_spaces_or_dashes_is_found_whole() -> None:
    grouped = f"{VALID_ID[:6]} {VALID_ID[6:14]} {VALID_ID[14:]}"
    dashed = grouped.replace(" ", "-")
    assert _kinds(f"身份证{grouped}，{dashed}") == [("ID_NUMBER", grouped), ("ID_NUMBER", dashed)]


def test_a_grouped_number_with_a_wrong_check_character_is_not_an_id_number() -> None:
    wrong = VALID_ID[:17] + ("0" if VALID_ID[17] != "0" else "1")
    assert find(f"{wrong[:6]} {wrong[6:14]} {wrong[14:]}") == []


def test_spaced_and_international_landlines_are_phones() -> None:
    assert [t for _, t in _kinds("科室0571 87654321，或+86-571-87654321转总机")] == [
        "0571 87654321",
        "+86-571-87654321",
    ]


def test_a_mobile_number_spaced_with_ideographic_spaces_is_found() -> None:
    assert _kinds("电话138\u30001234\u30005678。") == [("PHONE", "138\u30001234\u30005678")]


def test_english_dates_with_month_names_and_ordinals_are_found() -> None:
    text = "Admitted 18 Apr 2023, seen April 19, 2023, discharged 21st April 2023."
    assert [t for _, t in _kinds(text)] == ["18 Apr 2023", "April 19, 2023", "21st April 2023"]


def test_a_chinese_date_without_its_year_is_found() -> None:
    assert _kinds("拟于4月18日行冠脉造影，3个月后复查") == [("DATE", "4月18日")]


def test_a_date_written_in_chinese_numerals_is_found() -> None:
    assert _kinds("医师签名：  二〇二三年四月十八日") == [("DATE", "二〇二三年四月十八日")]


def test_an_impossible_date_in_chinese_numerals_is_not_a_date() -> None:
    assert find("二〇二三年二月三十日") == []


def test_a_chinese_name_at_the_start_of_a_clause_with_the_person_as_subject_is_found() -> None:
    assert _kinds("诊疗经过：王建国诉头痛3天。") == [("NAME", "王建国")]
    assert _kinds("李娜，女，34岁，因发热就诊。") == [("NAME", "李娜")]


def test_a_clinical_word_at_the_start_of_a_clause_is_not_a_name() -> None:
    assert find("高钾血症因补液后纠正。叶酸片0.4mg qd。林格液500ml静滴。") == []


def test_a_chinese_name_that_is_told_something_is_found() -> None:
    assert _kinds("已向张伟交代病情，签字同意。") == [("NAME", "张伟")]


def test_a_one_character_given_name_stops_before_a_word_that_describes_the_patient() -> None:
    assert _kinds("患者李娜精神可，王伟既往体健") == [("NAME", "李娜")]
    assert _kinds("患者王伟既往体健") == [("NAME", "王伟")]


def test_a_doctor_s_name_before_a_rank_stops_before_the_rank() -> None:
    assert _kinds("陈勇副主任医师查房") == [("NAME", "陈勇")]


def test_a_relative_s_name_after_the_relation_is_found() -> None:
    assert _kinds("母亲马思斌陪护。其女谢国子签字") == [("NAME", "马思斌"), ("NAME", "谢国子")]


def test_latin_names_with_apostrophes_capitals_and_hyphens_are_found_whole() -> None:
    text = "Nurse: Maria O'Brien; Patient: WANG Jianguo; Dr. Liang Jian-Guo"
    assert [t for _, t in _kinds(text)] == ["Maria O'Brien", "WANG Jianguo", "Liang Jian-Guo"]


def test_a_possessive_is_not_part_of_a_latin_name() -> None:
    assert _kinds("Discussed with Dr. Chen's team.") == [("NAME", "Chen")]


def test_a_latin_name_signed_with_a_degree_or_introduced_by_age_is_found() -> None:
    assert _kinds("Yours sincerely,\n\nGuo Haiyan, MD") == [("NAME", "Guo Haiyan")]
    assert _kinds("Zhang Wei is a 65-year-old man.") == [("NAME", "Zhang Wei")]


def test_a_field_label_or_a_role_after_a_title_is_not_a_name() -> None:
    assert find("Patient Education: low-salt diet. Nurse Practitioner review.") == []


def test_a_chinese_street_address_after_a_label_is_found_without_its_district() -> None:
    assert _kinds("现住址中山路12号3栋1203室，电话") == [("ADDRESS", "中山路12号3栋1203室")]


def test_a_chinese_address_through_a_compound_and_dashed_flat_numbers_is_found_whole() -> None:
    assert _kinds("家住杭州市西湖区文化路88号金都花园3幢2单元501室。") == [
        ("ADDRESS", "杭州市西湖区文化路88号金都花园3幢2单元501室")
    ]
    assert _kinds("家住朝阳区中山路12号3-2-501。") == [("ADDRESS", "朝阳区中山路12号3-2-501")]


def test_an_english_address_with_flat_building_and_province_is_found_whole() -> None:
    address = "Room 501, Building 3, No. 66 Wenhua Road, Yanta District, Xi'an, Shaanxi, China"
    assert _kinds(f"Address: {address}.") == [("ADDRESS", address)]


def test_a_host_name_with_a_path_is_a_url_but_an_e_mail_domain_is_not() -> None:
    assert _kinds("见pacs.zju.edu.cn/viewer?id=12，邮箱li@zju.edu.cn") == [
        ("URL", "pacs.zju.edu.cn/viewer?id=12"),
        ("EMAIL", "li@zju.edu.cn"),
    ]


def test_an_ip_address_with_a_port_is_found_without_the_port() -> None:
    assert _kinds("Workstation 172.22.93.241:3389.") == [("IP", "172.22.93.241")]


def test_an_insurance_id_label_is_not_read_as_an_mrn_label() -> None:
    assert _kinds("Insurance ID: AB-310426") == [("INSURANCE", "AB-310426")]


def test_an_insurance_number_printed_in_groups_of_four_is_found_whole() -> None:
    assert _kinds("医保号3301 2345 6789。") == [("INSURANCE", "3301 2345 6789")]


def test_a_number_after_id_inside_an_english_word_is_not_an_mrn() -> None:
    assert find("fluid 1000 ml, lipid 4500") == []


def test_long_runs_of_division_road_and_name_characters_are_scanned_in_linear_time() -> None:
    started = time.perf_counter()
    for text in ("北京市" * 20_000, "住址" + "中山路" * 20_000, "王" * 20_000, "1-" * 20_000):
        find(text)
    assert time.perf_counter() - started < 5


# --- The labelled corpus of synthetic notes ----------------------------------------------------

_RECALL_FLOORS = {
    "ID_NUMBER": 0.99, "PHONE": 0.99, "NAME": 0.95, "ADDRESS": 0.95, "DATE": 0.95, "MRN": 0.95,
    "INSURANCE": 0.95, "EMAIL": 0.95, "URL": 0.95, "IP": 0.95,
}  # fmt: skip


@cache
def _corpus_scores() -> Scores:
    return score(labelled_notes(600, seed=11), find)


@pytest.mark.parametrize("kind", sorted(_RECALL_FLOORS))
def test_each_kind_in_the_synthetic_notes_is_found_with_high_recall_and_precision(
    kind: str,
) -> None:
    scores = _corpus_scores()
    assert scores.labelled[kind] >= 50
    assert scores.recall(kind) >= _RECALL_FLOORS[kind]
    assert scores.precision(kind) >= 0.9


def test_the_synthetic_notes_are_found_with_high_overall_precision() -> None:
    assert _corpus_scores().overall_precision >= 0.9
