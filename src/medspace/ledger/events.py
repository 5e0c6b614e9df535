"""Audit events: what the ledger records, and the one byte encoding it records them in.

The log stores each event as RFC 8785 (JCS) canonical JSON, so an event has exactly one byte
string, its digest is stable across implementations, and anyone can re-check an entry with a
standard JSON library. :func:`parse_event` therefore refuses anything that is not already in
canonical form: accepting two spellings of one event would give it two leaf hashes.

Schema, version ``v = 1`` — a flat object, every value a string except ``v``:

========================  =============================================================
``v``                     the integer 1; any other version is refused
``time``                  RFC 3339 UTC, millisecond precision, ``Z``:
                          ``2026-11-23T10:00:00.123Z`` (one spelling per instant, so the
                          text sorts in time order)
``actor``, ``org``        pseudonymous user/participant id and organisation id
``subject``               what the action is about, e.g. ``study:…``, ``task:…``
``role``                  one of :class:`Role`
``action``                one of :class:`Action`
``decision``              one of :class:`Decision`
``id``                    32 lowercase hex characters, for de-duplication
``purpose`` (optional)    short code, e.g. ``research``, ``emergency``, ``care``
``reason`` (optional)     free text, at most 500 characters, screened
``payload_digest`` (opt)  ``sha256:<64 lowercase hex>`` of the document the event is about
``patient`` (optional)    ``psn:<64 lowercase hex>``, a keyed-HMAC patient pseudonym
========================  =============================================================

An optional field is absent, never ``null``. Unknown fields, versions, roles, actions and
decisions are errors: a reader that does not understand an event must not guess (fail closed).

There is deliberately **no nested ``details`` object**. A free-form bag is where personal data
slips onto a log that can never be edited; whatever else an event needs to commit to goes into a
document kept elsewhere and is referenced by ``payload_digest``.

Personal-data screen (DESIGN §3.5, no personal data on the log). Building or parsing an event is
refused with :class:`PersonalDataError`, naming the field but never echoing the value, when:

* a field name, at any depth of the parsed JSON, reads like a personal-data field (name, phone,
  mobile, e-mail, address, ID number, birth date, passport…, in English or Chinese);
* a string value (after NFKC normalisation, so full-width digits count) contains a Chinese
  18-digit resident ID number (area code, a birth date 1800–2099, sequence, check digit or X),
  a 15-digit old-style ID number, a mainland mobile number (``1[3-9]`` and nine digits, optionally
  ``+86``/``0086``/``86``-prefixed and grouped 3-4-4 by spaces or hyphens), an e-mail address, or
  a personal-data label followed by a colon (``姓名：``, ``phone:``) — all delimited by non-digits;
* ``actor``, ``org`` or ``subject`` contain CJK characters: these fields are machine identifiers
  (``[a-z0-9][a-z0-9._:-]{0,127}``), so CJK text there is most likely a person's name.

``time``, ``id``, ``payload_digest`` and ``patient`` are exempt from the value screen once they
match their own strict formats, so the hex of a digest or pseudonym is never mistaken for a phone
number. ``reason`` may hold Chinese text; a bare name inside free text cannot be told apart from
other words, which is why ``reason`` is bounded and meant for short explanations, not records.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Final, TypeVar

import rfc8785

_E = TypeVar("_E", bound=StrEnum)

SCHEMA_VERSION: Final = 1
MAX_EVENT_BYTES: Final = 16 * 1024
MAX_REASON_CHARS: Final = 500


class Role(StrEnum):
    """Who acted. Closed set: an unknown role is an error, never a default."""

    HUB = "hub"
    HOSPITAL = "hospital"
    RESEARCHER = "researcher"
    CLINICIAN = "clinician"
    PATIENT = "patient"
    REGULATOR = "regulator"
    AUDITOR = "auditor"
    MODEL_CONSUMER = "model_consumer"
    OPERATOR = "operator"
    WITNESS = "witness"


class Action(StrEnum):
    """The data space's operations. Add new ones here; nothing else needs to change."""

    STUDY_SUBMITTED = "study.submitted"
    STUDY_APPROVED = "study.approved"
    STUDY_REFUSED = "study.refused"
    STUDY_REVOKED = "study.revoked"
    TASK_DISPATCHED = "task.dispatched"
    TASK_REFUSED = "task.refused"
    RESULT_RELEASED = "result.released"
    EMERGENCY_REQUESTED = "emergency.requested"
    EMERGENCY_RELEASED = "emergency.released"
    CONSENT_GRANTED = "consent.granted"
    CONSENT_REVOKED = "consent.revoked"
    POLICY_PUBLISHED = "policy.published"
    ACCESS_DENIED = "access.denied"
    DATASET_PUBLISHED = "dataset.published"
    PARTICIPANT_ENROLLED = "participant.enrolled"
    CHECKPOINT_COSIGNED = "checkpoint.cosigned"


