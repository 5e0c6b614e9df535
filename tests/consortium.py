"""A small consortium for ledger and CLI tests: a log, a regulator and five hospital witnesses.

Witnesses are the real FastAPI apps, reached through httpx's ASGI transport, so the publisher
speaks the real tlog-witness protocol to them without opening ports.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from medspace.ledger.cosignature import Cosigner
from medspace.ledger.events import new_event
from medspace.ledger.log import TransparencyLog
from medspace.ledger.note import Signer
from medspace.ledger.publisher import Outcome, Publisher, WitnessEndpoint, http_sender
from medspace.ledger.quorum import Log, Policy, consortium_policy
from medspace.ledger.store import LogStore
from medspace.ledger.trust import Trust
from medspace.ledger.witness import Witness
from medspace.ledger.witnessapi import witness_router
from medspace.sqldb import create_engine, sqlite_url

ORIGIN = "hub.medspace.test/audit"
HOSPITALS = ["hospital-a", "hospital-b", "hospital-c", "hospital-d", "hospital-e"]


@dataclass
class Consortium:
    signer: Signer
    cosigners: list[Cosigner]
    witnesses: list[Witness]
    policy: Policy
    trust: Trust
    store: LogStore
    log: TransparencyLog

    def record(self, n: int = 1, action: str = "study.submitted") -> list[int]:
        return [
            self.log.record(
                new_event(actor=f"researcher-{i}", org="uni-x", role="researcher",
                          action=action, subject=f"study:s{i}", decision="info")
            )
            for i in range(n)
        ]

    def publish(self, only: list[str] | None = None) -> Outcome | None:
        """One publishing round, to all witnesses or only those named."""
        urls, mounts = [], {}
        for cosigner, witness in zip(self.cosigners, self.witnesses, strict=True):
            if only is not None and cosigner.name not in only:
                continue
            app = FastAPI()
            app.include_router(witness_router(witness))
            url = f"http://{cosigner.name}"
            mounts[url] = httpx.ASGITransport(app=app)
            urls.append((url, cosigner.verifier()))

        async def run() -> Outcome | None:
            async with httpx.AsyncClient(mounts=mounts) as client:
                endpoints = [WitnessEndpoint(key, http_sender(client, url)) for url, key in urls]
                return await Publisher(self.store, endpoints, self.policy).publish()

        return asyncio.run(run())


@pytest.fixture
def consortium(tmp_path: Path) -> Iterator[Consortium]:
    signer = Signer.generate(ORIGIN)
    cosigners = [Cosigner.generate(name) for name in ["regulator", *HOSPITALS]]
    witnesses = [
        Witness(create_engine(sqlite_url(tmp_path / f"{c.name}.db")), c, [signer.verifier()])
        for c in cosigners
    ]
    policy = consortium_policy(cosigners[0].vkey, [c.vkey for c in cosigners[1:]])
    policy = Policy(policy.witnesses, policy.groups, policy.quorum, (Log(signer.vkey),))
    store = LogStore(create_engine(sqlite_url(tmp_path / "log.db")), ORIGIN)
    log = TransparencyLog(store, signer)
    yield Consortium(signer, cosigners, witnesses, policy, Trust.from_policy(policy), store, log)
    log.close()
