"""A patient's consent, changed at their own hospital: in the store at once, and journalled.

The hospital finds the patient by the medical record number its own systems use, or by the
resident ID number on the card the patient shows; the decision goes into the store, where it
takes effect for every computation from then on (:mod:`medspace.store.consent`), and into the
node's journal as a ``consent.granted`` or ``consent.revoked`` event. The event names the patient
by pseudonyms only: the node's ``person_id`` as its subject and, when the vault knows the
patient's ID number, the data space's log pseudonym, so the patient's access log can find it.
The node's agent passes the event on to the hub's witnessed log.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from medspace.ledger.events import Action, new_event
from medspace.ledger.log import TransparencyLog
from medspace.store import consent
from medspace.store.engine import ClinicalStore
from medspace.store.load import persons_of_mrns
from medspace.store.tokens import TokenError, linkage_token, log_pseudonym
from medspace.store.vault import IdentityVault, UnknownPerson

__all__ = ["PatientNotFound", "Recorded", "change_consent", "find_patient"]


class PatientNotFound(LookupError):
    """No patient, or more than one, answers to what the hospital gave; the message says which
    and never repeats the number."""


@dataclass(frozen=True)
class Recorded:
    """A consent change as it was recorded: the journal entry that proves it."""

    person_id: str
    journal_index: int


def find_patient(
    store: ClinicalStore,
    vault: IdentityVault,
    *,
    node_key: bytes,
    linkage_key: bytes,
    mrn: str | None = None,
    id_number: str | None = None,
) -> str:
    """The ``person_id`` of the one stored patient with this MRN or this ID number."""
    if (mrn is None) == (id_number is None):
        raise PatientNotFound("give the patient's MRN or their ID number, one of the two")
    if mrn is not None:
        candidates = [persons_of_mrns(store, [mrn], node_key)[mrn]]
        what = "MRN"
    else:
        try:
            candidates = vault.find(linkage_token(str(id_number), linkage_key))
        except TokenError as exc:
            raise PatientNotFound(f"the ID number is not valid: {exc}") from None
        what = "ID number"
    stored = store.lookup("person", "person_id", "person_id", candidates)
    if not stored:
        raise PatientNotFound(f"no patient with this {what} is stored at this hospital")
    if len(stored) > 1:
        raise PatientNotFound(f"{len(stored)} patients share this ID number here; give the MRN")
    return next(iter(stored))


def change_consent(
    store: ClinicalStore,
    vault: IdentityVault,
    journal: TransparencyLog,
    *,
    node_id: str,
    actor: str,
    linkage_key: bytes,
    person_id: str,
    purpose: str,
    decision: str,
    start: dt.date,
    end: dt.date | None = None,
    now: dt.datetime,
) -> Recorded:
    """Record a patient's decision and journal it; the decision counts from ``start`` on.

    The store is written first: a crash between the two leaves a change in force that the
    journal lacks, never a journalled change that is not in force. Raises
    :class:`medspace.store.consent.ConsentError` for a decision that makes no sense.
    """
    consent.record(store, person_id, purpose, decision, start=start, end=end,
                   recorded_ms=int(now.timestamp() * 1000))
    try:
        id_number = vault.get(person_id).id_number
    except UnknownPerson:
        id_number = None
    patient = log_pseudonym(id_number, linkage_key) if id_number else None
    action = Action.CONSENT_GRANTED if decision == "permit" else Action.CONSENT_REVOKED
    event = new_event(actor=node_id, org=node_id, role="hospital", action=action,
                      subject=person_id, decision="info", purpose=purpose, patient=patient,
                      reason=f"recorded by {actor}", now=now)
    return Recorded(person_id, journal.record(event))
