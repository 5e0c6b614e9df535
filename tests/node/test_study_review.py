"""A study the standing rule does not cover waits for a person, whose decision the node sends."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from medspace.cli import app
from medspace.hub.space import open_space
from medspace.ledger.events import parse_event
from medspace.ledger.store import LogStore
from medspace.pki.enrollment import participant_key
from medspace.sqldb import create_engine, sqlite_url
from medspace.wire.messages import WITHDRAWAL_KIND, StudyRequest, Withdrawal
from tests.spacekit import AS_OF, DataSpace, build

QUERY = {"cohort": {"as_of": AS_OF.isoformat(), "condition_prefixes": ["C34"]},
         "group_by": ["sex"]}


@pytest.fixture
def space(tmp_path: Path):
    data_space = build(tmp_path, hospitals=2, persons=60)
    node = data_space.nodes["hospital-a"]
    node.governance = replace(node.governance, auto_approval=None)
    data_space.start_agents()
    yield data_space
    data_space.stop()


def _waiting(space: DataSpace, seconds: float = 20.0) -> list[str]:
    """The studies hospital-a's agent has taken in and that wait for a person."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        waiting = [r.id for r in space.nodes["hospital-a"].state.studies(undecided=True)]
        if waiting:
            return waiting
        time.sleep(0.1)
    return []


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, " ".join(result.output.split())


def _journal(space: DataSpace) -> list[dict[str, object]]:
    store = space.nodes["hospital-a"].journal.store
    return [json.loads(parse_event(e).to_bytes()) for e in store.entries(0, store.size)]


def test_a_study_waits_for_a_person_who_approves_it(space: DataSpace) -> None:
    root = str(space.root / "hospital-a")
    study = space.submit(StudyRequest(title="by hand", kind="count", query=QUERY,
                                      deadline_seconds=60))
    assert _waiting(space) == [study]
    code, listed = _cli("node", "studies", "list", root)
    assert code == 0 and study in listed and "waiting" in listed

    code, said = _cli("node", "studies", "approve", root, study, "--by", "dr-li",
                      "--reason", "ethics approval 2026-114")
    assert code == 0, said
    outcome = space.wait(study)
    assert outcome["status"] == "done", outcome
    assert outcome["result"]["result"]["hospitals"] == ["hospital-a", "hospital-b"]
    decided = [e for e in _journal(space) if e["action"] == "study.approved"]
    assert decided and "decided by dr-li" in str(decided[-1]["reason"])

    code, again = _cli("node", "studies", "deny", root, study, "--by", "dr-wang",
                       "--reason", "changed my mind")
    assert code != 0 and "already decided: permit by dr-li" in again

    code, said = _cli("node", "studies", "revoke", root, study, "--by", "dr-wang",
                      "--reason", "consent withdrawn by the ethics board")
    assert code == 0, said
    code, listed = _cli("node", "studies", "list", root, "--all")
    assert "revoked" in listed
    record = space.nodes["hospital-a"].state.study(study)
    assert record is not None and (record.status, record.revoked_by) == ("revoked", "dr-wang")
    assert any(e["action"] == "study.revoked" for e in _journal(space))


def test_a_person_denies_a_study_and_the_researcher_learns_why(space: DataSpace) -> None:
    root = str(space.root / "hospital-a")
    study = space.submit(StudyRequest(title="denied", kind="count", query=QUERY,
                                      deadline_seconds=60))
    assert _waiting(space) == [study]
    code, said = _cli("node", "studies", "deny", root, study, "--by", "dr-li", "--reason", " ")
    assert code != 0 and "needs a reason" in said
    code, said = _cli("node", "studies", "deny", root, study, "--by", "Dr Li Wei",
                      "--reason", "no ethics approval")
    assert code != 0 and "not a staff id" in said
    code, said = _cli("node", "studies", "deny", root, study, "--by", "dr-li",
                      "--reason", "no ethics approval")
    assert code == 0, said
    outcome = space.wait(study)
    assert outcome["result"]["denied"] == ["hospital-a"]


def test_deciding_a_study_never_offered_is_refused(space: DataSpace) -> None:
    code, said = _cli("node", "studies", "approve", str(space.root / "hospital-a"),
                      "study-nope", "--by", "dr-li")
    assert code != 0 and "no study study-nope" in said


def test_the_researcher_withdraws_a_study_waiting_for_a_person_and_the_log_says_so(
    space: DataSpace,
) -> None:
    study = space.submit(StudyRequest(title="withdrawn", kind="count", query=QUERY,
                                      deadline_seconds=60))
    assert _waiting(space) == [study]
    answer = space.withdraw(study, "the protocol changed")
    assert answer.status_code == 200, answer.text
    outcome = space.wait(study)
    assert outcome["status"] == "withdrawn"
    assert outcome["result"] == {"status": "withdrawn", "reason": "the protocol changed"}
    again = space.withdraw(study, "twice")
    assert again.status_code == 409 and "already finished" in again.text
    hub = open_space(space.root / "hub")
    log = LogStore(create_engine(sqlite_url(hub.root / "ledger.db")), hub.origin)
    revoked = [parse_event(e) for e in log.entries(0, log.size)
               if parse_event(e).action == "study.revoked"]
    assert [(e.subject, e.role, e.reason) for e in revoked] == [
        (f"study:{study}", "researcher", "the protocol changed")]
    code, said = _cli("node", "studies", "approve", str(space.root / "hospital-a"), study,
                      "--by", "dr-li")
    assert code == 0, said
    assert space.nodes["hospital-a"].state.released(study) == 0


def test_no_one_but_a_researcher_may_withdraw_a_study(space: DataSpace) -> None:
    study = space.submit(StudyRequest(title="not yours", kind="count", query=QUERY,
                                      deadline_seconds=60))
    node_key = participant_key(space.root / "hospital-a")
    body = Withdrawal(study=study, reason="a hospital tries").model_dump()
    answer = space.researcher().post(space.hub_url + f"/v1/studies/{study}/withdraw",
                                     json=node_key.sign(WITHDRAWAL_KIND, body).model_dump())
    assert answer.status_code == 403, answer.text
    assert space.withdraw("study-nope", "no such study").status_code == 404
    hub = open_space(space.root / "hub")
    log = LogStore(create_engine(sqlite_url(hub.root / "ledger.db")), hub.origin)
    denied = [parse_event(e) for e in log.entries(0, log.size)
              if parse_event(e).action == "access.denied"]
    assert [(e.actor, e.role, e.subject) for e in denied] == [
        ("hospital-a", "hospital", "api:withdrawal")]
