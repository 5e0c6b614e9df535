"""A whole data space set up as its operators would, on loopback: for tests and benchmarks.

The operator creates the space and enrols the regulator, the hospitals and a researcher; each
hospital joins and has its store filled. Then either everything runs in this process — the
regulator's witness and the hub as uvicorn servers on threads speaking mutual TLS, the nodes'
agents on an event loop of their own thread, calling out to the hub exactly as they would from a
hospital — so that a test can reach into any party's state; or, as in ``medspace demo`` and in
a deployment, every party runs as its own process (``as_processes``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from medspace.demo.services import Service, command
from medspace.httpserve import BackgroundServer, free_port
from medspace.hub.app import create_app
from medspace.hub.space import enroll, hub_client, init_space, open_hub, open_space, write_policy
from medspace.hub.state import FINISHED
from medspace.ledger.cosignature import Cosigner
from medspace.ledger.keys import load_key
from medspace.ledger.note import parse_vkey
from medspace.ledger.witness import Witness
from medspace.ledger.witnessapi import witness_app
from medspace.node.agent import Agent, Node
from medspace.node.setup import hub_client as node_client
from medspace.node.setup import init_node, join, open_node
from medspace.pki.enrollment import accept, init_participant, participant_key, participant_tls
from medspace.pki.tls import client_context, server_options
from medspace.sqldb import create_engine, sqlite_url
from medspace.store.engine import ClinicalStore
from medspace.store.tokens import person_pseudonym
from medspace.wire.messages import WITHDRAWAL_KIND, StudyRequest, Withdrawal

Filler = Callable[[int, ClinicalStore], None]
"""Fills hospital number ``i``'s clinical store."""


def countable_rows(index: int, persons: int) -> dict[str, list[dict[str, Any]]]:
    """A small, deterministic clinical batch for hospital ``index``, easy to count by hand:
    every third person has lung cancer (C34), sexes alternate, born 1950–1999."""
    rows: dict[str, list[dict[str, Any]]] = {"person": [], "condition": []}
    for n in range(persons):
        person = person_pseudonym(f"H{index}-{n:05d}", b"k" * 32)
        rows["person"].append({"person_id": person, "sex": "female" if n % 2 else "male",
                               "birth_year": 1950 + (n * 7) % 50, "birth_month": 1 + n % 12})
        if n % 3 == 0:
            rows["condition"].append({"person_id": person, "visit_id": None,
                                      "condition_source_value": "C34.1",
                                      "start_date": dt.date(2020, 1, 1)})
    return rows