class Decision(StrEnum):
    """What the enforcement point decided; ``info`` records a fact without a decision."""

    PERMIT = "permit"
    DENY = "deny"
    INFO = "info"


class EventError(ValueError):
    """An event that must not be built, logged or trusted."""


class PersonalDataError(EventError):
    """An event whose content looks like personal data; the message names the field only."""

    def __init__(self, field: str, kind: str) -> None:
        self.field = field
        self.kind = kind
        super().__init__(
            f"field {field!r} looks like personal data ({kind}); "
            "the audit log holds only pseudonyms and digests"
        )


_IDENTIFIER = re.compile(r"[a-z0-9][a-z0-9._:-]{0,127}")
_PURPOSE = re.compile(r"[a-z][a-z0-9_.-]{0,31}")
_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z")
_EVENT_ID = re.compile(r"[0-9a-f]{32}")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_PSEUDONYM = re.compile(r"psn:[0-9a-f]{64}")
_CJK = re.compile(  # CJK radicals, kana, ideographs (BMP and supplementary), Hangul syllables
    r"[\u2e80-\u2fdf\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
    r"\U00020000-\U0003134f]"
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")

_MONTH_DAY = r"(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])"
_VALUE_SCREENS: Final = (
    (
        "resident ID number",
        re.compile(
            rf"(?<!\d)[1-9][0-9]{{5}}(?:18|19|20)[0-9]{{2}}{_MONTH_DAY}[0-9]{{3}}[0-9Xx](?!\d)"
        ),
    ),
    (
        "15-digit resident ID number",
        re.compile(rf"(?<!\d)[1-9][0-9]{{7}}{_MONTH_DAY}[0-9]{{3}}(?!\d)"),
    ),
    (
        "mobile phone number",
        re.compile(r"(?<!\d)(?:(?:\+|00)?86[ -]?)?1[3-9][0-9](?:[ -]?[0-9]{4}){2}(?!\d)"),
    ),
    ("e-mail address", re.compile(r"[\w.%+-]+@[\w-]+(?:\.[\w-]+)+")),
    (
        "personal-data label",
        re.compile(
            r"(?i)(?:\b(?:(?:full |first |last |sur)?name|phone|mobile|tel|e-?mail|address"
            r"|id[ _-]?(?:no|number|card)|birth[ _-]?date|date of birth|dob)"
            r"|姓名|名字|身份证号?|手机号?|电话|住址|地址|邮箱|出生日期)\s*[:：=]"
        ),
    ),
)

_PERSONAL_KEY_WORDS: Final = frozenset(
    {
        "name", "names", "surname", "firstname", "lastname", "fullname", "givenname",
        "phone", "telephone", "tel", "mobile", "cellphone", "email", "mail", "address",
        "addr", "birth", "birthday", "birthdate", "dob", "ssn", "passport",
    }
)  # fmt: skip
_PERSONAL_KEY_PARTS: Final = (
    "idnumber", "idcard", "idno", "nationalid", "dateofbirth", "phonenumber",
    "姓名", "名字", "身份证", "电话", "手机", "地址", "住址", "邮箱", "出生",
)  # fmt: skip

_SCREEN_EXEMPT: Final = {
    "time": _TIME,
    "id": _EVENT_ID,
    "payload_digest": _DIGEST,
    "patient": _PSEUDONYM,
}
_IDENTIFIER_FIELDS: Final = ("actor", "org", "subject")
_REQUIRED: Final = ("v", "time", "actor", "org", "role", "action", "subject", "decision", "id")
_OPTIONAL: Final = ("purpose", "reason", "payload_digest", "patient")


def _personal_value_kind(text: str) -> str | None:
    """The kind of personal data ``text`` seems to contain, or None."""
    normalised = unicodedata.normalize("NFKC", text)
    for kind, pattern in _VALUE_SCREENS:
        if pattern.search(normalised):
            return kind
    return None


def _is_personal_key(key: str) -> bool:
    """Whether a field name reads like a personal-data field (snake, camel or Chinese)."""
    folded = unicodedata.normalize("NFKC", key)
    words = set(re.findall(r"[a-z]+", re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", folded).casefold()))
    compact = re.sub(r"[\W_]", "", folded.casefold())
    return bool(words & _PERSONAL_KEY_WORDS) or any(p in compact for p in _PERSONAL_KEY_PARTS)


def _screen_string(field: str, value: str) -> None:
    kind = _personal_value_kind(value)
    if kind is not None:
        raise PersonalDataError(field, kind)


def _screen_tree(document: Mapping[str, object]) -> None:
    """Screen every key and string of a parsed JSON document, at any depth, before the schema.

    Runs first so that personal data is reported as such even where the schema would also refuse
    it (an unknown ``name`` field, a malformed digest holding a phone number).
    """
    stack: list[tuple[str, object]] = [("", document)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, Mapping):
            for key, value in node.items():
                child = f"{path}.{key}" if path else str(key)
                if _is_personal_key(str(key)):
                    raise PersonalDataError(child, "personal-data field name")
                exempt = _SCREEN_EXEMPT.get(child)
                if isinstance(value, str) and exempt is not None and exempt.fullmatch(value):
                    continue
                stack.append((child, value))
        elif isinstance(node, list):
            stack.extend((f"{path}[{i}]", item) for i, item in enumerate(node))
        elif isinstance(node, str):
            _screen_string(path, node)


def _require_str(field: str, value: object) -> str:
    if type(value) is not str:
        raise EventError(f"field {field!r} must be a string, not {type(value).__name__}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise EventError(f"field {field!r} is not valid Unicode text") from None
    return value


def _require_format(field: str, value: str, pattern: re.Pattern[str], shape: str) -> None:
    if not pattern.fullmatch(value):
        raise EventError(f"field {field!r} must be {shape}")


def _coerce(field: str, value: object, kind: type[_E]) -> _E:
    if isinstance(value, kind):
        return value
    text = value.value if isinstance(value, StrEnum) else _require_str(field, value)
    try:
        return kind(text)
    except ValueError:
        known = ", ".join(member.value for member in kind)
        raise EventError(f"unknown {field} {text!r}; known: {known}") from None


def sha256_digest(data: bytes) -> str:
    """``sha256:<hex>`` of ``data``: the digest spelling events use for ``payload_digest``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def format_time(moment: datetime) -> str:
    """The event spelling of an aware datetime: UTC, milliseconds, ``Z``.

    Naive datetimes are refused because their zone is a guess.
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise EventError("event time must be timezone-aware")
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_id(chars: int = 32) -> str:
    """``chars`` random lowercase hex characters (at most 32).

    Redrawn in the rare case (about one in seven hundred) that its digits happen to look like a
    phone or ID number, so the id can also be embedded in identifier fields such as
    ``subject="task:<id>"`` without tripping the personal-data screen.
    """
    while True:
        candidate = secrets.token_hex(16)[:chars]
        if _personal_value_kind(candidate) is None:
            return candidate


@dataclass(frozen=True, kw_only=True)
class AuditEvent:
    """One audit event, validated and screened on construction (see the module docstring)."""

    time: str
    actor: str
    org: str
    role: Role
    action: Action
    subject: str
    decision: Decision
    id: str
    purpose: str | None = None
    reason: str | None = None
    payload_digest: str | None = None
    patient: str | None = None
    v: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        if type(self.v) is not int or self.v != SCHEMA_VERSION:
            raise EventError(
                f"unknown schema version {self.v!r}; this reader knows v={SCHEMA_VERSION}"
            )
        time_shape = "RFC 3339 UTC with milliseconds and Z, like 2026-11-23T10:00:00.123Z"
        _require_format("time", _require_str("time", self.time), _TIME, time_shape)
        try:
            datetime.strptime(self.time, "%Y-%m-%dT%H:%M:%S.%fZ")
        except ValueError:
            raise EventError(f"field 'time' is not a real date and time: {self.time!r}") from None
        for field in _IDENTIFIER_FIELDS:
            value = _require_str(field, getattr(self, field))
            if _CJK.search(value):
                raise PersonalDataError(field, "CJK text where an identifier belongs")
            _screen_string(field, value)
            _require_format(field, value, _IDENTIFIER, "an identifier [a-z0-9][a-z0-9._:-]{0,127}")
        object.__setattr__(self, "role", _coerce("role", self.role, Role))
        object.__setattr__(self, "action", _coerce("action", self.action, Action))
        object.__setattr__(self, "decision", _coerce("decision", self.decision, Decision))
        _require_format("id", _require_str("id", self.id), _EVENT_ID, "32 lowercase hex characters")
        self._check_optional()

    def _check_optional(self) -> None:
        if self.purpose is not None:
            _screen_string("purpose", _require_str("purpose", self.purpose))
            _require_format("purpose", self.purpose, _PURPOSE, "a short code [a-z][a-z0-9_.-]")
        if self.reason is not None:
            _screen_string("reason", _require_str("reason", self.reason))
            if len(self.reason) > MAX_REASON_CHARS:
                raise EventError(f"field 'reason' is longer than {MAX_REASON_CHARS} characters")
            if _CONTROL.search(self.reason):
                raise EventError("field 'reason' must not contain control characters")
        for field, pattern, shape in (
            ("payload_digest", _DIGEST, "sha256:<64 lowercase hex>"),
            ("patient", _PSEUDONYM, "psn:<64 lowercase hex>"),
        ):
            value = getattr(self, field)
            if value is not None and not pattern.fullmatch(_require_str(field, value)):
                _screen_string(field, value)
                raise EventError(f"field {field!r} must be {shape}")

    def to_dict(self) -> dict[str, object]:
        """The JSON object of this event; absent optional fields are left out, not null."""
        document: dict[str, object] = {
            "v": self.v,
            "time": self.time,
            "actor": self.actor,
            "org": self.org,
            "role": self.role.value,
            "action": self.action.value,
            "subject": self.subject,
            "decision": self.decision.value,
            "id": self.id,
        }
        for field in _OPTIONAL:
            value = getattr(self, field)
            if value is not None:
                document[field] = value
        return document

    def to_bytes(self) -> bytes:
        """The RFC 8785 canonical JSON bytes: exactly what the log stores for this event."""
        return rfc8785.dumps(self.to_dict())

    @property
    def event_digest(self) -> str:
        """``sha256:<hex>`` of :meth:`to_bytes`, for referring to this event from elsewhere."""
        return sha256_digest(self.to_bytes())


def event_from_dict(document: Mapping[str, object]) -> AuditEvent:
    """Build an event from a decoded JSON object, screening it and refusing unknown fields."""
    _screen_tree(document)
    return _from_screened(document)


def _from_screened(document: Mapping[str, object]) -> AuditEvent:
    unknown = sorted(set(document) - set(_REQUIRED) - set(_OPTIONAL))
    if unknown:
        raise EventError(f"unknown field(s): {', '.join(map(repr, unknown))}")
    missing = [field for field in _REQUIRED if field not in document]
    if missing:
        raise EventError(f"missing field(s): {', '.join(map(repr, missing))}")
    nulls = [field for field, value in document.items() if value is None]
    if nulls:
        raise EventError(f"field(s) {', '.join(map(repr, nulls))} must be omitted, not null")
    return AuditEvent(**document)  # type: ignore[arg-type]  # types are checked in __post_init__


class _DuplicateKeyError(Exception):
    def __init__(self, key: str) -> None:
        self.key = key


def _object_without_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
    document: dict[str, object] = {}
    for key, value in pairs:
        if key in document:
            raise _DuplicateKeyError(key)
        document[key] = value
    return document


def _refuse_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def parse_event(data: bytes) -> AuditEvent:
    """Read an event from log bytes, refusing anything that is not exactly its canonical form.

    Checks, in order: size, UTF-8, JSON with no duplicate keys and no trailing data, a top-level
    object, the personal-data screen, byte-exact RFC 8785 canonical form, then the schema.
    """
    if len(data) > MAX_EVENT_BYTES:
        raise EventError(f"event is larger than {MAX_EVENT_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise EventError("event is not valid UTF-8") from None
    try:
        document = json.loads(
            text, object_pairs_hook=_object_without_duplicates, parse_constant=_refuse_constant
        )
    except _DuplicateKeyError as exc:
        raise EventError(f"duplicate key {exc.key!r} in event JSON") from None
    except (ValueError, RecursionError) as exc:
        raise EventError(f"event is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise EventError("event must be a JSON object")
    _screen_tree(document)
    try:
        canonical = rfc8785.dumps(document)
    except (rfc8785.CanonicalizationError, RecursionError):
        canonical = b""
    if canonical != data:
        raise EventError("event is not canonical JSON (RFC 8785)")
    return _from_screened(document)


def new_event(
    *,
    actor: str,
    org: str,
    role: Role | str,
    action: Action | str,
    subject: str,
    decision: Decision | str,
    purpose: str | None = None,
    reason: str | None = None,
    payload_digest: str | None = None,
    patient: str | None = None,
    now: datetime | None = None,
) -> AuditEvent:
    """A new event stamped with the current UTC time (or ``now``) and a fresh random id."""
    return AuditEvent(
        time=format_time(now if now is not None else datetime.now(UTC)),
        actor=actor,
        org=org,
        role=_coerce("role", role, Role),
        action=_coerce("action", action, Action),
        subject=subject,
        decision=_coerce("decision", decision, Decision),
        id=new_id(),
        purpose=purpose,
        reason=reason,
        payload_digest=payload_digest,
        patient=patient,
    )
