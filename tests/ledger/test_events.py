from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
import rfc8785
from hypothesis import given, reject
from hypothesis import strategies as st

from medspace.ledger import events
from medspace.ledger.events import (
    MAX_EVENT_BYTES,
    Action,
    AuditEvent,
    Decision,
    EventError,
    PersonalDataError,
    Role,
    event_from_dict,
    format_time,
    new_event,
    new_id,
    parse_event,
    sha256_digest,
)

FIELDS: dict[str, object] = {
    "v": 1,
    "time": "2026-11-23T10:00:00.123Z",
    "actor": "u:7f3a9c",
    "org": "hospital-a",
    "role": "researcher",
    "action": "study.submitted",
    "subject": "study:0042",
    "decision": "permit",
    "id": "0123456789abcdef0123456789abcdef",
    "purpose": "research",
}

CANONICAL = (
    b'{"action":"study.submitted","actor":"u:7f3a9c","decision":"permit",'
    b'"id":"0123456789abcdef0123456789abcdef","org":"hospital-a","purpose":"research",'
    b'"role":"researcher","subject":"study:0042","time":"2026-11-23T10:00:00.123Z","v":1}'
)


def event(**changes: object) -> AuditEvent:
    return event_from_dict({**FIELDS, **changes})


def canonical(document: dict[str, object]) -> bytes:
    return rfc8785.dumps(document)


# Canonical encoding


def test_known_event_encodes_to_exact_canonical_bytes() -> None:
    assert event().to_bytes() == CANONICAL


def test_event_round_trips_through_its_canonical_bytes() -> None:
    original = event(
        reason="急诊抢救，已获授权 — approved by duty physician",
        payload_digest="sha256:" + "ab" * 32,
        patient="psn:" + "cd" * 32,
    )
    data = original.to_bytes()
    assert parse_event(data) == original
    assert parse_event(data).to_bytes() == data


def test_keys_are_in_rfc8785_order_and_non_ascii_text_is_literal_utf8() -> None:
    data = event(reason="é 急诊", payload_digest="sha256:" + "0" * 64).to_bytes()
    keys = list(json.loads(data))
    assert keys == sorted(keys, key=lambda k: k.encode("utf-16-be"))
    assert keys.index("payload_digest") < keys.index("purpose") < keys.index("reason")
    assert keys[-1] == "v"
    assert "é 急诊".encode() in data
    assert b"\\u" not in data


def test_absent_optional_fields_are_left_out_rather_than_null() -> None:
    document = json.loads(event().to_bytes())
    assert "reason" not in document
    assert "patient" not in document


def test_event_digest_is_the_sha256_of_the_canonical_bytes() -> None:
    original = event()
    assert original.event_digest == sha256_digest(CANONICAL)
    assert original.event_digest.startswith("sha256:")
    assert len(original.event_digest) == len("sha256:") + 64


def test_new_event_stamps_utc_millisecond_time_and_a_fresh_id() -> None:
    moment = datetime(2026, 11, 23, 18, 0, 0, 123456, tzinfo=timezone(timedelta(hours=8)))
    first = new_event(
        actor="u:1",
        org="hub",
        role=Role.HUB,
        action=Action.TASK_DISPATCHED,
        subject="task:1",
        decision=Decision.INFO,
        now=moment,
    )
    second = new_event(
        actor="u:1",
        org="hub",
        role="hub",
        action="task.dispatched",
        subject="task:1",
        decision="info",
        now=moment,
    )
    assert first.time == "2026-11-23T10:00:00.123Z"
    assert first.id != second.id
    assert first.role is Role.HUB and second.action is Action.TASK_DISPATCHED
    assert parse_event(first.to_bytes()) == first


def test_format_time_refuses_naive_datetimes() -> None:
    with pytest.raises(EventError, match="timezone-aware"):
        format_time(datetime(2026, 11, 23, 10, 0))


