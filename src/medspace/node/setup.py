"""A hospital's side of joining a data space: make keys, ask to enrol, join, open the node.

A node lives in one folder, and nothing of the hospital's leaves it:

    node.json           id, the hub's URL and public signing key, the dataset id, the
                        analyses the hospital allows (pinned), jurisdiction, consent defaults
    usage-policy.yaml   the ODRL policy every task is checked against
    auto-approval.yaml  the studies approved without a person deciding (optional)
    emergency-agreement.yaml  which hospitals' clinicians may look a patient up here
    keys/               message, witness and journal keys; vault and linkage secrets
    tls/                the node's TLS key, its certificate and the data space's CA
    enrollment-request.json, enrollment.json   what it asked the operator, and the answer
    policy.txt          the trust policy (log key, witness keys, quorum)
    node.db             task and study records
    journal.db          the node's own journal of releases and refusals
    witness.db          the node's witness state
    store.duckdb        the clinical store;  vault.db  the encrypted identity vault
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import httpx

from medspace.analytics.registry import pins
from medspace.deid.egress import VaultEgressFilter
from medspace.keyfiles import private_secret, read_private, write_private
from medspace.ledger.cosignature import Cosigner
from medspace.ledger.keys import load_key, write_key
from medspace.ledger.log import TransparencyLog
from medspace.ledger.note import Signer, parse_vkey
from medspace.ledger.quorum import parse_policy
from medspace.ledger.store import LogStore
from medspace.ledger.trust import Trust
from medspace.ledger.witness import Witness
from medspace.node.agent import Node
from medspace.node.governance import (
    AUTO_APPROVAL_FILE,
    EMERGENCY_FILE,
    USAGE_POLICY_FILE,
    Governance,
    GovernanceError,
    default_auto_approval,
    default_emergency_agreement,
    default_usage_policy,
)
from medspace.node.state import NodeState
from medspace.pki.enrollment import (
    Enrollment,
    EnrollmentRequest,
    accept,
    init_participant,
    participant_key,
    participant_tls,
)
from medspace.pki.tls import client_context
from medspace.sqldb import create_engine, sqlite_url
from medspace.store.engine import ClinicalStore
from medspace.store.vault import IdentityVault


class NodeSetupError(ValueError):
    """The node folder is missing something, or an enrolment does not fit this node."""


def init_node(root: Path, node_id: str, org: str) -> EnrollmentRequest:
    """Make the node's keys and return the enrolment request to send to the operator."""
    request = init_participant(root, node_id, "hospital", org)
    write_key(root / "keys" / "journal.key", Signer.generate(f"{node_id}/journal"))
    private_secret(root / "keys" / "vault.key")
    return request


def join(root: Path, enrollment: Enrollment, policy_text: str, linkage_key: bytes) -> None:
    """Keep the operator's answer, the trust policy and the hospitals' shared linkage key."""
    policy = parse_policy(policy_text)
    Trust.from_policy(policy)
    if [log.key for log in policy.logs] != [enrollment.log_vkey]:
        raise NodeSetupError("the trust policy names another log than the enrolment")
    accept(root, enrollment)
    (root / "policy.txt").write_text(policy_text, encoding="utf-8")
    if not (root / "keys" / "linkage.key").exists():
        write_private(root / "keys" / "linkage.key", linkage_key)
    dataset = f"dataset:{enrollment.id}"
    (root / "node.json").write_text(json.dumps({
        "id": enrollment.id, "hub_url": enrollment.hub_url,
        "hub_sign_key": enrollment.hub_sign_key, "dataset": dataset, "analyses": pins(),
    }, indent=2), encoding="utf-8")
    for name, text in ((USAGE_POLICY_FILE, default_usage_policy(enrollment.id, dataset)),
                       (AUTO_APPROVAL_FILE, default_auto_approval(enrollment.id, dataset)),
                       (EMERGENCY_FILE, default_emergency_agreement(enrollment.id, dataset))):
        if not (root / name).exists():
            (root / name).write_text(text, encoding="utf-8")


def read_config(root: Path) -> dict[str, Any]:
    """The node's ``node.json``; NodeSetupError saying what to do if it has not joined."""
    try:
        config = json.loads((root / "node.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise NodeSetupError(f"{root} has not joined a data space (run `medspace node join`): "
                             f"{exc}") from None
    if not isinstance(config, dict) or not isinstance(config.get("id"), str):
        raise NodeSetupError(f"{root}/node.json has no node id; run `medspace node join` again")
    return config


def open_node(root: Path) -> tuple[Node, str]:
    """The node in ``root`` and its hub's URL."""
    config = read_config(root)
    node_id = config["id"]
    try:
        governance = Governance.read(root, config)
    except GovernanceError as exc:
        raise NodeSetupError(f"{exc}; fix it and start the node again") from None
    trust = Trust.load(root / "policy.txt")
    store = ClinicalStore.open_duckdb(root / "store.duckdb")
    store.create_schema()
    node = Node(
        id=node_id,
        key=participant_key(root),
        hub_key=base64.b64decode(config["hub_sign_key"]),
        trust=trust,
        state=NodeState(create_engine(sqlite_url(root / "node.db"))),
        journal=open_journal(root, node_id),
        witness=Witness(create_engine(sqlite_url(root / "witness.db")),
                        load_key(root / "keys" / "witness.key", Cosigner),
                        [parse_vkey(log.key) for log in trust.policy.logs]),
        store=store,
        governance=governance,
        egress=VaultEgressFilter(open_vault(root)),
    )
    return node, config["hub_url"]


def open_journal(root: Path, node_id: str) -> TransparencyLog:
    """The node's own journal; several processes of the node may append to it."""
    return TransparencyLog(LogStore(create_engine(sqlite_url(root / "journal.db")),
                                    f"{node_id}/journal"),
                           load_key(root / "keys" / "journal.key", Signer))


def node_secrets(root: Path) -> tuple[bytes, bytes]:
    """The node's pseudonym key (made on first use) and the hospitals' shared linkage key."""
    return (private_secret(root / "keys" / "pseudonym.key"),
            read_private(root / "keys" / "linkage.key"))


def open_vault(root: Path) -> IdentityVault:
    """The node's identity vault."""
    return IdentityVault(create_engine(sqlite_url(root / "vault.db")),
                         read_private(root / "keys" / "vault.key"))


def hub_client(root: Path) -> httpx.AsyncClient:
    """An HTTP client that speaks mutual TLS to the hub with the node's certificate."""
    return httpx.AsyncClient(verify=client_context(participant_tls(root)), timeout=30)
