"""The identity vault: a node's direct identifiers, sealed with AES-GCM, one record per person.

Names, ID numbers, phone numbers, addresses, birth dates and MRNs never enter the clinical store
and no analysis reads this vault. It exists for two things only: computing a patient's linkage
token, and answering an emergency look-up by finding the local ``person_id`` for a token.

Each record is encrypted under the node's 32-byte vault key with a fresh 96-bit nonce, and the
``person_id`` and linkage token are bound in as associated data, so a ciphertext copied to
another person's row, or a token moved to another row, fails authentication instead of
returning someone else's identity. A key check value (an HMAC of a constant, which reveals
nothing about the key) tells a wrong key apart from tampering, so the error says which it is.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass

import sqlalchemy as sa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy.engine import Engine

from medspace.sqldb import read_only
from medspace.store.tokens import LINKAGE_TOKEN_PATTERN, PSEUDONYM_PATTERN

_KEY_BYTES = 32
_NONCE_BYTES = 12
_DELETE_CHUNK = 500
_FORMAT = b"medspace-vault-v1"

_metadata = sa.MetaData()
vault_table = sa.Table(
    "identity_vault",
    _metadata,
    sa.Column("person_id", sa.String(64), primary_key=True),
    sa.Column("linkage_token", sa.String(67), nullable=True, index=True),
    sa.Column("key_check", sa.String(32), nullable=False),
    sa.Column("nonce", sa.LargeBinary, nullable=False),
    sa.Column("ciphertext", sa.LargeBinary, nullable=False),
)
version_table = sa.Table(
    "identity_vault_version",
    _metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("version", sa.BigInteger, nullable=False),
)
"""One row counting the vault's writes, so a reader knows without decrypting when it changed."""


class VaultError(Exception):
    """A vault operation that cannot be done; the message never holds a key or an identifier."""


class WrongVaultKey(VaultError):
    """The record was sealed under a different vault key."""


class VaultTampered(VaultError):
    """A record failed authentication: altered, or moved from another person's row."""


class UnknownPerson(VaultError):
    """The vault has no record for this person."""


@dataclass(frozen=True, repr=False)
class Identity:
    """A person's direct identifiers. Its repr hides them, so a log line can never leak one."""

    name: str
    mrn: str
    id_number: str | None = None
    phone: str | None = None
    address: str | None = None
    birth_date: dt.date | None = None

    def __repr__(self) -> str:
        return "Identity(<redacted>)"

    def to_bytes(self) -> bytes:
        """The canonical JSON the vault encrypts."""
        fields = asdict(self)
        if self.birth_date is not None:
            fields["birth_date"] = self.birth_date.isoformat()
        return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes) -> Identity:
        """Inverse of :meth:`to_bytes`."""
        fields = json.loads(data)
        if fields.get("birth_date") is not None:
            fields["birth_date"] = dt.date.fromisoformat(fields["birth_date"])
        return cls(**fields)


def _check_format(value: str, pattern: str, what: str) -> None:
    if not isinstance(value, str) or re.fullmatch(pattern, value) is None:
        raise VaultError(f"not a {what}")


def _bump(conn: sa.Connection) -> None:
    """Count a write, inside the writing transaction."""
    if not conn.execute(version_table.update().values(version=version_table.c.version + 1)
                        ).rowcount:
        conn.execute(version_table.insert().values(id=1, version=1))


def _associated_data(person_id: str, linkage_token: str | None) -> bytes:
    return b"\x00".join((_FORMAT, person_id.encode(), (linkage_token or "").encode()))