def test_new_id_redraws_ids_whose_digits_look_like_a_phone_number(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    draws = iter(["a13812345678b" + "0" * 19, "f" * 32])
    monkeypatch.setattr(events.secrets, "token_hex", lambda _: next(draws))
    assert new_id() == "f" * 32


def test_short_new_id_is_screened_as_cut_not_as_drawn(monkeypatch: pytest.MonkeyPatch) -> None:
    draws = iter(["a13812345678" + "9" * 20, "f" * 32])
    monkeypatch.setattr(events.secrets, "token_hex", lambda _: next(draws))
    assert new_id(12) == "f" * 12


# Strict parsing


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(json.dumps(json.loads(CANONICAL), sort_keys=True).encode(), id="whitespace"),
        pytest.param(
            json.dumps(
                dict(reversed(json.loads(CANONICAL).items())), separators=(",", ":")
            ).encode(),
            id="key-order",
        ),
        pytest.param(CANONICAL + b"\n", id="trailing-newline"),
        pytest.param(b" " + CANONICAL, id="leading-space"),
        pytest.param(CANONICAL.replace(b'"v":1', b'"v":1.0'), id="number-form"),
        pytest.param(CANONICAL.replace(b"study:0042", b"study:004\\u0032"), id="escaped-ascii"),
    ],
)
def test_non_canonical_bytes_are_refused(data: bytes) -> None:
    with pytest.raises(EventError, match=r"not canonical JSON \(RFC 8785\)"):
        parse_event(data)


def test_escaped_unicode_that_should_be_literal_is_refused() -> None:
    document = {**FIELDS, "reason": "急诊 é"}
    escaped = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    assert canonical(document) != escaped.encode()
    with pytest.raises(EventError, match="not canonical"):
        parse_event(escaped.encode())


def test_duplicate_keys_are_refused() -> None:
    data = CANONICAL.replace(b'"actor":"u:7f3a9c",', b'"actor":"u:7f3a9c","actor":"u:other",')
    with pytest.raises(EventError, match="duplicate key 'actor'"):
        parse_event(data)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (CANONICAL + b"{}", "not valid JSON"),
        (CANONICAL[:-1], "not valid JSON"),
        (CANONICAL.replace(b"research", b"r\xe9search"), "not valid UTF-8"),
        (b"[" + CANONICAL + b"]", "must be a JSON object"),
        (CANONICAL.replace(b'"v":1', b'"v":NaN'), "not valid JSON"),
        (b'{"v":1,"reason":"' + b"a" * MAX_EVENT_BYTES + b'"}', "larger than 16384 bytes"),
    ],
    ids=["trailing-data", "truncated", "bad-utf8", "array", "nan", "too-large"],
)
def test_malformed_bytes_are_refused(data: bytes, message: str) -> None:
    with pytest.raises(EventError, match=message):
        parse_event(data)


# Schema


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"v": 2}, "unknown schema version 2"),
        ({"v": True}, "unknown schema version True"),
        ({"v": "1"}, "unknown schema version '1'"),
        ({"role": "admin"}, "unknown role 'admin'"),
        ({"action": "study.deleted"}, "unknown action 'study.deleted'"),
        ({"decision": "maybe"}, "unknown decision 'maybe'"),
        ({"colour": "blue"}, "unknown field"),
        ({"reason": None}, "must be omitted, not null"),
        ({"time": "2026-11-23T10:00:00Z"}, "field 'time' must be RFC 3339"),
        ({"time": "2026-11-23T18:00:00.123+08:00"}, "field 'time' must be RFC 3339"),
        ({"time": "2026-02-30T10:00:00.123Z"}, "not a real date"),
        ({"actor": "User-1"}, "field 'actor' must be an identifier"),
        ({"subject": ""}, "field 'subject' must be an identifier"),
        ({"org": 7}, "field 'org' must be a string"),
        ({"id": "0123"}, "field 'id' must be 32 lowercase hex"),
        ({"purpose": "Research"}, "field 'purpose' must be a short code"),
        ({"payload_digest": "sha256:" + "AB" * 32}, "must be sha256:<64 lowercase hex>"),
        ({"patient": "psn:" + "ab" * 31}, "must be psn:<64 lowercase hex>"),
        ({"reason": "x" * 501}, "longer than 500 characters"),
        ({"reason": "line one\nline two"}, "control characters"),
    ],
)
def test_schema_violations_are_refused(changes: dict[str, object], message: str) -> None:
    with pytest.raises(EventError, match=message):
        event(**changes)
    with pytest.raises(EventError, match=message):
        parse_event(canonical({**FIELDS, **changes}))


