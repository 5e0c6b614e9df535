"""The hub's API takes only what a node may send: its own messages, and results that carry
their own release event (DESIGN §3.3, §3.7)."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from medspace.hub.space import open_space
from medspace.hub.state import tasks
from medspace.ledger.events import new_event, new_id, parse_event
from medspace.ledger.store import LogStore
from medspace.node.setup import hub_client
from medspace.sqldb import create_engine, sqlite_url
from medspace.wire.messages import (
    APPROVAL_KIND,
    POLL_KIND,
    RESULT_KIND,
    Approval,
    Poll,
    PollRequest,
    StudyRequest,
    TaskResult,
    digest,
    now_ms,
)
from medspace.wire.signing import SignedMessage
from tests.spacekit import AS_OF, DataSpace, build

QUERY = {"cohort": {"as_of": AS_OF.isoformat(), "condition_prefixes": ["C34"]},
         "group_by": ["sex"]}
NODE = "hospital-a"


@pytest.fixture(scope="module")
def space(tmp_path_factory: pytest.TempPathFactory):
    """Three hospitals; hospital-a's agent is not running, so its task waits for the tests."""
    data_space = build(tmp_path_factory.mktemp("space"), hospitals=3, persons=30)
    data_space.start_agents(["hospital-b", "hospital-c"])
    study = data_space.submit(StudyRequest(title="waits for a", kind="count", query=QUERY,
                                           deadline_seconds=600))
    approval = Approval(study=study, node=NODE, decision="permit", decided_by="committee",
                        reason="approved for the test")
    assert _post(data_space, "/v1/approvals",
                 _key(data_space).sign(APPROVAL_KIND, approval.model_dump())).status_code == 200
    data_space.study = study
    data_space.task_id = _pending_task(data_space)
    yield data_space
    data_space.stop()


def _key(space: DataSpace):
    return space.nodes[NODE].key


def _post(space: DataSpace, path: str, message: SignedMessage | PollRequest,
          params: dict[str, Any] | None = None) -> httpx.Response:
    async def run() -> httpx.Response:
        async with hub_client(space.root / NODE) as client:
            return await client.post(space.hub_url + path, json=message.model_dump(),
                                     params=params)

    return asyncio.run(run())


def _pending_task(space: DataSpace, seconds: float = 30.0) -> str:
    engine = open_space(space.root / "hub").state().engine
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            found = conn.execute(sa.select(tasks.c.id).where(
                tasks.c.node == NODE, tasks.c.study == space.study)).scalar()
        if found is not None:
            return str(found)
        time.sleep(0.05)
    raise TimeoutError("the hub did not dispatch hospital-a's task")


def _task_status(space: DataSpace) -> str:
    with open_space(space.root / "hub").state().engine.connect() as conn:
        return str(conn.execute(sa.select(tasks.c.status)
                                .where(tasks.c.id == space.task_id)).scalar_one())


def _logged_subjects(space: DataSpace) -> list[str]:
    hub = open_space(space.root / "hub")
    log = LogStore(create_engine(sqlite_url(hub.root / "ledger.db")), hub.origin)
    return [parse_event(e).subject for e in log.entries(0, log.size)]


def _result(space: DataSpace, subject: str | None = None, digest_of: Any = None
            ) -> SignedMessage:
    payload = {"group_by": ["sex"], "cells": [], "min_cell": 5}
    event = new_event(actor=NODE, org=NODE, role="hospital", action="result.released",
                      subject=subject or f"task:{space.task_id}", purpose="research",
                      decision="permit", payload_digest=digest(digest_of or payload))
    result = TaskResult(task=space.task_id, node=NODE, status="released", payload=payload,
                        payload_digest=digest(payload),
                        event=base64.b64encode(event.to_bytes()).decode("ascii"))
    return _key(space).sign(RESULT_KIND, result.model_dump())


def _poll(space: DataSpace, outbox: list[SignedMessage], signer_key: Any = None
          ) -> httpx.Response:
    poll = Poll(node=NODE, channel="work", sent_at=now_ms(), nonce=new_id())
    signed = (signer_key or _key(space)).sign(POLL_KIND, poll.model_dump())
    return _post(space, "/v1/poll", PollRequest(poll=signed, outbox=outbox),
                 params={"wait": 0})


def test_hub_refuses_a_result_whose_event_is_about_another_task(space: DataSpace) -> None:
    other = f"task:{new_id()}"
    answer = _post(space, "/v1/results", _result(space, subject=other))
    assert answer.status_code == 400
    assert "not the result.released of this task" in answer.json()["detail"]
    assert _task_status(space) == "pending"
    assert other not in _logged_subjects(space)


def test_hub_refuses_a_result_whose_event_logs_another_payload(space: DataSpace) -> None:
    answer = _post(space, "/v1/results", _result(space, digest_of={"cells": "something else"}))
    assert answer.status_code == 400
    assert _task_status(space) == "pending"


def test_poll_refuses_an_outbox_holding_another_nodes_message(space: DataSpace) -> None:
    forged = space.nodes["hospital-b"].key.sign(RESULT_KIND, _result(space).body)
    answer = _poll(space, [forged])
    assert answer.status_code == 403
    assert _task_status(space) == "pending"


def test_poll_answers_at_once_with_what_it_refused(space: DataSpace) -> None:
    unknown = _key(space).sign("gossip", {"hello": "hub"})
    started = time.monotonic()
    answer = _poll(space, [unknown, _result(space, digest_of={"other": 1})])
    assert answer.status_code == 200
    refused = answer.json()["refused"]
    assert len(refused) == 2
    assert "unknown message kind 'gossip'" in refused[0]
    assert "result refused (400)" in refused[1]
    assert time.monotonic() - started < 20  # did not sit out a long poll
    assert _task_status(space) == "pending"


def test_result_handed_over_with_a_poll_is_logged_before_it_is_kept(space: DataSpace) -> None:
    answer = _poll(space, [_result(space)])
    assert answer.status_code == 200 and "refused" not in answer.json()
    assert _task_status(space) == "released"
    assert f"task:{space.task_id}" in _logged_subjects(space)
    with open_space(space.root / "hub").state().engine.connect() as conn:
        kept = json.loads(conn.execute(sa.select(tasks.c.result)
                                       .where(tasks.c.id == space.task_id)).scalar_one())
    assert "event" not in kept and kept["payload_digest"] == _result(space).body["payload_digest"]


def test_researcher_long_poll_returns_as_soon_as_the_study_finishes(space: DataSpace) -> None:
    study = space.submit(StudyRequest(title="b and c", kind="count", query=QUERY,
                                      nodes=["hospital-b", "hospital-c"], deadline_seconds=60))
    started = time.monotonic()
    found = space.researcher().get(space.hub_url + f"/v1/studies/{study}",
                                   params={"wait": 25}, timeout=40).json()
    assert found["status"] == "done", found
    assert time.monotonic() - started < 25


def test_unknown_study_is_404_even_when_waiting(space: DataSpace) -> None:
    answer = space.researcher().get(space.hub_url + "/v1/studies/study-000000000000",
                                    params={"wait": 1})
    assert answer.status_code == 404
