"""The log's HTTP API, and reading a log through it as a verifier does."""

from __future__ import annotations

import base64

from fastapi import FastAPI
from fastapi.testclient import TestClient

from medspace.ledger import merkle
from medspace.ledger.client import HttpLogSource
from medspace.ledger.logapi import log_router
from medspace.ledger.receipt import verify_receipt
from medspace.ledger.verify import verify_log
from tests.consortium import Consortium


def _client(consortium: Consortium) -> TestClient:
    app = FastAPI()
    app.include_router(log_router(consortium.store))
    return TestClient(app, base_url="http://log.test")


def test_checkpoint_is_served_only_once_witnessed(consortium: Consortium) -> None:
    client = _client(consortium)
    assert client.get("/log/v1/checkpoint/signed").status_code == 404
    consortium.record(3)
    assert client.get("/log/v1/checkpoint").status_code == 404
    assert client.get("/log/v1/checkpoint/signed").status_code == 200
    consortium.publish()
    cosigned = client.get("/log/v1/checkpoint")
    assert cosigned.status_code == 200
    assert consortium.trust.check_witnessed(cosigned.text).size == 3


def test_entries_and_proofs_over_http_verify(consortium: Consortium) -> None:
    consortium.record(9)
    client = _client(consortium)
    entries = [base64.b64decode(e) for e in
               client.get("/log/v1/entries", params={"start": 0, "end": 9}).json()["entries"]]
    assert entries == consortium.store.entries(0, 9)
    root = merkle.root(entries)
    proof = client.get("/log/v1/proof/inclusion", params={"index": 4, "size": 9}).json()
    merkle.verify_inclusion(4, 9, merkle.leaf_hash(entries[4]),
                            [base64.b64decode(h) for h in proof["proof"]], root)
    proof = client.get("/log/v1/proof/consistency", params={"first": 5, "second": 9}).json()
    merkle.verify_consistency(5, 9, [base64.b64decode(h) for h in proof["proof"]],
                              merkle.root(entries[:5]), root)


def test_bad_requests_get_400_with_the_reason(consortium: Consortium) -> None:
    consortium.record(2)
    client = _client(consortium)
    answer = client.get("/log/v1/proof/inclusion", params={"index": 5, "size": 2})
    assert answer.status_code == 400 and "size" in answer.json()["detail"]
    assert client.get("/log/v1/entries", params={"start": 0, "end": 5000}).status_code == 400
    assert client.get("/log/v1/entries", params={"start": -1, "end": 1}).status_code == 422
    assert client.get("/log/v1/receipt", params={"index": 0}).status_code == 404


def test_receipt_over_http_checks_offline(consortium: Consortium) -> None:
    consortium.record(4)
    consortium.publish()
    answer = _client(consortium).get("/log/v1/receipt", params={"index": 1})
    assert verify_receipt(answer.content, consortium.trust) == consortium.store.entries(1, 2)[0]


def test_verifier_reads_a_log_over_http_page_by_page(consortium: Consortium) -> None:
    for _ in range(3):
        consortium.record(700)
    consortium.publish()
    report = verify_log(HttpLogSource("http://log.test", _client(consortium)), consortium.trust)
    assert report.ok, report.failure
    assert report.entries == 2100 and report.witnessed_size == 2100
