"""Signed messages between the hub and the nodes.

A message is a JSON object signed with the sender's Ed25519 key over its RFC 8785 canonical
bytes, prefixed with the protocol and the message kind, so that a signature on a task can never
be replayed as a signature on a result (or on anything outside this protocol). The receiver
checks the signature with the public key it holds for the claimed signer before reading a
single field.
"""

from __future__ import annotations

import base64
from typing import Any

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field

DOMAIN = b"medspace-wire/v1\x00"


class SignatureError(ValueError):
    """A message is not validly signed by the key expected for its signer."""


class SignedMessage(BaseModel):
    """A message as it travels: kind, signer id, body, and the signature over them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: str = Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_.-]*$")
    signer: str = Field(min_length=1, max_length=128)
    body: dict[str, Any]
    signature: str = Field(min_length=1, max_length=200)


def _signed_bytes(kind: str, signer: str, body: dict[str, Any]) -> bytes:
    return DOMAIN + kind.encode() + b"\x00" + signer.encode() + b"\x00" + rfc8785.dumps(body)


class WireKey:
    """A participant's Ed25519 key for signing wire messages."""

    def __init__(self, participant: str, private_key: Ed25519PrivateKey) -> None:
        self.participant = participant
        self._key = private_key
        self.public_key = private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    @classmethod
    def generate(cls, participant: str) -> WireKey:
        """A fresh key for ``participant``."""
        return cls(participant, Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, participant: str, seed: bytes) -> WireKey:
        """The key with this 32-byte seed."""
        return cls(participant, Ed25519PrivateKey.from_private_bytes(seed))

    def seed(self) -> bytes:
        """The 32-byte private seed, for the participant's key file."""
        return self._key.private_bytes(serialization.Encoding.Raw,
                                       serialization.PrivateFormat.Raw,
                                       serialization.NoEncryption())

    def sign(self, kind: str, body: dict[str, Any]) -> SignedMessage:
        """Sign ``body`` as a message of ``kind`` from this participant."""
        signature = self._key.sign(_signed_bytes(kind, self.participant, body))
        return SignedMessage(kind=kind, signer=self.participant, body=body,
                             signature=base64.b64encode(signature).decode("ascii"))

    def __repr__(self) -> str:
        return f"WireKey({self.participant!r})"


def verify_message(message: SignedMessage, kind: str, public_key: bytes) -> dict[str, Any]:
    """The body of ``message`` if it is a ``kind`` message validly signed with ``public_key``."""
    if message.kind != kind:
        raise SignatureError(f"expected a {kind!r} message, got {message.kind!r}")
    try:
        signature = base64.b64decode(message.signature, validate=True)
        Ed25519PublicKey.from_public_bytes(public_key).verify(
            signature, _signed_bytes(message.kind, message.signer, message.body)
        )
    except (InvalidSignature, ValueError) as exc:
        raise SignatureError(f"the {kind} from {message.signer!r} has a bad signature") from exc
    return message.body
