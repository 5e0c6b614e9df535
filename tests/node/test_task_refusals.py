"""A node refuses, with a logged reason, every task it must not answer (DESIGN §3.2, §3.7)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from dataclasses import replace
from typing import Any

import pytest
import sqlalchemy as sa

from medspace.deid.egress import EgressFilter
from medspace.hub.space import open_space
from medspace.hub.state import tasks
from medspace.ledger.events import new_id, parse_event
from medspace.ledger.store import LogStore
from medspace.node.agent import Agent
from medspace.node.agreement import ends
from medspace.node.review import revoke_study
from medspace.node.setup import hub_client, open_vault
from medspace.node.state import studies
from medspace.policy.odrl import parse_jsonld, parse_yaml
from medspace.sqldb import create_engine, sqlite_url
from medspace.store.vault import Identity
from medspace.wire.messages import (
    TASK_KIND,
    StudyRequest,
    Task,
    TaskCore,
    TaskResult,
    now_ms,
)
from medspace.wire.signing import SignedMessage, WireKey
from tests.spacekit import AS_OF, DataSpace, build

QUERY = {"cohort": {"as_of": AS_OF.isoformat(), "condition_prefixes": ["C34"]},
         "group_by": ["sex"]}


@pytest.fixture(scope="module")
def space(tmp_path_factory: pytest.TempPathFactory):
    data_space = build(tmp_path_factory.mktemp("space"), hospitals=3, persons=30)
    data_space.start_agents()
    study = data_space.submit(StudyRequest(title="baseline", kind="count", query=QUERY))
    assert data_space.wait(study)["status"] == "done"
    data_space.study = study
    yield data_space
    data_space.stop()


def _handle(space: DataSpace, message: SignedMessage) -> TaskResult | None:
    node = space.nodes["hospital-a"]

    async def run() -> TaskResult | None:
        async with hub_client(space.root / "hospital-a") as client:
            agent = Agent(node, space.hub_url, client)
            result = await agent.handle_task(message)
            await agent.flush()
            return result

    return asyncio.run(run())


def _dispatched(space: DataSpace) -> SignedMessage:
    """The task the hub really sent hospital-a for the baseline study."""
    state = open_space(space.root / "hub").state()
    with state.engine.connect() as conn:
        text = conn.execute(sa.select(tasks.c.message).where(
            tasks.c.node == "hospital-a", tasks.c.study == space.study)).scalar_one()
    return SignedMessage.model_validate_json(text)


def _resigned(space: DataSpace, change: dict[str, Any], key: WireKey | None = None
              ) -> SignedMessage:
    task = Task.model_validate(_dispatched(space).body)
    core = TaskCore.model_validate({**task.core.model_dump(), "id": new_id(),
                                    "nonce": new_id(), **change})
    key = key or open_space(space.root / "hub").wire_key()
    return key.sign(TASK_KIND, Task(core=core, authorization=task.authorization).model_dump())


def _last_journal_event(space: DataSpace) -> dict[str, Any]:
    store = space.nodes["hospital-a"].journal.store
    size = store.size
    return json.loads(parse_event(store.entries(size - 1, size)[0]).to_bytes())


def _assert_refused(space: DataSpace, result: TaskResult | None, words: str) -> None:
    assert result is not None and result.status == "refused"
    assert result.reason is not None and words in result.reason
    event = _last_journal_event(space)
    assert event["action"] == "task.refused" and words in event["reason"]


def test_node_refuses_task_with_a_bad_signature(space: DataSpace) -> None:
    forged = _resigned(space, {}, key=WireKey.generate("hub"))
    assert _handle(space, forged) is None
    event = _last_journal_event(space)
    assert event["action"] == "task.refused"
    assert "not signed by the hub" in event["reason"]


def test_node_refuses_an_expired_task(space: DataSpace) -> None:
    past = now_ms() - 60_000
    result = _handle(space, _resigned(space, {"issued_at": past - 1000, "expires_at": past}))
    _assert_refused(space, result, "expired")


def test_node_refuses_a_task_of_an_unknown_kind(space: DataSpace) -> None:
    result = _handle(space, _resigned(space, {"kind": "raw_rows"}))
    _assert_refused(space, result, "unknown task kind")


def test_node_refuses_a_task_for_a_study_it_has_not_approved(space: DataSpace) -> None:
    result = _handle(space, _resigned(space, {"study": "study-never-approved"}))
    _assert_refused(space, result, "has not approved")


def test_node_refuses_a_task_whose_dispatch_is_not_in_the_log(space: DataSpace) -> None:
    result = _handle(space, _resigned(space, {}))
    _assert_refused(space, result, "not its dispatch")


def test_node_refuses_a_task_asking_other_than_the_study_it_approved(space: DataSpace) -> None:
    result = _handle(space, _resigned(space, {"query": {**QUERY, "group_by": ["age_band"]}}))
    _assert_refused(space, result, "something other than the study")
    result = _handle(space, _resigned(space, {"kind": "count", "query": {"cohort": {
        "as_of": AS_OF.isoformat()}, "group_by": ["sex"]}}))
    _assert_refused(space, result, "something other than the study")


def test_node_refuses_a_task_addressed_to_another_node(space: DataSpace) -> None:
    result = _handle(space, _resigned(space, {"node": "hospital-b"}))
    _assert_refused(space, result, "addressed to hospital-b")


def test_replayed_task_gets_the_same_signed_answer_not_a_new_release(space: DataSpace) -> None:
    journal = space.nodes["hospital-a"].journal.store
    before = journal.size
    result = _handle(space, _dispatched(space))
    assert result is not None and result.status == "released"
    assert journal.size == before


def test_node_refuses_a_task_reusing_another_tasks_nonce(space: DataSpace) -> None:
    original = Task.model_validate(_dispatched(space).body)
    result = _handle(space, _resigned(space, {"nonce": original.core.nonce}))
    _assert_refused(space, result, "replayed")


def test_refusals_reach_the_hubs_audit_log(space: DataSpace) -> None:
    hub = open_space(space.root / "hub")
    log = LogStore(create_engine(sqlite_url(hub.root / "ledger.db")), hub.origin)
    actions = [parse_event(e).action for e in log.entries(0, log.size)]
    assert "task.refused" in actions


def test_node_refuses_to_release_a_result_that_spells_a_patients_name(space: DataSpace) -> None:
    node = space.nodes["hospital-a"]
    before = node.egress
    node.egress = EgressFilter([Identity(name="Group By", mrn="planted")])
    try:
        study = space.submit(StudyRequest(title="egress", kind="count", query=QUERY))
        space.wait(study)
    finally:
        node.egress = before
    event = _last_journal_event(space)
    assert event["action"] == "task.refused"
    assert "egress filter" in event["reason"] and "Group By" not in event["reason"]


def test_node_screens_for_a_patient_ingested_while_its_agent_runs(space: DataSpace) -> None:
    vault = open_vault(space.root / "hospital-a")
    person = "ps:" + "e" * 32
    vault.put(person, Identity(name="Group By", mrn="planted-while-running"), None)
    try:
        space.wait(space.submit(StudyRequest(title="ingested", kind="count", query=QUERY)))
        event = _last_journal_event(space)
    finally:
        vault.delete([person])
    assert event["action"] == "task.refused"
    assert "egress filter" in event["reason"] and "Group By" not in event["reason"]
    space.wait(space.submit(StudyRequest(title="removed", kind="count", query=QUERY)))
    assert _last_journal_event(space)["action"] == "result.released"


def test_a_refusal_whose_reason_names_a_patient_is_sent_without_the_name(
    space: DataSpace,
) -> None:
    vault = open_vault(space.root / "hospital-a")
    person = "ps:" + "f" * 32
    vault.put(person, Identity(name="王芳芳", mrn="planted-in-reason"), None)
    try:
        result = _handle(space, _resigned(space, {"kind": "王芳芳"}))
    finally:
        vault.delete([person])
    assert result is not None and result.status == "refused"
    assert "withheld" in (result.reason or "") and "王芳芳" not in (result.reason or "")
    event = _last_journal_event(space)
    assert event["action"] == "task.refused" and "王芳芳" not in event["reason"]


def test_node_refuses_the_tasks_of_a_study_it_revoked(space: DataSpace) -> None:
    study = space.submit(StudyRequest(title="to revoke", kind="count", query=QUERY))
    assert space.wait(study)["status"] == "done"
    node = space.nodes["hospital-a"]
    revoke_study(node.state, node.journal, node.governance, study=study, revoked_by="dr-li",
                 reason="the ethics board withdrew its approval", now=dt.datetime.now(dt.UTC))
    result = _handle(space, _resigned(space, {"study": study}))
    _assert_refused(space, result, f"this hospital revoked {study}")


def _approved_study(space: DataSpace, title: str) -> str:
    study = space.submit(StudyRequest(title=title, kind="count", query=QUERY))
    assert space.wait(study)["status"] == "done"
    return study


def test_node_refuses_a_task_once_its_agreement_has_ended(space: DataSpace) -> None:
    study = _approved_study(space, "agreement ends")
    node = space.nodes["hospital-a"]
    record = node.state.study(study)
    assert record is not None and record.agreement is not None
    ended = json.loads(json.dumps(record.agreement).replace(
        str(ends(parse_jsonld(record.agreement)).isoformat(timespec="seconds")),
        "2026-01-01T00:00:00+00:00"))
    with node.state.engine.begin() as conn:
        conn.execute(sa.update(studies).where(studies.c.id == study)
                     .values(agreement=json.dumps(ended)))
    result = _handle(space, _resigned(space, {"study": study}))
    _assert_refused(space, result, "the agreement does not permit this task")


@pytest.mark.parametrize(("policy", "words"), [
    ("uid: urn:x\npermission:\n  - action: aggregate\n    constraint:\n"
     "      purpose: {isA: public-health}\n", "usage policy does not permit"),
    ("uid: urn:x\npermission:\n  - action: aggregate\n    constraint:\n"
     "      patientMood: {eq: calm}\n", "patientMood"),
])
def test_node_refuses_a_task_its_usage_policy_no_longer_permits(
    space: DataSpace, policy: str, words: str,
) -> None:
    study = _approved_study(space, f"policy changes: {words}")
    node = space.nodes["hospital-a"]
    before = node.governance
    node.governance = replace(before, usage_policy=parse_yaml(policy))
    try:
        result = _handle(space, _resigned(space, {"study": study}))
    finally:
        node.governance = before
    _assert_refused(space, result, words)