@dataclass
class LocalDataSpace:
    """The running servers, the nodes and the researcher of a data space in this process."""

    root: Path
    hospitals: list[str]
    hub_url: str
    witness_port: int
    servers: list[BackgroundServer] = field(default_factory=list)
    nodes: dict[str, Node] = field(default_factory=dict)
    _client: httpx.Client | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start_agents(self, names: list[str] | None = None, poll_seconds: float = 2.0) -> None:
        """Run the agents of ``names`` (default: every hospital) until ``stop``."""
        names = self.hospitals if names is None else names

        async def main() -> None:
            stop = asyncio.Event()
            clients = [node_client(self.root / name) for name in names]
            agents = [Agent(self.nodes[name], self.hub_url, client, poll_seconds=poll_seconds)
                      for name, client in zip(names, clients, strict=True)]
            runs = [asyncio.create_task(agent.run(stop)) for agent in agents]
            while not self._stop.is_set():
                await asyncio.sleep(0.05)
            stop.set()
            await asyncio.gather(*runs)
            for client in clients:
                await client.aclose()

        self._thread = threading.Thread(target=asyncio.run, args=(main(),), name="agents",
                                        daemon=True)
        self._thread.start()

    def as_processes(self) -> list[Service]:
        """The same parties as separate processes, each the command its operator would run.

        For a data space built with ``serve=False``: nothing of it runs in this process.
        """
        regulator = self.root / "regulator"
        hub = self.root / "hub"
        port = self.hub_url.rsplit(":", 1)[1]
        return [
            Service("the regulator's witness",
                    command("witness", "--db", str(regulator / "witness.db"),
                            "--key", str(regulator / "keys" / "witness.key"),
                            "--log", open_space(hub).log_signer().vkey,
                            "--port", str(self.witness_port), "--tls", str(regulator)),
                    regulator / "witness.log",
                    f"https://127.0.0.1:{self.witness_port}/witness/v1/key"),
            Service("the hub", command("hub", str(hub), "--port", port), hub / "hub.log",
                    self.hub_url + "/log/v1/checkpoint/signed"),
            *(Service(name, command("node", "run", str(self.root / name), "--api-port", "0"),
                      self.root / name / "node.log") for name in self.hospitals),
        ]

    def researcher(self) -> httpx.Client:
        """The researcher's HTTPS client (mutual TLS), opened once."""
        if self._client is None:
            tls = client_context(participant_tls(self.root / "researcher"))
            self._client = httpx.Client(verify=tls, timeout=30)
        return self._client

    def wait_for_nodes(self, names: list[str] | None = None, seconds: float = 30.0) -> None:
        """Return once the nodes of ``names`` (default: all) have called in to the hub."""
        wanted = set(self.hospitals if names is None else names)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            nodes = self.researcher().get(self.hub_url + "/v1/nodes").json()
            if all(n["last_seen_ms"] for n in nodes if n["id"] in wanted):
                return
            time.sleep(0.05)
        raise TimeoutError(f"not every node polled the hub within {seconds:.0f} s")

    def submit(self, request: StudyRequest) -> str:
        """Submit a signed study as the researcher; return its id."""
        key = participant_key(self.root / "researcher")
        answer = self.researcher().post(self.hub_url + "/v1/studies",
                                        json=key.sign("study", request.model_dump()).model_dump())
        answer.raise_for_status()
        return str(answer.json()["study"])

    def withdraw(self, study: str, reason: str) -> httpx.Response:
        """Withdraw a study as the researcher who submitted it; the hub's answer."""
        key = participant_key(self.root / "researcher")
        withdrawal = Withdrawal(study=study, reason=reason)
        return self.researcher().post(
            self.hub_url + f"/v1/studies/{study}/withdraw",
            json=key.sign(WITHDRAWAL_KIND, withdrawal.model_dump()).model_dump())

    def wait(self, study: str, seconds: float = 60.0) -> dict[str, Any]:
        """The study once it has finished (done, failed or withdrawn); TimeoutError after
        ``seconds``."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            found: dict[str, Any] = self.researcher().get(
                self.hub_url + f"/v1/studies/{study}", params={"wait": min(left, 20.0)},
                timeout=30).json()
            if found["status"] in FINISHED:
                return found
        raise TimeoutError(f"study {study} did not finish within {seconds:.0f} s")

    def restart_hub(self) -> None:
        """Stop the hub and start it again on the same port from its folder."""
        self.servers[-1].stop()
        self.servers[-1] = start_hub(self.root / "hub")

    def stop(self) -> None:
        """Stop the agents, then the servers, and close what the nodes hold open."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
        if self._client is not None:
            self._client.close()
        for server in reversed(self.servers):
            server.stop()
        for node in self.nodes.values():
            node.journal.close()
            node.store.close()


def start_hub(root: Path) -> BackgroundServer:
    """The hub of the data space in ``root``, serving mutual TLS on its own port."""
    space = open_space(root)
    hub = open_hub(space, hub_client(space))
    port = int(space.url.rsplit(":", 1)[1])
    return BackgroundServer(create_app(hub), port=port, tls=server_options(space.tls)).start()


def build(root: Path, hospitals: int, fill_store: Filler, serve: bool = True) -> LocalDataSpace:
    """Set the data space up, fill the stores, and start the witness and the hub (not the agents)
    in this process — or, with ``serve=False``, leave them for ``as_processes``.

    If anything fails on the way, whatever was started is stopped before the error goes on.
    """
    hub_url = f"https://127.0.0.1:{free_port()}"
    space = init_space(root / "hub", "space.local", hub_url, ["127.0.0.1"])
    regulator = root / "regulator"
    regulator_port = free_port()
    enrollment = enroll(space, init_participant(regulator, "regulator", "regulator", "nhc"),
                        ["127.0.0.1"], witness_url=f"https://127.0.0.1:{regulator_port}")
    accept(regulator, enrollment)
    names = [f"hospital-{chr(ord('a') + i)}" for i in range(hospitals)]
    enrollments = {n: enroll(space, init_node(root / n, n, n), ["127.0.0.1"]) for n in names}
    researcher = root / "researcher"
    accept(researcher, enroll(space, init_participant(researcher, "researcher-1", "researcher",
                                                      "university"), ["127.0.0.1"]))
    policy_text = write_policy(space).format()
    linkage_key = os.urandom(32)
    local = LocalDataSpace(root, names, hub_url, regulator_port)
    try:
        for i, name in enumerate(names):
            join(root / name, enrollments[name], policy_text, linkage_key)
            node, _ = open_node(root / name)
            local.nodes[name] = node
            fill_store(i, node.store)
        if not serve:
            local.stop()
            local.nodes.clear()
            return local
        witness = Witness(create_engine(sqlite_url(regulator / "witness.db")),
                          load_key(regulator / "keys" / "witness.key", Cosigner),
                          [parse_vkey(enrollment.log_vkey)])
        local.servers.append(BackgroundServer(
            witness_app(witness), port=regulator_port,
            tls=server_options(participant_tls(regulator))).start())
        local.servers.append(start_hub(space.root))
    except BaseException:
        local.stop()
        raise
    return local
