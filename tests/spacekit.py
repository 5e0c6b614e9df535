"""A whole data space in one test process: hub, regulator's witness, hospital nodes, researcher.

Everything speaks real mutual TLS over loopback; the hub and the witness are uvicorn servers on
threads, and the node agents run on an event loop of their own thread, calling out to the hub
exactly as they would from a hospital.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from medspace.httpserve import BackgroundServer, free_port
from medspace.hub.app import create_app
from medspace.hub.space import (
    enroll,
    hub_client,
    init_space,
    open_hub,
    open_space,
    write_policy,
)
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
from medspace.store.load import load
from medspace.store.tokens import person_pseudonym
from medspace.wire.messages import StudyRequest

AS_OF = dt.date(2026, 1, 1)


def hospital_rows(index: int, persons: int) -> dict[str, list[dict[str, Any]]]:
    """A small, deterministic clinical batch: every third person has lung cancer (C34)."""
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
class DataSpace:
    root: Path
    hospitals: list[str]
    hub_url: str
    servers: list[BackgroundServer] = field(default_factory=list)
    nodes: dict[str, Node] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start_agents(self, names: list[str] | None = None) -> None:
        names = names if names is not None else self.hospitals

        async def main() -> None:
            stop = asyncio.Event()
            clients = [node_client(self.root / n) for n in names]
            agents = [Agent(self.nodes[n], self.hub_url, c, poll_seconds=2.0)
                      for n, c in zip(names, clients, strict=True)]
            runs = [asyncio.create_task(a.run(stop)) for a in agents]
            while not self._stop.is_set():
                await asyncio.sleep(0.05)
            stop.set()
            await asyncio.gather(*runs)
            for client in clients:
                await client.aclose()

        self._thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
        self._thread.start()

    def researcher(self) -> httpx.Client:
        return httpx.Client(verify=client_context(participant_tls(self.root / "researcher")),
                            timeout=30)

    def submit(self, request: StudyRequest) -> str:
        key = participant_key(self.root / "researcher")
        with self.researcher() as client:
            answer = client.post(self.hub_url + "/v1/studies",
                                 json=key.sign("study", request.model_dump()).model_dump())
        answer.raise_for_status()
        return answer.json()["study"]

    def wait(self, study: str, timeout: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self.researcher() as client:
            while time.monotonic() < deadline:
                found = client.get(self.hub_url + f"/v1/studies/{study}").json()
                if found["status"] in ("done", "failed"):
                    return found
                time.sleep(0.1)
        raise TimeoutError(f"study {study} did not finish")

    def restart_hub(self) -> None:
        """Stop the hub and start it again on the same port from its folder."""
        self.servers[-1].stop()
        self.servers[-1] = _start_hub(self.root / "hub")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        for server in reversed(self.servers):
            server.stop()


def build(root: Path, hospitals: int = 5, persons: int = 60) -> DataSpace:
    """Set the data space up the way its operators would, then start hub and witness."""
    port = free_port()
    hub_url = f"https://127.0.0.1:{port}"
    space = init_space(root / "hub", "space.test", hub_url, ["127.0.0.1"])
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
    data_space = DataSpace(root, names, hub_url)
    for i, name in enumerate(names):
        join(root / name, enrollments[name], policy_text, linkage_key)
        node, _ = open_node(root / name)
        load(node.store, hospital_rows(i, persons))
        data_space.nodes[name] = node
    witness = Witness(create_engine(sqlite_url(regulator / "witness.db")),
                      load_key(regulator / "keys" / "witness.key", Cosigner),
                      [parse_vkey(enrollment.log_vkey)])
    data_space.servers.append(BackgroundServer(
        witness_app(witness), port=regulator_port,
        tls=server_options(participant_tls(regulator))).start())
    data_space.servers.append(_start_hub(space.root))
    return data_space


def _start_hub(root: Path) -> BackgroundServer:
    space = open_space(root)
    hub = open_hub(space, hub_client(space))
    port = int(space.url.rsplit(":", 1)[1])
    return BackgroundServer(create_app(hub), port=port, tls=server_options(space.tls)).start()