def test_missing_required_field_is_refused() -> None:
    document = {k: v for k, v in FIELDS.items() if k != "decision"}
    with pytest.raises(EventError, match=r"missing field.*'decision'"):
        parse_event(canonical(document))


def test_every_listed_action_is_known() -> None:
    listed = """study.submitted study.approved study.refused study.revoked task.dispatched
    task.refused
    result.released emergency.requested emergency.released consent.granted consent.revoked
    policy.published access.denied dataset.published participant.enrolled checkpoint.cosigned"""
    assert {a.value for a in Action} == set(listed.split())
    for action in Action:
        assert parse_event(event(action=action.value).to_bytes()).action is action


# Personal-data screen

PERSONAL_VALUES = [
    pytest.param("patient 11010519491231002X admitted", "resident ID number", id="id-18-X"),
    pytest.param("id 11010519491231002x", "resident ID number", id="id-18-lowercase-x"),
    pytest.param("440308199901011234", "resident ID number", id="id-18-digits"),
    pytest.param("身份证110105194912310021号", "resident ID number", id="id-18-in-chinese"),
    pytest.param("old card 110105491231002", "15-digit resident ID number", id="id-15"),
    pytest.param("call 13812345678", "mobile phone number", id="mobile"),
    pytest.param("+8613912345678", "mobile phone number", id="mobile-plus86"),
    pytest.param("8615012345678", "mobile phone number", id="mobile-86"),
    pytest.param("+86 138 1234 5678", "mobile phone number", id="mobile-grouped"),
    pytest.param("tel 138-1234-5678.", "mobile phone number", id="mobile-hyphens"),
    pytest.param("１３８１２３４５６７８", "mobile phone number", id="mobile-fullwidth"),
    pytest.param("contact zhang.san@example.com", "e-mail address", id="email"),
    pytest.param("联系 张三@医院.中国", "e-mail address", id="email-idn"),
    pytest.param("姓名：张三", "personal-data label", id="label-chinese"),
    pytest.param("patient name: Zhang San", "personal-data label", id="label-english"),
]


@pytest.mark.parametrize(("text", "kind"), PERSONAL_VALUES)
def test_personal_data_in_reason_is_refused_without_echoing_it(text: str, kind: str) -> None:
    with pytest.raises(PersonalDataError) as caught:
        event(reason=text)
    assert caught.value.field == "reason"
    assert caught.value.kind == kind
    assert text not in str(caught.value)
    with pytest.raises(PersonalDataError, match="'reason'"):
        parse_event(canonical({**FIELDS, "reason": text}))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("subject", "patient:13812345678"),
        ("actor", "u:11010519491231002x"),
        ("org", "h-110105491231002"),
        ("purpose", "call13812345678"),
        ("actor", "张三"),
        ("subject", "patient:李四"),
        ("org", "김철수"),
    ],
)
def test_personal_data_in_identifier_fields_is_refused(field: str, value: str) -> None:
    with pytest.raises(PersonalDataError) as caught:
        event(**{field: value})
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("document", "path"),
    [
        ({"name": "x"}, "name"),
        ({"patientName": "x"}, "patientName"),
        ({"Full_Name": "x"}, "Full_Name"),
        ({"phone": "x"}, "phone"),
        ({"mobile_no": "x"}, "mobile_no"),
        ({"id_number": "x"}, "id_number"),
        ({"IDCard": "x"}, "IDCard"),
        ({"address": "x"}, "address"),
        ({"Email": "x"}, "Email"),
        ({"birth_date": "x"}, "birth_date"),
        ({"dateOfBirth": "x"}, "dateOfBirth"),
        ({"手机号": "x"}, "手机号"),
        ({"details": {"contact": {"email": "x"}}}, "details.contact.email"),
        ({"details": [{"PHONE": "x"}]}, "details[0].PHONE"),
        ({"details": ["13812345678"]}, "details[0]"),
    ],
)
def test_personal_data_field_names_are_refused_at_any_depth(
    document: dict[str, object], path: str
) -> None:
    with pytest.raises(PersonalDataError) as caught:
        parse_event(canonical({**FIELDS, **document}))
    assert caught.value.field == path
    with pytest.raises(PersonalDataError):
        event_from_dict({**FIELDS, **document})