class IdentityVault:
    """The encrypted identity records of one node, in a SQL table (SQLite or PostgreSQL)."""

    def __init__(self, engine: Engine, vault_key: bytes) -> None:
        if not isinstance(vault_key, bytes) or len(vault_key) != _KEY_BYTES:
            raise VaultError(f"the vault key must be exactly {_KEY_BYTES} bytes")
        self._engine = engine
        self._reader = read_only(engine)
        self._aead = AESGCM(vault_key)
        check = hmac.new(vault_key, b"medspace-vault-key-check", hashlib.sha256)
        self._key_check_hex = check.hexdigest()[:32]
        _metadata.create_all(engine, tables=[vault_table, version_table], checkfirst=True)

    def __repr__(self) -> str:
        return f"IdentityVault({self._engine.url.render_as_string(hide_password=True)})"

    def put(self, person_id: str, identity: Identity, linkage_token: str | None) -> None:
        """Seal and store ``identity`` for ``person_id``, replacing any earlier record."""
        self.put_many([(person_id, identity, linkage_token)])

    def put_many(self, records: Iterable[tuple[str, Identity, str | None]]) -> None:
        """Seal and store several identities, replacing earlier records, in one transaction:
        an ingest batch costs one disk sync, not one per patient. A person given twice keeps
        the last identity."""
        sealed: dict[str, dict[str, object]] = {}
        for person_id, identity, linkage_token in records:
            _check_format(person_id, PSEUDONYM_PATTERN, "person pseudonym")
            if linkage_token is not None:
                _check_format(linkage_token, LINKAGE_TOKEN_PATTERN, "linkage token")
            nonce = os.urandom(_NONCE_BYTES)
            sealed[person_id] = {
                "person_id": person_id,
                "linkage_token": linkage_token,
                "key_check": self._key_check_hex,
                "nonce": nonce,
                "ciphertext": self._aead.encrypt(
                    nonce, identity.to_bytes(), _associated_data(person_id, linkage_token)),
            }
        if not sealed:
            return
        ids = list(sealed)
        with self._engine.begin() as conn:
            for start in range(0, len(ids), _DELETE_CHUNK):
                conn.execute(vault_table.delete().where(
                    vault_table.c.person_id.in_(ids[start:start + _DELETE_CHUNK])))
            conn.execute(vault_table.insert(), list(sealed.values()))
            _bump(conn)

    def delete(self, person_ids: Iterable[str]) -> None:
        """Remove the identities of persons who no longer exist (merged into another)."""
        ids = list(person_ids)
        with self._engine.begin() as conn:
            for start in range(0, len(ids), _DELETE_CHUNK):
                conn.execute(vault_table.delete().where(
                    vault_table.c.person_id.in_(ids[start:start + _DELETE_CHUNK])))
            _bump(conn)

    def version(self) -> int:
        """A number that changes with every write: the egress filter rebuilds when it moves,
        whichever process (an ingest, a listener) wrote."""
        with self._reader.connect() as conn:
            return conn.execute(sa.select(version_table.c.version)).scalar() or 0

    def identities(self) -> Iterator[Identity]:
        """Every identity the vault holds, decrypted: for the node's egress filter, which must
        know what it may never let out."""
        with self._reader.connect() as conn:
            rows = conn.execute(sa.select(vault_table)).all()
        for row in rows:
            yield self._open(row)

    def find(self, linkage_token: str) -> list[str]:
        """The local ``person_id``s recorded under ``linkage_token`` (usually one, or none).

        Every match is authenticated before it is returned, so a token moved onto another
        person's row raises :class:`VaultTampered` rather than pointing at the wrong patient.
        """
        _check_format(linkage_token, LINKAGE_TOKEN_PATTERN, "linkage token")
        with self._reader.connect() as conn:
            rows = conn.execute(
                sa.select(vault_table).where(vault_table.c.linkage_token == linkage_token)
            ).all()
        for row in rows:
            self._open(row)
        return sorted(row.person_id for row in rows)

    def get(self, person_id: str) -> Identity:
        """Decrypt the identity of ``person_id``.

        Only for computing a linkage token and for matching an emergency look-up; nothing that
        leaves the node, and no analysis, may use it.
        """
        _check_format(person_id, PSEUDONYM_PATTERN, "person pseudonym")
        with self._reader.connect() as conn:
            row = conn.execute(
                sa.select(vault_table).where(vault_table.c.person_id == person_id)
            ).one_or_none()
        if row is None:
            raise UnknownPerson("no identity record for this person")
        return self._open(row)

    def _open(self, row: sa.Row) -> Identity:
        if not hmac.compare_digest(row.key_check, self._key_check_hex):
            raise WrongVaultKey("this record was sealed under a different vault key")
        try:
            plain = self._aead.decrypt(
                row.nonce, row.ciphertext, _associated_data(row.person_id, row.linkage_token)
            )
        except InvalidTag:
            raise VaultTampered(
                "an identity record failed authentication (altered or moved between persons)"
            ) from None
        return Identity.from_bytes(plain)
