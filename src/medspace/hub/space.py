"""The operator's side of a data space: create it, enrol participants, open the hub.

A data space lives in one folder:

    space.json          name, public URL and host names of the hub
    ca/                 the data space's CA (its key never leaves this folder)
    tls/                the hub's TLS key and certificate
    keys/               the hub's message signing key and the audit log's key
    hub.db, ledger.db   the registry and studies; the audit log
    policy.txt          the trust policy every participant holds
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path

import httpx
from cryptography.hazmat.primitives import serialization

from medspace.hub.service import Hub
from medspace.hub.state import HubState, Participant
from medspace.keyfiles import read_private, write_private
from medspace.ledger.cosignature import parse_cosigner_vkey
from medspace.ledger.keys import load_key, write_key
from medspace.ledger.log import TransparencyLog
from medspace.ledger.note import Signer
from medspace.ledger.publisher import WitnessEndpoint, http_sender
from medspace.ledger.quorum import Log, Policy, consortium_policy, parse_policy
from medspace.ledger.store import LogStore
from medspace.pki.ca import IdentityFiles, create_ca, issue, read_identity, write_identity
from medspace.pki.enrollment import Enrollment, EnrollmentRequest, sign_request
from medspace.pki.tls import client_context
from medspace.sqldb import create_engine, sqlite_url
from medspace.wire.signing import WireKey

HUB_ID = "hub"


class SpaceError(ValueError):
    """The data space folder is missing something or a request cannot be honoured."""


@dataclass(frozen=True)
class Space:
    """Paths and settings of one data space folder."""

    root: Path
    name: str
    url: str
    hosts: tuple[str, ...]

    @property
    def origin(self) -> str:
        """The audit log's origin line."""
        return f"{self.name}/audit"

    @property
    def tls(self) -> IdentityFiles:
        """The hub's TLS files."""
        return IdentityFiles(self.root / "tls" / "hub.key", self.root / "tls" / "hub.crt",
                             self.root / "tls" / "ca.crt")

    def wire_key(self) -> WireKey:
        """The hub's message signing key."""
        return WireKey.from_seed(HUB_ID, read_private(self.root / "keys" / "hub-wire.key"))

    def log_signer(self) -> Signer:
        """The audit log's checkpoint key."""
        return load_key(self.root / "keys" / "log.key", Signer)

    def state(self) -> HubState:
        """The registry and studies."""
        return HubState(create_engine(sqlite_url(self.root / "hub.db")))


def init_space(root: Path, name: str, url: str, hosts: list[str]) -> Space:
    """Create a data space in ``root``: its CA, the hub's keys and certificate, the log key."""
    if (root / "space.json").exists():
        raise SpaceError(f"{root} already holds a data space")
    ca = create_ca(name)
    write_identity(ca, ca.certificate, root / "ca", "ca")
    write_identity(issue(ca, HUB_ID, hosts), ca.certificate, root / "tls", "hub")
    write_private(root / "keys" / "hub-wire.key", WireKey.generate(HUB_ID).seed())
    space = Space(root, name, url, tuple(hosts))
    write_key(root / "keys" / "log.key", Signer.generate(space.origin))
    (root / "space.json").write_text(json.dumps({"name": name, "url": url, "hosts": hosts},
                                                indent=2), encoding="utf-8")
    return space


def open_space(root: Path) -> Space:
    """The data space in ``root``."""
    try:
        settings = json.loads((root / "space.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SpaceError(f"{root} holds no data space (run `medspace space init`): {exc}") from None
    return Space(root, settings["name"], settings["url"], tuple(settings["hosts"]))


def enroll(space: Space, request: EnrollmentRequest, hosts: list[str],
           witness_url: str | None = None) -> Enrollment:
    """Register a participant and issue its certificate."""
    ca = read_identity(space.root / "ca" / "ca.key", space.root / "ca" / "ca.crt")
    certificate = sign_request(ca, request, hosts)
    if request.role in ("hospital", "regulator") and request.witness_vkey is None:
        raise SpaceError(f"a {request.role} runs a witness; its request needs a witness key")
    if request.witness_vkey is not None:
        key = parse_cosigner_vkey(request.witness_vkey)
        if key.name != request.id:
            raise SpaceError("the witness key must be named after the participant")
    if request.role == "hospital" and request.kx_key is None:
        raise SpaceError("a hospital's request needs its X25519 key for emergency summaries")
    space.state().register(Participant(request.id, request.role, request.org, request.sign_key,
                                       request.kx_key, witness_url, request.witness_vkey))
    return Enrollment(
        id=request.id,
        certificate=certificate.public_bytes(serialization.Encoding.PEM).decode("ascii"),
        ca_certificate=ca.certificate.public_bytes(serialization.Encoding.PEM).decode("ascii"),
        hub_url=space.url,
        hub_sign_key=base64.b64encode(space.wire_key().public_key).decode("ascii"),
        log_vkey=space.log_signer().vkey,
    )


def write_policy(space: Space) -> Policy:
    """The consortium policy from the registry: the regulator and 2/3 of the hospitals."""
    state = space.state()
    regulators = [p for p in state.participants("regulator") if p.witness_vkey]
    hospitals = [p.witness_vkey for p in state.participants("hospital") if p.witness_vkey]
    if len(regulators) != 1 or not hospitals:
        raise SpaceError("enrol one regulator and at least one hospital before the policy")
    policy = consortium_policy(regulators[0].witness_vkey or "", hospitals)
    policy = Policy(policy.witnesses, policy.groups, policy.quorum,
                    (Log(space.log_signer().vkey),))
    (space.root / "policy.txt").write_text(policy.format(), encoding="utf-8")
    return policy


def open_hub(space: Space, client: httpx.AsyncClient) -> Hub:
    """The hub of ``space``; ``client`` reaches the witnesses that listen (the regulator's).

    The hub closes ``client`` when it stops.
    """
    policy = parse_policy((space.root / "policy.txt").read_text(encoding="utf-8"))
    state = space.state()
    listening = [
        WitnessEndpoint(parse_cosigner_vkey(p.witness_vkey), http_sender(client, p.witness_url))
        for p in state.participants("regulator") if p.witness_vkey and p.witness_url
    ]
    store = LogStore(create_engine(sqlite_url(space.root / "ledger.db")), space.origin)
    return Hub(state, TransparencyLog(store, space.log_signer()), space.wire_key(), policy,
               listening, client)


def hub_client(space: Space) -> httpx.AsyncClient:
    """An HTTP client that speaks mutual TLS with the hub's own certificate."""
    return httpx.AsyncClient(verify=client_context(space.tls), timeout=15)