def test_malformed_digest_holding_a_phone_number_is_reported_as_personal_data() -> None:
    with pytest.raises(PersonalDataError, match="'payload_digest'"):
        event(payload_digest="sha256:13812345678")


def test_digests_pseudonyms_and_ids_full_of_digits_are_accepted() -> None:
    digest = "sha256:" + "110105194912310021a13812345678b".ljust(64, "0")
    pseudonym = "psn:" + "8613812345678c110105491231002d".ljust(64, "1")
    event_id = "13812345678e".ljust(32, "2")
    for lookalike in (digest, pseudonym, event_id):
        with pytest.raises(PersonalDataError):
            event(reason=lookalike)
    original = event(payload_digest=digest, patient=pseudonym, id=event_id)
    assert parse_event(original.to_bytes()) == original


@pytest.mark.parametrize(
    "text",
    [
        "急诊抢救，已获授权",
        "approved 3 of 5 sites; batch 20261123; protocol v2.1",
        "ticket 138123456789",  # twelve digits: no phone number
        "ref 1381234567",  # ten digits: no phone number
        "cohort of 1100000 patients",
        "username: not a personal label",
    ],
)
def test_ordinary_text_and_numbers_are_accepted(text: str) -> None:
    assert event(reason=text).reason == text


# Properties


def hex_text(size: int) -> st.SearchStrategy[str]:
    return st.text("0123456789abcdef", min_size=size, max_size=size)


identifiers = st.from_regex(r"[a-z0-9][a-z0-9._:-]{0,127}", fullmatch=True)


@st.composite
def valid_events(draw: st.DrawFn) -> AuditEvent:
    moments = st.datetimes(datetime(2000, 1, 1), datetime(2199, 12, 31), timezones=st.just(UTC))
    fields = {
        "time": format_time(draw(moments)),
        "actor": draw(identifiers),
        "org": draw(identifiers),
        "subject": draw(identifiers),
        "role": draw(st.sampled_from(Role)),
        "action": draw(st.sampled_from(Action)),
        "decision": draw(st.sampled_from(Decision)),
        "id": draw(hex_text(32)),
        "purpose": draw(st.none() | st.from_regex(r"[a-z][a-z0-9_.-]{0,31}", fullmatch=True)),
        "reason": draw(
            st.none() | st.text(st.characters(exclude_categories=("Cc", "Cs")), max_size=500)
        ),
        "payload_digest": draw(st.none() | hex_text(64).map("sha256:".__add__)),
        "patient": draw(st.none() | hex_text(64).map("psn:".__add__)),
    }
    try:
        return AuditEvent(**fields)
    except PersonalDataError:
        reject()


@given(valid_events())
def test_any_valid_event_round_trips_byte_exactly(original: AuditEvent) -> None:
    data = original.to_bytes()
    assert len(data) <= MAX_EVENT_BYTES
    assert rfc8785.dumps(json.loads(data)) == data
    parsed = parse_event(data)
    assert parsed == original
    assert parsed.to_bytes() == data


@given(valid_events())
def test_any_valid_event_pretty_printed_is_refused(original: AuditEvent) -> None:
    pretty = json.dumps(original.to_dict(), indent=1, ensure_ascii=False).encode()
    with pytest.raises(EventError, match="not canonical"):
        parse_event(pretty)
