"""A patient's revocation takes them out of the next study, and the logs show it without them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from typer.testing import CliRunner

from medspace.cli import app
from medspace.hub.space import open_space
from medspace.keyfiles import private_secret, read_private
from medspace.ledger.events import parse_event
from medspace.ledger.store import LogStore
from medspace.node.consent import change_consent
from medspace.node.setup import open_vault
from medspace.sqldb import create_engine, sqlite_url
from medspace.store.engine import ClinicalStore
from medspace.store.load import load
from medspace.store.tokens import person_pseudonym
from medspace.store.vault import Identity
from medspace.wire.messages import StudyRequest
from tests.spacekit import AS_OF, DataSpace, build

QUERY = {"cohort": {"as_of": AS_OF.isoformat(), "condition_prefixes": ["C34"]},
         "group_by": ["sex"]}
#: Person 0 of hospital-a: male, with lung cancer (see ``countable_rows``).
PATIENT = person_pseudonym("H0-00000", b"k" * 32)
ID_NUMBER = "11010519491231002X"


@pytest.fixture
def space(tmp_path: Path):
    data_space = build(tmp_path, hospitals=2, persons=60)
    data_space.start_agents()
    yield data_space
    data_space.stop()


def _pooled(space: DataSpace, title: str) -> dict[str, int]:
    outcome = space.wait(space.submit(StudyRequest(title=title, kind="count", query=QUERY)))
    assert outcome["status"] == "done", outcome
    return {cell["key"][0]: cell["count"] for cell in outcome["result"]["result"]["pooled"]}


def _hub_events(space: DataSpace) -> list[bytes]:
    hub = open_space(space.root / "hub")
    log = LogStore(create_engine(sqlite_url(hub.root / "ledger.db")), hub.origin)
    return log.entries(0, log.size)


def test_a_revoked_patient_drops_out_of_the_next_identical_study_and_the_log_shows_it(
    space: DataSpace,
) -> None:
    root = space.root / "hospital-a"
    node = space.nodes["hospital-a"]
    vault = open_vault(root)
    vault.put(PATIENT, Identity(name="王芳", mrn="H0-00000", id_number=ID_NUMBER), None)
    before = _pooled(space, "lung cancer by sex")

    recorded = change_consent(
        node.store, vault, node.journal, node_id="hospital-a", actor="desk-3",
        linkage_key=read_private(root / "keys" / "linkage.key"), person_id=PATIENT,
        purpose="research", decision="deny", start=dt.datetime.now(dt.UTC).date(),
        now=dt.datetime.now(dt.UTC))
    after = _pooled(space, "lung cancer by sex, again")

    assert before["male"] - after["male"] == 1
    assert before["female"] == after["female"]
    journalled = parse_event(node.journal.store.entries(recorded.journal_index,
                                                        recorded.journal_index + 1)[0])
    assert (journalled.action, journalled.subject, journalled.purpose) == (
        "consent.revoked", PATIENT, "research")
    assert journalled.patient is not None and journalled.patient.startswith("psn:")
    on_hub = [parse_event(e) for e in _hub_events(space)]
    assert journalled.id in {e.id for e in on_hub if e.action == "consent.revoked"}
    everything = b"".join(_hub_events(space)).decode("utf-8")
    assert "王芳" not in everything and ID_NUMBER not in everything
    assert "H0-00000" not in everything


def test_the_cli_revokes_and_lists_by_mrn_on_a_stopped_node(tmp_path: Path) -> None:
    data_space = build(tmp_path, hospitals=1, persons=3)
    data_space.stop()
    root = tmp_path / "hospital-a"
    node_key = private_secret(root / "keys" / "pseudonym.key")
    person = person_pseudonym("MRN-77", node_key)
    with ClinicalStore.open_duckdb(root / "store.duckdb") as store:
        load(store, {"person": [{"person_id": person, "sex": "female", "birth_year": 1970,
                                 "birth_month": 5}]})
    runner = CliRunner()
    revoked = runner.invoke(app, ["node", "consent", "revoke", str(root), "--mrn", "MRN-77",
                                  "--purpose", "research", "--by", "desk-3"])
    assert revoked.exit_code == 0, revoked.output
    assert "research consent revoked" in revoked.output
    listed = runner.invoke(app, ["node", "consent", "list", str(root), "--mrn", "MRN-77"])
    assert listed.exit_code == 0 and "deny" in listed.output
    unknown = runner.invoke(app, ["node", "consent", "revoke", str(root), "--mrn", "NOPE",
                                  "--purpose", "research"])
    assert unknown.exit_code != 0 and "no patient with this MRN" in unknown.output
    bad = runner.invoke(app, ["node", "consent", "grant", str(root), "--mrn", "MRN-77",
                              "--purpose", "marketing"])
    assert bad.exit_code != 0 and "unknown purpose" in bad.output
