"""Keyed identifiers: the linkage token hospitals share and the pseudonym a node keeps.

Both are HMAC-SHA256 under a secret key, never a bare hash: an ID number has too little entropy
(a birth date, a region code and a few digits) for an unkeyed hash to hide it — anyone could hash
every candidate. The linkage key is shared by the hospitals and never held by the hub, so the hub
can relay tokens without being able to test guesses; the node key never leaves its node, so a
pseudonym means nothing outside it.
"""

from __future__ import annotations

import hashlib
import hmac
import re

LINKAGE_TOKEN_PATTERN = r"^lt:[0-9a-f]{64}$"
PSEUDONYM_PATTERN = r"^ps:[0-9a-f]{32}$"
KEY_ID_PATTERN = r"^pk:[0-9a-f]{32}$"
RECORD_ID_PATTERN = r"^rc:[0-9a-f]{32}$"

_ID_NUMBER = re.compile(r"^[0-9]{17}[0-9X]$")
_MIN_KEY_BYTES = 32


class TokenError(ValueError):
    """An ID number, MRN or key that cannot yield a token (the message never repeats it)."""


def normalise_id_number(id_number: str) -> str:
    """The canonical form of an 18-character resident ID number: no spaces, upper-case ``X``.

    Hospitals type the check character as ``x`` or ``X`` and paste numbers with spaces or
    hyphens; all of them must give the same token or a patient's records would not link.
    """
    canonical = re.sub(r"[\s\-]", "", id_number).upper()
    if not _ID_NUMBER.fullmatch(canonical):
        raise TokenError("not an 18-character ID number (17 digits and a digit or X)")
    return canonical


def check_key(key: bytes, what: str) -> None:
    """Refuse a key too short to make guessing its HMACs hopeless."""
    if not isinstance(key, bytes) or len(key) < _MIN_KEY_BYTES:
        raise TokenError(f"the {what} must be at least {_MIN_KEY_BYTES} bytes")


def linkage_token(id_number: str, linkage_key: bytes) -> str:
    """``lt:`` + HMAC-SHA256(linkage_key, normalised ID number) in hex: the cross-hospital link."""
    check_key(linkage_key, "linkage key")
    canonical = normalise_id_number(id_number)
    digest = hmac.new(linkage_key, canonical.encode("ascii"), hashlib.sha256).hexdigest()
    return f"lt:{digest}"


def log_pseudonym(id_number: str, linkage_key: bytes) -> str:
    """``psn:`` + HMAC-SHA256(linkage_key, a log context and the ID number): the patient as the
    audit log names them.

    Every hospital computes the same value for a patient, so accesses anywhere in the data space
    can be gathered for the patient's own access log; the hub, without the linkage key, cannot
    test guesses, and the separate context keeps it from matching log entries to the linkage
    tokens it relays.
    """
    check_key(linkage_key, "linkage key")
    message = b"medspace-log-patient\x00" + normalise_id_number(id_number).encode("ascii")
    return f"psn:{hmac.new(linkage_key, message, hashlib.sha256).hexdigest()}"


def person_pseudonym(mrn: str, node_key: bytes) -> str:
    """``ps:`` + 128 bits of HMAC-SHA256(node_key, MRN): the node-local ``person_id``.

    The same MRN always gives the same pseudonym at a node, so re-ingesting a patient updates
    the same person; 128 bits make collisions negligible at any hospital's size.
    """
    canonical = mrn.strip()
    if not canonical:
        raise TokenError("an empty MRN has no pseudonym")
    return keyed_id("ps", "medspace-person", canonical, node_key)


def key_id(namespace: str, key: str, node_key: bytes) -> str:
    """``pk:`` + 128 bits of HMAC: the store's name for a source's own patient key.

    A FHIR server knows a patient by its logical id and an HL7 feed may go on sending an MRN
    that a merge retired; the store maps these keys to the ``person_id`` they mean without
    holding the keys themselves.
    """
    return keyed_id("pk", f"medspace-key\x00{namespace}", key, node_key)


def record_id(record: str, node_key: bytes) -> str:
    """``rc:`` + 128 bits of HMAC: the store's name for the source record a row came from.

    Loading a record again replaces the rows with its id, which is what makes a re-run
    idempotent and an updated resource an update.
    """
    return keyed_id("rc", "medspace-record", record, node_key)


def keyed_id(prefix: str, context: str, value: str, node_key: bytes) -> str:
    """``prefix:`` + 128 bits of HMAC-SHA256 under ``node_key`` of ``value`` in ``context``:
    the one way this package derives a keyed id, each use with its own context."""
    check_key(node_key, "node key")
    message = context.encode() + b"\x00" + value.encode("utf-8")
    return f"{prefix}:{hmac.digest(node_key, message, 'sha256')[:16].hex()}"
