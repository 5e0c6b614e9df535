"""A hospital's people: tokens that only their holder can use, and roles that reach no higher
than the table says."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from medspace.cli import app
from medspace.demo.local import build
from medspace.keyfiles import private_secret
from medspace.ledger.events import Role as LedgerRole
from medspace.node.people import (
    PERMISSIONS,
    People,
    PeopleError,
    Permission,
    Person,
    Role,
    TokenHeld,
    Unauthenticated,
    allowed,
    people_table,
)
from medspace.sqldb import create_engine
from medspace.store.engine import ClinicalStore
from medspace.store.load import load
from medspace.store.tokens import person_pseudonym

ME = "ps:" + "a" * 32
SOMEONE_ELSE = "ps:" + "b" * 32

#: What each role may do, written out by hand: the table in people.py must say the same.
MAY: dict[Role, set[Permission]] = {
    Role.ADMIN: set(Permission),
    Role.DESK: {Permission.READ_CONSENT, Permission.WRITE_CONSENT},
    Role.CLINICIAN: set(),
    Role.PATIENT: {Permission.READ_CONSENT, Permission.WRITE_CONSENT},
    Role.AUDITOR: {Permission.LIST_STUDIES, Permission.READ_JOURNAL},
}


@pytest.fixture
def people(database_url: str) -> People:
    return People(create_engine(database_url))


def _person(role: Role, person_id: str | None = None) -> Person:
    return Person(f"{role.value}-1", role, person_id, created_ms=0)


def test_a_token_lets_in_its_holder_and_the_node_keeps_only_its_hash(people: People) -> None:
    token = people.add_person("desk-3", Role.DESK)
    person = people.authenticate(token)
    assert (person.id, person.role, person.person_id) == ("desk-3", Role.DESK, None)
    with people.engine.connect() as conn:
        stored = conn.execute(sa.select(people_table)).one()
    assert token not in repr(tuple(stored))
    assert len(stored.token_hash) == 64


def test_unknown_and_malformed_tokens_are_refused(people: People) -> None:
    token = people.add_person("desk-3", Role.DESK)
    for guess in (token[:-1] + ("A" if token[-1] != "A" else "B"), "msn_" + "x" * 43, "",
                  "Bearer " + token, token + " ", "x" * 10_000):
        with pytest.raises(Unauthenticated):
            people.authenticate(guess)


def test_a_removed_person_is_refused_at_once_and_a_new_token_replaces_the_old(
    people: People,
) -> None:
    old = people.add_person("dr-li", Role.ADMIN)
    with pytest.raises(TokenHeld, match="already has a live token"):
        people.add_person("dr-li", Role.ADMIN)
    assert people.revoke_person("dr-li")
    assert not people.revoke_person("dr-li")
    with pytest.raises(Unauthenticated, match="revoked"):
        people.authenticate(old)
    new = people.add_person("dr-li", Role.AUDITOR)
    assert people.authenticate(new).role is Role.AUDITOR
    with pytest.raises(Unauthenticated):
        people.authenticate(old)
    assert [p.role for p in people.people()] == [Role.AUDITOR]
    assert [p.revoked_ms is None for p in people.people(revoked=True)] == [False, True]


@pytest.mark.parametrize("bad", ["Dr Li Wei", "王芳", "13812345678", "11010519491231002X",
                                 "unknown", "auto-approval", ""])
def test_an_id_that_is_a_name_a_number_or_reserved_is_refused(people: People, bad: str) -> None:
    with pytest.raises(PeopleError):
        people.add_person(bad, Role.DESK)


def test_only_a_patients_account_names_a_patient(people: People) -> None:
    with pytest.raises(PeopleError, match="only a patient"):
        people.add_person("pt-1", Role.PATIENT)
    with pytest.raises(PeopleError, match="only a patient"):
        people.add_person("desk-3", Role.DESK, patient=ME)
    with pytest.raises(PeopleError, match="unknown role"):
        people.add_person("root", "superuser")
    token = people.add_person("pt-1", Role.PATIENT, patient=ME)
    assert people.authenticate(token).person_id == ME


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("permission", list(Permission))
def test_each_role_may_do_exactly_what_its_row_of_the_table_says(
    role: Role, permission: Permission,
) -> None:
    person = _person(role, ME if role is Role.PATIENT else None)
    assert allowed(person, permission, ME) is (permission in MAY[role])
    assert (role in PERMISSIONS[permission]) is (permission in MAY[role])


def test_a_patient_acts_on_their_own_records_only() -> None:
    patient = _person(Role.PATIENT, ME)
    assert allowed(patient, Permission.WRITE_CONSENT, ME)
    assert not allowed(patient, Permission.WRITE_CONSENT, SOMEONE_ELSE)
    assert not allowed(patient, Permission.READ_CONSENT, SOMEONE_ELSE)
    assert not allowed(patient, Permission.READ_CONSENT)
    assert not allowed(_person(Role.PATIENT), Permission.READ_CONSENT, ME)
    desk = _person(Role.DESK)
    assert allowed(desk, Permission.WRITE_CONSENT, ME)
    assert allowed(desk, Permission.WRITE_CONSENT, SOMEONE_ELSE)


def test_unknown_permissions_roles_and_revoked_people_may_do_nothing() -> None:
    admin = _person(Role.ADMIN)
    assert not allowed(admin, "studies.delete")
    assert not allowed(Person("x", "superuser", None, 0), Permission.LIST_STUDIES)  # type: ignore[arg-type]
    assert not allowed(Person("dr-li", Role.ADMIN, None, 0, revoked_ms=1),
                       Permission.LIST_STUDIES)


def test_every_role_has_a_name_on_the_audit_log() -> None:
    assert {r: _person(r).ledger_role for r in Role} == {
        Role.ADMIN: LedgerRole.HOSPITAL, Role.DESK: LedgerRole.HOSPITAL,
        Role.CLINICIAN: LedgerRole.CLINICIAN, Role.PATIENT: LedgerRole.PATIENT,
        Role.AUDITOR: LedgerRole.AUDITOR}


def test_the_cli_adds_lists_and_removes_people_and_ties_a_patient_to_their_record(
    tmp_path: Path,
) -> None:
    build(tmp_path, 1, lambda _i, _store: None, serve=False)
    root = tmp_path / "hospital-a"
    person = person_pseudonym("MRN-77", private_secret(root / "keys" / "pseudonym.key"))
    with ClinicalStore.open_duckdb(root / "store.duckdb") as store:
        load(store, {"person": [{"person_id": person, "sex": "female", "birth_year": 1970,
                                 "birth_month": 5}]})
    runner = CliRunner()
    added = runner.invoke(app, ["node", "people", "add", str(root), "--id", "pt-77",
                                "--role", "patient", "--mrn", "MRN-77"])
    assert added.exit_code == 0, added.output
    token = next(line for line in added.stdout.splitlines() if line.startswith("msn_"))
    assert People.open(root).authenticate(token).person_id == person
    assert "Authorization: Bearer" in added.output and "ca.crt" in added.output

    admin = runner.invoke(app, ["node", "people", "add", str(root), "--id", "it-1",
                                "--role", "admin"])
    assert admin.exit_code == 0, admin.output
    listed = runner.invoke(app, ["node", "people", "list", str(root)])
    assert listed.exit_code == 0 and "pt-77" in listed.output and "it-1" in listed.output
    assert token not in listed.output

    for refused, said in (
        (["--id", "pt-78", "--role", "patient", "--mrn", "NOPE"], "no patient with this MRN"),
        (["--id", "pt-78", "--role", "patient"], "--mrn or --id-number"),
        (["--id", "desk-1", "--role", "desk", "--mrn", "MRN-77"], "patient's account only"),
        (["--id", "Wang Fang", "--role", "desk"], "is not an id"),
        (["--id", "root", "--role", "superuser"], "superuser"),
    ):
        result = runner.invoke(app, ["node", "people", "add", str(root), *refused])
        assert result.exit_code != 0 and said in result.output, result.output

    removed = runner.invoke(app, ["node", "people", "remove", str(root), "--id", "pt-77"])
    assert removed.exit_code == 0, removed.output
    with pytest.raises(Unauthenticated):
        People.open(root).authenticate(token)
    again = runner.invoke(app, ["node", "people", "remove", str(root), "--id", "pt-77"])
    assert again.exit_code != 0 and "no one with id 'pt-77'" in again.output
    help_text = runner.invoke(app, ["node", "people", "add", "--help"]).output
    assert "--role" in help_text and "--id-number" in help_text
