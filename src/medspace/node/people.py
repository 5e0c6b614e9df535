"""The people of one hospital who use its node, and what each role lets them do.

Everyone who calls the node's API is a person here: a pseudonymous id (a staff number, a
patient's account id — never a name), one role and a bearer token. The token is 32 random
bytes shown once when the account is made; the node keeps only its SHA-256, so a copy of
``node.db`` lets no one in, and a token is checked by looking its hash up, which takes the same
time whichever part of a guess is right. Removing a person revokes their token at once; the row
stays, so the table is the history of who could do what and when.

Roles:

``admin``      the hospital's administrator: decides and revokes studies, manages people,
               reads everything
``desk``       front-desk staff: records and lists any patient's consent
``clinician``  reserved for emergency look-ups: no consent writing, no study decisions
``patient``    their own consent only: list, grant, revoke
``auditor``    reads the journal and the study list, changes nothing

What a role may do is data (:data:`PERMISSIONS`), with one rule beside it: a patient acts on
their own records only, the ``person_id`` found for them when their account was made. Anything
the table does not name is refused (fail closed).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from medspace.ledger import events
from medspace.sqldb import create_engine, read_only, sqlite_url
from medspace.wire.messages import ID

__all__ = [
    "LEDGER_ROLES",
    "OWN_RECORDS_ONLY",
    "PERMISSIONS",
    "RESERVED_IDS",
    "TOKEN_PREFIX",
    "People",
    "PeopleError",
    "Permission",
    "Person",
    "Role",
    "TokenHeld",
    "Unauthenticated",
    "allowed",
    "check_id",
    "token_hash",
]


class Role(StrEnum):
    """What a person is to the hospital."""

    ADMIN = "admin"
    DESK = "desk"
    CLINICIAN = "clinician"
    PATIENT = "patient"
    AUDITOR = "auditor"


class Permission(StrEnum):
    """Something the node's API does on a person's behalf."""

    LIST_STUDIES = "studies.list"
    DECIDE_STUDIES = "studies.decide"
    READ_CONSENT = "consent.read"
    WRITE_CONSENT = "consent.write"
    READ_JOURNAL = "journal.read"
    MANAGE_PEOPLE = "people.manage"


PERMISSIONS: Mapping[Permission, frozenset[Role]] = MappingProxyType({
    Permission.LIST_STUDIES: frozenset({Role.ADMIN, Role.AUDITOR}),
    Permission.DECIDE_STUDIES: frozenset({Role.ADMIN}),
    Permission.READ_CONSENT: frozenset({Role.ADMIN, Role.DESK, Role.PATIENT}),
    Permission.WRITE_CONSENT: frozenset({Role.ADMIN, Role.DESK, Role.PATIENT}),
    Permission.READ_JOURNAL: frozenset({Role.ADMIN, Role.AUDITOR}),
    Permission.MANAGE_PEOPLE: frozenset({Role.ADMIN}),
})
"""Which roles hold each permission; a permission not listed is held by no one."""

OWN_RECORDS_ONLY: frozenset[Role] = frozenset({Role.PATIENT})
"""Roles whose permissions reach one patient only: the person themselves."""

LEDGER_ROLES: Mapping[Role, events.Role] = MappingProxyType({
    Role.ADMIN: events.Role.HOSPITAL,
    Role.DESK: events.Role.HOSPITAL,
    Role.CLINICIAN: events.Role.CLINICIAN,
    Role.PATIENT: events.Role.PATIENT,
    Role.AUDITOR: events.Role.AUDITOR,
})
"""The audit log's name for each role, for the events the node journals about a person."""

RESERVED_IDS = frozenset({"unknown", "auto-approval"})
"""Ids the node writes itself: for a caller it cannot identify, for its standing rule."""

TOKEN_PREFIX = "msn_"
_TOKEN = re.compile(r"msn_[A-Za-z0-9_-]{43}")

metadata = sa.MetaData()
people_table = sa.Table(
    "node_people",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(128), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("person_id", sa.String(128), nullable=True),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.Column("revoked_ms", sa.BigInteger, nullable=True),
    sa.Index("node_people_active", "id", unique=True,
             sqlite_where=sa.text("revoked_ms IS NULL"),
             postgresql_where=sa.text("revoked_ms IS NULL")),
)


class PeopleError(ValueError):
    """An account that cannot be made or removed; the message says why and what to do."""


class TokenHeld(PeopleError):
    """The id already holds a live token; remove it before issuing another."""


class Unauthenticated(PermissionError):
    """No person holds this token, or theirs was revoked."""


@dataclass(frozen=True)
class Person:
    """Someone who may call the node's API."""

    id: str
    role: Role
    person_id: str | None
    """For a patient, the store's ``person_id`` they are; None for staff."""
    created_ms: int
    revoked_ms: int | None = None

    @property
    def ledger_role(self) -> events.Role:
        """The role the audit log records for this person."""
        return LEDGER_ROLES[self.role]


