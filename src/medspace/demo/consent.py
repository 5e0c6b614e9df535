"""The demo's consent scenario (DESIGN §8.4): a patient revokes research consent at their
hospital's desk; the next identical study counts them out; the audit log shows the revocation
under a pseudonym.

The patient is one of the first hospital's lung-cancer patients, in the study's largest group
there, so that their leaving shows in a released count instead of hiding under small-cell
suppression. The desk records the revocation through the running node's API, as a hospital
would, with a desk account the demo makes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from medspace.demo.setup import Layout
from medspace.ledger.events import parse_event
from medspace.ledger.store import LogStore
from medspace.node.people import People, Role
from medspace.node.setup import open_node, open_vault
from medspace.pki.enrollment import participant_tls
from medspace.pki.tls import client_context
from medspace.sqldb import create_engine, sqlite_url
from medspace.store.cohort import Cohort, count_by, members

__all__ = ["Patient", "Revocation", "choose_patient", "desk_token", "find_revocation",
           "revoke"]

DESK = "desk-demo"


@dataclass(frozen=True)
class Patient:
    """The patient of the scenario: their MRN (for the desk) and the group they count in."""

    mrn: str
    person_id: str
    group: tuple[str, str]


@dataclass(frozen=True)
class Revocation:
    """The revocation as the node's API answered it, and where the hub's log holds it."""

    journal_index: int
    log_index: int | None
    patient_pseudonym: str | None


def choose_patient(node_root: Path, query: dict[str, Any]) -> Patient:
    """A patient of the study's largest (sex, age band) group at this node (node stopped)."""
    node, _ = open_node(node_root)
    try:
        cohort = Cohort.from_mapping(query["cohort"])
        width = int(query.get("age_band_width", 10))
        groups = count_by(node.store, cohort, ["sex", "age_band"], width)
        sex, band, _ = max(groups, key=lambda group: group[-1])
        low, high = (int(age) for age in str(band).split("-"))
        narrowed = Cohort.from_mapping({
            **query["cohort"], "sex": sex,
            "age_min": max(low, cohort.age_min or 0),
            "age_max": min(high, cohort.age_max if cohort.age_max is not None else high)})
        [person] = members(node.store, narrowed, limit=1)
    finally:
        node.store.close()
        node.journal.close()
    return Patient(open_vault(node_root).get(person).mrn, person, (str(sex), str(band)))


def desk_token(node_root: Path) -> str:
    """A fresh token for the demo's desk account at this node."""
    people = People.open(node_root)
    people.revoke_person(DESK)
    return people.add_person(DESK, Role.DESK)


def revoke(layout: Layout, node_root: Path, api_port: int, token: str,
           patient: Patient) -> int:
    """Revoke the patient's research consent through the node's API; the journal index."""
    tls = client_context(participant_tls(layout.researcher))
    with httpx.Client(verify=tls, timeout=30) as client:
        answer = client.post(f"https://127.0.0.1:{api_port}/v1/consent",
                             headers={"Authorization": f"Bearer {token}"},
                             json={"action": "revoke", "purpose": "research",
                                   "mrn": patient.mrn})
    if answer.status_code != 200:
        raise RuntimeError(f"the desk could not record the revocation ({answer.status_code}: "
                           f"{answer.text[:200]}); see {node_root / 'node.log'}")
    return int(answer.json()["journal_index"])


def find_revocation(layout: Layout, origin: str, person_id: str,
                    journal_index: int) -> Revocation:
    """Where the hub's log holds the latest revocation of ``person_id`` the node passed on."""
    log = LogStore(create_engine(sqlite_url(layout.hub / "ledger.db")), origin)
    found = Revocation(journal_index, None, None)
    for index, entry in enumerate(log.entries(0, log.size)):
        event = parse_event(entry)
        if event.action == "consent.revoked" and event.subject == person_id:
            found = Revocation(journal_index, index, event.patient)
    return found
