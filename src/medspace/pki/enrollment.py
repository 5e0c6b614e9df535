"""Enrolment: how a participant gets a certificate without its private key leaving its machine.

The participant makes its keys and sends a request (its public keys and a certificate signing
request); the operator checks it, registers the participant and answers with the certificate,
the data space's CA certificate and the hub's public signing key. Both documents are plain JSON
with nothing secret in them.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.x509.oid import NameOID
from pydantic import BaseModel, ConfigDict, Field

from medspace.keyfiles import read_private, write_private
from medspace.ledger.cosignature import Cosigner
from medspace.ledger.keys import write_key
from medspace.pki.ca import Identity, IdentityFiles, PkiError, certify, read_identity
from medspace.wire.signing import WireKey

Role = Literal["hospital", "researcher", "regulator"]
PARTICIPANT_ID = r"^[a-z0-9][a-z0-9._-]{0,62}$"


class EnrollmentRequest(BaseModel):
    """What a participant sends to join: who it is, its public keys and a CSR."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=PARTICIPANT_ID)
    role: Role
    org: str = Field(min_length=1, max_length=128)
    sign_key: str
    kx_key: str | None = None
    """X25519 public key that emergency summaries for this participant are encrypted to."""
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


def init_participant(root: Path, participant: str, role: Role, org: str) -> EnrollmentRequest:
    """Make a participant's keys in ``root`` and write the request to send to the operator.

    Every participant gets a message signing key and a TLS key; hospitals and the regulator
    also get a witness key, since they witness the audit log, and hospitals an X25519 key that
    other hospitals encrypt emergency summaries to.
    """
    if (root / "keys" / "wire.key").exists():
        raise PkiError(f"{root} already holds the keys of a participant")
    wire = WireKey.generate(participant)
    write_private(root / "keys" / "wire.key", wire.seed())
    witness_vkey = kx_key = None
    if role == "hospital":
        agreement = X25519PrivateKey.generate()
        write_private(root / "keys" / "kx.key", agreement.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
            serialization.NoEncryption()))
        kx_key = base64.b64encode(agreement.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw)).decode("ascii")
    if role in ("hospital", "regulator"):
        witness = Cosigner.generate(participant)
        write_key(root / "keys" / "witness.key", witness)
        witness_vkey = witness.vkey
    tls_key = ec.generate_private_key(ec.SECP256R1())
    write_private(root / "tls" / "participant.key", tls_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    request = EnrollmentRequest(id=participant, role=role, org=org,
                                sign_key=base64.b64encode(wire.public_key).decode("ascii"),
                                kx_key=kx_key, witness_vkey=witness_vkey,
                                csr=make_csr(participant, tls_key))
    (root / "enrollment-request.json").write_text(request.model_dump_json(indent=2),
                                                  encoding="utf-8")
    return request


def read_request(root: Path) -> EnrollmentRequest:
    """The enrolment request a participant made in ``root``."""
    try:
        return EnrollmentRequest.model_validate_json(
            (root / "enrollment-request.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PkiError(f"{root} holds no participant keys: {exc}") from None


def accept(root: Path, enrollment: Enrollment) -> IdentityFiles:
    """Keep the operator's answer: the certificate and the data space's CA."""
    request = read_request(root)
    if enrollment.id != request.id:
        raise PkiError(f"the enrolment is for {enrollment.id!r}, not {request.id!r}")
    files = participant_tls(root)
    files.certificate.write_text(enrollment.certificate, encoding="ascii")
    files.ca_certificate.write_text(enrollment.ca_certificate, encoding="ascii")
    read_identity(files.key, files.certificate)
    (root / "enrollment.json").write_text(enrollment.model_dump_json(indent=2),
                                          encoding="utf-8")
    return files


def participant_tls(root: Path) -> IdentityFiles:
    """Where a participant keeps its TLS key, certificate and the CA certificate."""
    return IdentityFiles(root / "tls" / "participant.key", root / "tls" / "participant.crt",
                         root / "tls" / "ca.crt")


def participant_key(root: Path) -> WireKey:
    """The participant's message signing key."""
    return WireKey.from_seed(read_request(root).id, read_private(root / "keys" / "wire.key"))