def allowed(person: Person, permission: Permission | str,
            patient_person_id: str | None = None) -> bool:
    """Whether ``person`` may do ``permission`` (to the patient ``patient_person_id``, if it
    concerns one). A revoked person, an unknown permission or an unknown role may do nothing; a
    patient may act only when the patient concerned is named and is themselves."""
    try:
        wanted = Permission(permission)
        role = Role(person.role)
    except ValueError:
        return False
    if person.revoked_ms is not None or role not in PERMISSIONS.get(wanted, frozenset()):
        return False
    if role in OWN_RECORDS_ONLY:
        return (person.person_id is not None and patient_person_id is not None
                and hmac.compare_digest(person.person_id, patient_person_id))
    return True


def token_hash(token: str) -> str:
    """What the node keeps of a token: the hex SHA-256 of its text."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _person(row: sa.Row) -> Person:
    return Person(row.id, Role(row.role), row.person_id, row.created_ms, row.revoked_ms)


def check_id(person: str) -> None:
    """Refuse an id the node could not write on its journal, or that reads like a name or a
    phone or ID number: an id names a person on the audit log, which holds no personal data."""
    if re.fullmatch(ID, person) is None:
        raise PeopleError(f"{person!r} is not an id: use lower-case letters, digits, '.', '_', "
                          "':' and '-' (a staff or account number, never a name)")
    if person in RESERVED_IDS:
        raise PeopleError(f"{person!r} is reserved for the node itself; choose another id")
    try:
        events.new_event(actor=person, org="node", role=events.Role.HOSPITAL,
                         action=events.Action.ACCESS_DENIED, subject="people",
                         decision=events.Decision.INFO)
    except events.EventError as exc:
        raise PeopleError(f"{person!r} cannot name a person on the audit log ({exc}); choose "
                          "an id that is not a phone or ID number") from None


class People:
    """The hospital's people and their tokens, in the node's ``node.db``."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._reader = read_only(engine)
        metadata.create_all(engine)

    @classmethod
    def open(cls, root: Path) -> People:
        """The people of the node in folder ``root``."""
        return cls(create_engine(sqlite_url(root / "node.db")))

    def add_person(self, person: str, role: Role | str, *, patient: str | None = None,
                   now: dt.datetime | None = None) -> str:
        """Make an account and return its token, the only time it exists outside the caller.

        ``patient`` is the store's ``person_id`` of a patient account, and only of one. Raises
        :class:`PeopleError` for an id that is not a plain pseudonymous id, an unknown role, a
        patient without a ``person_id`` (or staff with one), or an id that already holds a
        live token.
        """
        check_id(person)
        try:
            chosen = Role(role)
        except ValueError:
            raise PeopleError(f"unknown role {role!r}; roles are "
                              f"{', '.join(r.value for r in Role)}") from None
        if (chosen is Role.PATIENT) != (patient is not None):
            raise PeopleError("a patient's account names the patient (by MRN or ID number), "
                              "and only a patient's does")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        moment = now or dt.datetime.now(dt.UTC)
        try:
            with self.engine.begin() as conn:
                conn.execute(people_table.insert().values(
                    id=person, role=chosen.value, person_id=patient,
                    token_hash=token_hash(token), created_ms=int(moment.timestamp() * 1000)))
        except sa.exc.IntegrityError:
            raise TokenHeld(f"{person} already has a live token; remove it first "
                              f"(`medspace node people remove --id {person}`) to issue a new "
                              "one") from None
        return token

    def revoke_person(self, person: str, now: dt.datetime | None = None) -> bool:
        """Revoke ``person``'s live token at once; False if they hold none."""
        moment = now or dt.datetime.now(dt.UTC)
        with self.engine.begin() as conn:
            changed = conn.execute(
                people_table.update()
                .where(people_table.c.id == person, people_table.c.revoked_ms.is_(None))
                .values(revoked_ms=int(moment.timestamp() * 1000))).rowcount
        return bool(changed)

    def people(self, revoked: bool = False) -> list[Person]:
        """Everyone with a live token (and, with ``revoked``, everyone who had one), by id."""
        query = sa.select(people_table).order_by(people_table.c.id, people_table.c.seq)
        if not revoked:
            query = query.where(people_table.c.revoked_ms.is_(None))
        with self._reader.connect() as conn:
            return [_person(row) for row in conn.execute(query)]

    def authenticate(self, token: str) -> Person:
        """The person holding ``token``; :class:`Unauthenticated` for anything else."""
        if _TOKEN.fullmatch(token) is None:
            raise Unauthenticated("not a node token")
        wanted = token_hash(token)
        with self._reader.connect() as conn:
            row = conn.execute(sa.select(people_table)
                               .where(people_table.c.token_hash == wanted)).first()
        if row is None or not hmac.compare_digest(row.token_hash, wanted):
            raise Unauthenticated("no one holds this token")
        if row.revoked_ms is not None:
            raise Unauthenticated("this token was revoked")
        return _person(row)
