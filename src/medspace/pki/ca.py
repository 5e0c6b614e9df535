"""The data space's own certificate authority, for mutual TLS between hub, nodes and witnesses.

Every participant proves who it is on every connection: the hub and each node hold a
certificate the data space's CA issued, and each side refuses a peer whose certificate does not
chain to that CA. TLS keys are ECDSA P-256, which every TLS stack accepts; the participants'
Ed25519 signing keys (tasks, results, checkpoints) are separate and never used for TLS.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from medspace.keyfiles import read_private, write_private

CA_VALIDITY = dt.timedelta(days=3650)
LEAF_VALIDITY = dt.timedelta(days=825)


class PkiError(ValueError):
    """A certificate or key file is missing, malformed, or does not belong where it is used."""


@dataclass(frozen=True)
class Identity:
    """A private key and the certificate that names it."""

    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate

    @property
    def name(self) -> str:
        """The certificate's common name: the participant's id in the data space."""
        names = self.certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        return str(names[0].value)


def _name(common_name: str, organisation: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])


def create_ca(space: str, now: dt.datetime | None = None) -> Identity:
    """A new root CA for the data space named ``space``."""
    now = now or dt.datetime.now(dt.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(f"{space} certificate authority", space)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(digital_signature=False, content_commitment=False,
                          key_encipherment=False, data_encipherment=False, key_agreement=False,
                          key_cert_sign=True, crl_sign=True, encipher_only=False,
                          decipher_only=False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    return Identity(key, certificate)


def certify(
    ca: Identity,
    participant: str,
    hosts: list[str],
    public_key: ec.EllipticCurvePublicKey,
    now: dt.datetime | None = None,
) -> x509.Certificate:
    """A certificate for ``participant``'s key, valid as TLS server and client for ``hosts``."""
    now = now or dt.datetime.now(dt.UTC)
    alt_names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            alt_names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            alt_names.append(x509.DNSName(host))
    organisation = ca.certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(participant, str(organisation[0].value)))
        .issuer_name(ca.certificate.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(min(now + LEAF_VALIDITY, ca.certificate.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                   ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
            critical=False,
        )
        .sign(ca.key, hashes.SHA256())
    )


def issue(
    ca: Identity, participant: str, hosts: list[str], now: dt.datetime | None = None
) -> Identity:
    """A new key for ``participant`` and its certificate (for the operator's own services)."""
    key = ec.generate_private_key(ec.SECP256R1())
    return Identity(key, certify(ca, participant, hosts, key.public_key(), now))


@dataclass(frozen=True)
class IdentityFiles:
    """Where one participant's TLS key, certificate and the data space's CA certificate live."""

    key: Path
    certificate: Path
    ca_certificate: Path


def write_identity(identity: Identity, ca_certificate: x509.Certificate, folder: Path,
                   stem: str) -> IdentityFiles:
    """Write ``stem``.key (0600), ``stem``.crt and ca.crt into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    files = IdentityFiles(folder / f"{stem}.key", folder / f"{stem}.crt", folder / "ca.crt")
    key_pem = identity.key.private_bytes(serialization.Encoding.PEM,
                                         serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption())
    write_private(files.key, key_pem)
    files.certificate.write_bytes(identity.certificate.public_bytes(serialization.Encoding.PEM))
    files.ca_certificate.write_bytes(ca_certificate.public_bytes(serialization.Encoding.PEM))
    return files


def read_identity(key_path: Path, certificate_path: Path) -> Identity:
    """Read a key and its certificate back; refuse a pair that does not match."""
    try:
        key = serialization.load_pem_private_key(read_private(key_path), password=None)
        certificate = x509.load_pem_x509_certificate(certificate_path.read_bytes())
    except (OSError, ValueError) as exc:
        raise PkiError(f"cannot read {key_path} / {certificate_path}: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise PkiError(f"{key_path} is not an ECDSA key")
    if key.public_key().public_numbers() != certificate.public_key().public_numbers():
        raise PkiError(f"{certificate_path} does not certify the key in {key_path}")
    return Identity(key, certificate)
