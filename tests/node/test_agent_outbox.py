"""A node never loses an answer to a hub it cannot reach: it stays in the outbox."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from medspace.httpserve import free_port
from medspace.node.agent import Agent
from medspace.node.setup import hub_client
from medspace.wire.messages import APPROVAL_KIND, Approval
from medspace.wire.signing import SignedMessage
from tests.spacekit import DataSpace, build


@pytest.fixture(scope="module")
def space(tmp_path_factory: pytest.TempPathFactory):
    data_space = build(tmp_path_factory.mktemp("space"), hospitals=1, persons=10)
    yield data_space
    data_space.stop()


def test_answers_stay_in_the_outbox_while_the_hub_is_unreachable(space: DataSpace) -> None:
    node = space.nodes["hospital-a"]
    approval = Approval(study="study-abc", node="hospital-a", decision="permit",
                        decided_by="committee", reason="approved")
    signed = node.key.sign(APPROVAL_KIND, approval.model_dump())

    async def run() -> list[SignedMessage]:
        async with hub_client(space.root / "hospital-a") as client:
            agent = Agent(node, f"https://127.0.0.1:{free_port()}", client)
            agent.queue("work", signed)
            with pytest.raises(httpx.ConnectError):
                await agent.flush()
            return agent.unsent("work")

    assert asyncio.run(run()) == [signed]


def test_flush_hands_the_outbox_to_the_hub_and_empties_it(space: DataSpace) -> None:
    node = space.nodes["hospital-a"]
    approval = Approval(study="study-unknown", node="hospital-a", decision="permit",
                        decided_by="committee", reason="approved")

    async def run() -> list[SignedMessage]:
        async with hub_client(space.root / "hospital-a") as client:
            agent = Agent(node, space.hub_url, client)
            agent.queue("work", node.key.sign(APPROVAL_KIND, approval.model_dump()))
            await agent.flush()
            return agent.unsent("work")

    assert asyncio.run(run()) == []
