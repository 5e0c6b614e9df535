"""Enrolment: how a participant gets a certificate without its private key leaving its machine.

The participant makes its keys and sends a request (its public keys and a certificate signing
request); the operator checks it, registers the participant and answers with the certificate,
the data space's CA certificate and the hub's public signing key. Both documents are plain JSON
with nothing secret in them.
"""

from __future__ import annotations

import base64
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import BaseModel, ConfigDict, Field

from medspace.pki.ca import Identity, PkiError, certify

Role = Literal["hospital", "researcher", "regulator"]
PARTICIPANT_ID = r"^[a-z0-9][a-z0-9._-]{0,62}$"


class EnrollmentRequest(BaseModel):
    """What a participant sends to join: who it is, its public keys and a CSR."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=PARTICIPANT_ID)
    role: Role
    org: str = Field(min_length=1, max_length=128)
    sign_key: str
    witness_vkey: str | None = None
    csr: str


class Enrollment(BaseModel):
    """The operator's answer: the certificate, the CA, and the hub's public signing key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    certificate: str
    ca_certificate: str
    hub_url: str
    hub_sign_key: str
    log_vkey: str


def make_csr(participant: str, key: ec.EllipticCurvePrivateKey) -> str:
    """A PEM certificate signing request naming ``participant``."""
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, participant)]))
           .sign(key, hashes.SHA256()))
    return csr.public_bytes(serialization.Encoding.PEM).decode("ascii")


def sign_request(ca: Identity, request: EnrollmentRequest, hosts: list[str]) -> x509.Certificate:
    """Check a request's CSR and issue its certificate for ``hosts``."""
    try:
        csr = x509.load_pem_x509_csr(request.csr.encode("ascii"))
    except ValueError:
        raise PkiError("the request's CSR is not a PEM certificate signing request") from None
    if not csr.is_signature_valid:
        raise PkiError("the request's CSR is not signed by its own key")
    names = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if [str(n.value) for n in names] != [request.id]:
        raise PkiError(f"the CSR names {names!r}, not {request.id!r}")
    public_key = csr.public_key()
    if not isinstance(public_key, ec.EllipticCurvePublicKey):
        raise PkiError("the CSR's key is not an ECDSA key")
    try:
        raw = base64.b64decode(request.sign_key, validate=True)
    except ValueError:
        raise PkiError("the request's signing key is not base64") from None
    if len(raw) != 32:
        raise PkiError("the request's signing key is not an Ed25519 public key")
    return certify(ca, request.id, hosts, public_key)
