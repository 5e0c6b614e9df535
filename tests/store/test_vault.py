"""The identity vault on SQLite and PostgreSQL: sealed records, found by token, never garbage."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from medspace.sqldb import create_engine
from medspace.store.tokens import linkage_token
from medspace.store.vault import (
    Identity,
    IdentityVault,
    UnknownPerson,
    VaultError,
    VaultTampered,
    WrongVaultKey,
    vault_table,
)
from tests.store.data import pid

VAULT_KEY = bytes(range(32))
LINKAGE_KEY = b"L" * 32

ALICE = Identity(
    name="张伟",
    mrn="MRN0001",
    id_number="11010519491231002X",
    phone="13800138000",
    address="北京市朝阳区1号",
    birth_date=dt.date(1949, 12, 31),
)
BOB = Identity(name="Li Na", mrn="MRN0002", id_number="110105198001010011")


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    opened = create_engine(database_url)
    yield opened
    opened.dispose()


def _token(identity: Identity) -> str:
    assert identity.id_number is not None
    return linkage_token(identity.id_number, LINKAGE_KEY)


@pytest.fixture
def vault(engine: sa.Engine) -> IdentityVault:
    opened = IdentityVault(engine, VAULT_KEY)
    opened.put(pid(1), ALICE, _token(ALICE))
    opened.put(pid(2), BOB, _token(BOB))
    return opened


def test_identity_round_trips_through_the_vault(vault: IdentityVault) -> None:
    assert vault.get(pid(1)) == ALICE
    assert vault.get(pid(2)) == BOB


def test_find_maps_a_linkage_token_to_the_local_person(vault: IdentityVault) -> None:
    assert vault.find(_token(ALICE)) == [pid(1)]
    assert vault.find(linkage_token("110105198001010012", LINKAGE_KEY)) == []


def test_put_replaces_the_earlier_record(vault: IdentityVault) -> None:
    moved = Identity(name="张伟", mrn="MRN0001", phone="13900000000")
    vault.put(pid(1), moved, None)
    assert vault.get(pid(1)) == moved
    assert vault.find(_token(ALICE)) == []


def test_put_many_replaces_and_adds_in_one_go_keeping_a_repeated_persons_last_identity(
    vault: IdentityVault,
) -> None:
    moved = Identity(name="张伟", mrn="MRN0001", phone="13900000000")
    carol = Identity(name="Carol", mrn="MRN0003")
    vault.put_many([(pid(1), ALICE, None), (pid(3), carol, None), (pid(1), moved, None)]
                   + [(pid(n), BOB, None) for n in range(10, 1210)])
    assert vault.get(pid(1)) == moved and vault.get(pid(3)) == carol
    assert vault.get(pid(1209)) == BOB and vault.get(pid(2)) == BOB


def test_put_many_of_nothing_writes_nothing(vault: IdentityVault) -> None:
    vault.put_many([])
    assert vault.get(pid(1)) == ALICE


def test_ciphertext_holds_no_identifier_in_clear(vault: IdentityVault, engine: sa.Engine) -> None:
    with engine.connect() as conn:
        blobs = b"".join(r.ciphertext for r in conn.execute(sa.select(vault_table)))
    for value in ("11010519491231002X", "13800138000", "Li Na", "MRN0002"):
        assert value.encode() not in blobs
    assert "张伟".encode() not in blobs


def test_a_wrong_key_is_refused_with_a_clear_error(vault: IdentityVault, engine: sa.Engine) -> None:
    other = IdentityVault(engine, b"\xff" * 32)
    with pytest.raises(WrongVaultKey, match="different vault key"):
        other.get(pid(1))
    with pytest.raises(WrongVaultKey):
        other.find(_token(ALICE))


def test_a_tampered_ciphertext_is_refused(vault: IdentityVault, engine: sa.Engine) -> None:
    with engine.connect() as conn:
        sealed = conn.execute(
            sa.select(vault_table.c.ciphertext).where(vault_table.c.person_id == pid(1))
        ).scalar_one()
    flipped = bytes([sealed[0] ^ 1]) + sealed[1:]
    with engine.begin() as conn:
        conn.execute(
            vault_table.update().where(vault_table.c.person_id == pid(1)).values(ciphertext=flipped)
        )
    with pytest.raises(VaultTampered, match="failed authentication"):
        vault.get(pid(1))


def test_ciphertexts_swapped_between_persons_are_refused(
    vault: IdentityVault, engine: sa.Engine
) -> None:
    with engine.connect() as conn:
        rows = {r.person_id: r for r in conn.execute(sa.select(vault_table))}
    with engine.begin() as conn:
        for mine, theirs in ((pid(1), pid(2)), (pid(2), pid(1))):
            conn.execute(
                vault_table.update()
                .where(vault_table.c.person_id == mine)
                .values(nonce=rows[theirs].nonce, ciphertext=rows[theirs].ciphertext)
            )
    for person in (pid(1), pid(2)):
        with pytest.raises(VaultTampered):
            vault.get(person)


def test_a_token_moved_to_another_row_is_refused_by_find(
    vault: IdentityVault, engine: sa.Engine
) -> None:
    with engine.begin() as conn:
        conn.execute(
            vault_table.update()
            .where(vault_table.c.person_id == pid(2))
            .values(linkage_token=_token(ALICE))
        )
    with pytest.raises(VaultTampered):
        vault.find(_token(ALICE))


def test_unknown_person_and_malformed_arguments_are_refused(vault: IdentityVault) -> None:
    with pytest.raises(UnknownPerson):
        vault.get(pid(3))
    with pytest.raises(VaultError, match="person pseudonym"):
        vault.get("MRN0001")
    with pytest.raises(VaultError, match="linkage token"):
        vault.find("11010519491231002X")


def test_the_key_must_be_32_bytes(engine: sa.Engine) -> None:
    with pytest.raises(VaultError, match="exactly 32 bytes"):
        IdentityVault(engine, b"k" * 16)


def test_keys_and_identifiers_never_appear_in_reprs(vault: IdentityVault) -> None:
    text = repr(vault) + repr(ALICE) + str(ALICE)
    assert VAULT_KEY.hex() not in text
    assert repr(VAULT_KEY) not in text
    for value in ("张伟", "11010519491231002X", "13800138000", "MRN0001"):
        assert value not in text


def test_every_write_moves_the_vault_version_seen_by_another_reader(engine: sa.Engine) -> None:
    writer, reader = IdentityVault(engine, VAULT_KEY), IdentityVault(engine, VAULT_KEY)
    seen = [reader.version()]
    writer.put(pid(3), ALICE, None)
    seen.append(reader.version())
    writer.delete([pid(3)])
    seen.append(reader.version())
    assert seen[0] < seen[1] < seen[2]
