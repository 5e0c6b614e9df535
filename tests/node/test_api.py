"""The node's API over real HTTPS: the hospital's people change consent and decide studies while
the node runs, each only as far as their role reaches, and every refusal is journalled."""

from __future__ import annotations

import datetime as dt
import json
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import rfc8785
from cryptography import x509
from cryptography.x509.oid import NameOID
from typer.testing import CliRunner

from medspace.cli import app
from medspace.demo.local import build as build_local
from medspace.httpserve import BackgroundServer, free_port
from medspace.keyfiles import private_secret, read_private
from medspace.node.api import node_api, serve_api
from medspace.node.people import People, Role
from medspace.node.setup import open_vault
from medspace.store.consent import history
from medspace.store.load import load
from medspace.store.tokens import linkage_token, person_pseudonym
from medspace.store.vault import Identity
from medspace.wire.messages import StudyRequest
from tests.spacekit import AS_OF, DataSpace, build

QUERY = {"cohort": {"as_of": AS_OF.isoformat(), "condition_prefixes": ["C34"]},
         "group_by": ["sex"]}
#: Patients the tests admit at hospital-a, findable by MRN and ID number as the desk knows them.
PATIENTS = {"MRN-901": "11010519491231002X", "MRN-902": "110105198001011234"}


@dataclass
class NodeApi:
    """hospital-a's API, served as `medspace node run` serves it, and a client trusting the CA."""

    space: DataSpace
    server: BackgroundServer
    client: httpx.Client
    tokens: dict[str, str]

    @property
    def root(self) -> Path:
        return self.space.root / "hospital-a"

    def call(self, method: str, path: str, who: str | None, **kwargs: Any) -> httpx.Response:
        headers = {} if who is None else {"Authorization": f"Bearer {self.tokens[who]}"}
        return self.client.request(method, path, headers=headers, **kwargs)

    def journal(self) -> list[dict[str, Any]]:
        store = self.space.nodes["hospital-a"].journal.store
        return [json.loads(entry) for entry in store.entries(0, store.size)]

    def denials(self, actor: str) -> list[dict[str, Any]]:
        return [e for e in self.journal()
                if e["action"] == "access.denied" and e["actor"] == actor]

    def close(self) -> None:
        self.client.close()
        self.server.stop()


def _person_of(root: Path, mrn: str) -> str:
    return person_pseudonym(mrn, private_secret(root / "keys" / "pseudonym.key"))


def _admit(space: DataSpace, mrn: str, id_number: str) -> str:
    """A male patient with lung cancer at hospital-a, as an ingest would have stored him."""
    root = space.root / "hospital-a"
    person = _person_of(root, mrn)
    load(space.nodes["hospital-a"].store, {
        "person": [{"person_id": person, "sex": "male", "birth_year": 1960, "birth_month": 3}],
        "condition": [{"person_id": person, "visit_id": None, "condition_source_value": "C34.1",
                       "start_date": dt.date(2020, 1, 1)}]})
    open_vault(root).put(person, Identity(name="王芳", mrn=mrn, id_number=id_number),
                         linkage_token(id_number, read_private(root / "keys" / "linkage.key")))
    return person


def _serve(space: DataSpace) -> NodeApi:
    root = space.root / "hospital-a"
    for mrn, id_number in PATIENTS.items():
        _admit(space, mrn, id_number)
    people = People.open(root)
    tokens = {
        "admin": people.add_person("it-1", Role.ADMIN),
        "desk": people.add_person("desk-3", Role.DESK),
        "clinician": people.add_person("dr-zhao", Role.CLINICIAN),
        "auditor": people.add_person("audit-1", Role.AUDITOR),
        "patient": people.add_person("pt-901", Role.PATIENT,
                                     patient=_person_of(root, "MRN-901")),
    }
    server = serve_api(node_api(root, space.nodes["hospital-a"]), root, "127.0.0.1",
                       free_port())
    trust = ssl.create_default_context(cafile=str(root / "tls" / "ca.crt"))
    return NodeApi(space, server, httpx.Client(base_url=server.url, verify=trust, timeout=60),
                   tokens)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeApi]:
    """hospital-a's API over a store of hand-made patients; its agent is not needed here."""
    space = build(tmp_path_factory.mktemp("space"), hospitals=1, persons=10)
    served = _serve(space)
    yield served
    served.close()
    space.stop()


@pytest.fixture
def running(tmp_path: Path) -> Iterator[NodeApi]:
    """Two hospitals whose agents run; hospital-a decides studies by a person, and serves its
    API next to its agent."""
    space = build(tmp_path, hospitals=2, persons=60)
    node = space.nodes["hospital-a"]
    node.governance = replace(node.governance, auto_approval=None)
    served = _serve(space)
    space.start_agents()
    yield served
    served.close()
    space.stop()


def _approve_everywhere(api: NodeApi, study: str, seconds: float = 20.0) -> None:
    """Approve ``study`` at hospital-a by its administrator, once its agent has taken it in."""
    deadline = time.monotonic() + seconds
    while api.space.nodes["hospital-a"].state.study(study) is None:
        assert time.monotonic() < deadline, "hospital-a never received the study"
        time.sleep(0.05)
    approved = api.call("POST", f"/v1/studies/{study}/approve", "admin",
                        json={"reason": "ethics approval 2026-114"})
    assert approved.status_code == 200, approved.text


def test_a_desk_revocation_through_the_api_drops_the_patient_from_the_next_identical_study(
    running: NodeApi,
) -> None:
    space = running.space
    first = space.submit(StudyRequest(title="lung cancer by sex", kind="count", query=QUERY))
    _approve_everywhere(running, first)
    outcome = space.wait(first)
    assert outcome["status"] == "done", outcome
    before = {c["key"][0]: c["count"] for c in outcome["result"]["result"]["pooled"]}

    revoked = running.call("POST", "/v1/consent", "desk",
                           json={"action": "revoke", "purpose": "research", "mrn": "MRN-901"})
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["person_id"] == _person_of(running.root, "MRN-901")

    second = space.submit(StudyRequest(title="lung cancer by sex, again", kind="count",
                                       query=QUERY))
    _approve_everywhere(running, second)
    outcome = space.wait(second)
    assert outcome["status"] == "done", outcome
    after = {c["key"][0]: c["count"] for c in outcome["result"]["result"]["pooled"]}
    assert before["male"] - after["male"] == 1
    assert before["female"] == after["female"]
    change = running.journal()[revoked.json()["journal_index"]]
    assert (change["action"], change["reason"]) == ("consent.revoked", "recorded by desk-3")


def test_a_patient_or_clinician_reaching_for_a_study_decision_is_refused_and_journalled(
    running: NodeApi,
) -> None:
    study = running.space.submit(StudyRequest(title="by hand", kind="count", query=QUERY,
                                              deadline_seconds=60))
    deadline = time.monotonic() + 20
    while running.space.nodes["hospital-a"].state.study(study) is None:
        assert time.monotonic() < deadline
        time.sleep(0.05)

    for who, actor, role in (("patient", "pt-901", "patient"),
                             ("clinician", "dr-zhao", "clinician"),
                             ("desk", "desk-3", "hospital"), ("auditor", "audit-1", "auditor")):
        for verb in ("approve", "deny", "revoke"):
            refused = running.call("POST", f"/v1/studies/{study}/{verb}", who,
                                   json={"reason": "let me in"})
            assert refused.status_code == 403, refused.text
            assert "may not approve, deny or revoke studies; only admin may" in refused.json()[
                "detail"]
        journalled = running.denials(actor)
        assert [(e["role"], e["subject"], e["decision"]) for e in journalled] == [
            (role, f"study:{study}", "deny")] * 3
    record = running.space.nodes["hospital-a"].state.study(study)
    assert record is not None and record.decision is None

    approved = running.call("POST", f"/v1/studies/{study}/approve", "admin", json={})
    assert approved.status_code == 200, approved.text
    assert (approved.json()["status"], approved.json()["decided_by"]) == ("agreed", "it-1")
    outcome = running.space.wait(study)
    assert outcome["status"] == "done", outcome
    again = running.call("POST", f"/v1/studies/{study}/deny", "admin",
                         json={"reason": "changed my mind"})
    assert again.status_code == 409 and "already decided: permit by it-1" in again.text
    listed = running.call("GET", "/v1/studies", "auditor")
    assert listed.status_code == 200
    assert {s["id"]: s["status"] for s in listed.json()}[study] == "agreed"


def test_a_patient_lists_and_revokes_their_own_consent_and_is_refused_anyone_elses(
    api: NodeApi,
) -> None:
    me = _person_of(api.root, "MRN-901")
    other = _person_of(api.root, "MRN-902")
    mine = api.call("GET", "/v1/consent", "patient")
    assert mine.status_code == 200, mine.text
    assert mine.json()["person_id"] == me
    assert mine.json()["defaults"]["research"] == "opt-out"

    revoked = api.call("POST", "/v1/consent", "patient",
                       json={"action": "revoke", "purpose": "commercial", "until": "2030-12-31"})
    assert revoked.status_code == 200, revoked.text
    by_mrn = api.call("POST", "/v1/consent/query", "patient", json={"mrn": "MRN-901"})
    assert by_mrn.status_code == 200
    assert [(d["purpose"], d["decision"], d["until"]) for d in by_mrn.json()["decisions"]] == [
        ("commercial", "deny", "2030-12-31")]

    attempts = [("/v1/consent/query", {"mrn": "MRN-902"}),
                ("/v1/consent/query", {"id_number": PATIENTS["MRN-902"]}),
                ("/v1/consent", {"action": "revoke", "purpose": "research", "mrn": "MRN-902"}),
                ("/v1/consent", {"action": "grant", "purpose": "research", "mrn": "MRN-404"})]
    for path, body in attempts:
        refused = api.call("POST", path, "patient", json=body)
        assert refused.status_code == 403, refused.text
        assert refused.json()["detail"] == "a patient may see and change only their own consent"
    assert history(api.space.nodes["hospital-a"].store, other) == []
    journalled = api.denials("pt-901")
    assert [(e["role"], e["subject"]) for e in journalled] == [
        ("patient", other), ("patient", other), ("patient", other),
        ("patient", "api:consent.write")]
    everything = json.dumps(api.journal(), ensure_ascii=False)
    assert "MRN-90" not in everything and PATIENTS["MRN-902"] not in everything
    assert "王芳" not in everything


def test_the_desk_reads_and_records_any_patients_consent_by_mrn_or_id_number(
    api: NodeApi,
) -> None:
    granted = api.call("POST", "/v1/consent", "desk",
                       json={"action": "grant", "purpose": "public-health",
                             "id_number": PATIENTS["MRN-902"], "from": "2026-02-01"})
    assert granted.status_code == 200, granted.text
    assert granted.json()["from"] == "2026-02-01"
    listed = api.call("POST", "/v1/consent/query", "desk", json={"mrn": "MRN-902"})
    assert ("public-health", "permit", "2026-02-01") in [
        (d["purpose"], d["decision"], d["from"]) for d in listed.json()["decisions"]]
    missing = api.call("POST", "/v1/consent/query", "desk", json={"mrn": "MRN-404"})
    unnamed = api.call("GET", "/v1/consent", "desk")
    assert unnamed.status_code == 422 and "MRN or their ID number" in unnamed.text
    assert missing.status_code == 404 and "no patient with this MRN" in missing.text
    clinician = api.call("POST", "/v1/consent", "clinician",
                         json={"action": "grant", "purpose": "research", "mrn": "MRN-902"})
    assert clinician.status_code == 403
    assert "dr-zhao is a clinician and may not record patients' consent" in clinician.text


def test_an_auditor_reads_the_journal_as_recorded_but_cannot_change_anything(
    api: NodeApi,
) -> None:
    read = api.call("GET", "/v1/journal", "auditor")
    assert read.status_code == 200, read.text
    page = read.json()
    store = api.space.nodes["hospital-a"].journal.store
    raw = store.entries(0, page["end"])
    assert page["start"] == 0 and page["end"] == len(page["entries"]) == len(raw)
    assert [rfc8785.dumps(e) for e in page["entries"]] == raw
    tail = api.call("GET", "/v1/journal", "auditor",
                    params={"start": page["size"] - 1, "end": page["size"]})
    assert tail.json()["entries"] == page["entries"][-1:]
    assert api.call("GET", "/v1/studies", "auditor").status_code == 200

    for method, path, body in (
        ("POST", "/v1/consent", {"action": "revoke", "purpose": "research", "mrn": "MRN-901"}),
        ("POST", "/v1/consent/query", {"mrn": "MRN-901"}),
        ("POST", "/v1/studies/study-x/approve", {}),
        ("GET", "/v1/people", None),
        ("POST", "/v1/people", {"id": "audit-2", "role": "admin"}),
        ("DELETE", "/v1/people/it-1", None),
    ):
        refused = api.call(method, path, "auditor", json=body)
        assert refused.status_code == 403, (path, refused.text)
    assert [e["subject"] for e in api.denials("audit-1")][-6:] == [
        "api:consent.write", "api:consent.read", "study:study-x", "api:people.manage",
        "api:people.manage", "api:people.manage"]
    assert api.call("GET", "/v1/journal", "desk").status_code == 403
    assert api.call("GET", "/v1/journal", "patient").status_code == 403


def test_no_token_a_wrong_token_or_a_revoked_one_is_401_and_journalled(api: NodeApi) -> None:
    before = len(api.denials("unknown"))
    no_token = api.client.get("/v1/studies")
    assert no_token.status_code == 401
    assert no_token.headers["www-authenticate"] == "Bearer"
    assert "Authorization: Bearer" in no_token.json()["detail"]
    wrong = api.client.get("/v1/studies", headers={"Authorization": "Bearer msn_" + "A" * 43})
    assert wrong.status_code == 401
    basic = api.client.get("/v1/journal", headers={"Authorization": "Basic aXQtMTpwdw=="})
    assert basic.status_code == 401
    malformed_and_anonymous = api.client.post("/v1/consent", content=b"{not json")
    assert malformed_and_anonymous.status_code == 401

    people = People.open(api.root)
    token = people.add_person("desk-9", Role.DESK)
    assert api.client.post("/v1/consent/query", json={"mrn": "MRN-901"},
                           headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert people.revoke_person("desk-9")
    revoked = api.client.post("/v1/consent/query", json={"mrn": "MRN-901"},
                              headers={"Authorization": f"Bearer {token}"})
    assert revoked.status_code == 401 and "revoked" in revoked.text
    journalled = api.denials("unknown")[before:]
    assert [(e["subject"], e["decision"]) for e in journalled] == [
        ("api:studies.list", "deny"), ("api:studies.list", "deny"),
        ("api:journal.read", "deny"), ("api:consent.write", "deny"),
        ("api:consent.read", "deny")]


def test_a_malformed_request_is_422_naming_what_is_wrong(api: NodeApi) -> None:
    cases = [
        ({"action": "revoke", "purpose": "marketing", "mrn": "MRN-901"},
         "purpose: Value error, unknown purpose 'marketing'"),
        ({"purpose": "research", "mrn": "MRN-901"}, "action: Field required"),
        ({"action": "delete", "purpose": "research", "mrn": "MRN-901"}, "action: Input should"),
        ({"action": "grant", "purpose": "research", "mrn": "MRN-901", "name": "王芳"},
         "name: Extra inputs are not permitted"),
        ({"action": "grant", "purpose": "research", "mrn": "MRN-901", "from": "tomorrow"},
         "from: Input should be a valid date"),
        ({"action": "grant", "purpose": "research", "mrn": "MRN-901", "from": "2027-01-01",
          "until": "2026-01-01"}, "ends (2026-01-01) before it starts (2027-01-01)"),
        ({"action": "grant", "purpose": "research", "mrn": "MRN-901",
          "id_number": PATIENTS["MRN-901"]}, "not both"),
        ({"action": "grant", "purpose": "research", "id_number": "12345"},
         "the ID number is not valid"),
        ({"action": "grant", "purpose": "research"}, "give the patient's MRN or their ID number"),
    ]
    for body, said in cases:
        answer = api.call("POST", "/v1/consent", "desk", json=body)
        assert answer.status_code == 422, (body, answer.text)
        assert said in answer.json()["detail"], (body, answer.json())
    not_json = api.call("POST", "/v1/consent", "desk", content=b"{not json")
    assert not_json.status_code == 422 and "Invalid JSON" in not_json.json()["detail"]
    no_reason = api.call("POST", "/v1/studies/study-x/deny", "admin", json={})
    assert no_reason.status_code == 422 and "reason: Field required" in no_reason.text
    personal = api.call("POST", "/v1/studies/study-x/deny", "admin",
                        json={"reason": "call 13812345678"})
    assert personal.status_code == 422 and "personal data" in personal.text
    paging = api.call("GET", "/v1/journal", "admin", params={"start": -1})
    assert paging.status_code == 422 and "start" in paging.json()["detail"]
    beyond = api.call("GET", "/v1/journal", "admin", params={"start": 0, "end": 10**6})
    assert beyond.status_code == 422 and "at most 1000 at a time" in beyond.text
    denied_first = api.call("POST", "/v1/studies/study-x/approve", "patient",
                            content=b"{not json")
    assert denied_first.status_code == 403


def test_an_administrator_manages_people_through_the_api(api: NodeApi) -> None:
    added = api.call("POST", "/v1/people", "admin",
                     json={"id": "pt-902", "role": "patient", "mrn": "MRN-902"})
    assert added.status_code == 200, added.text
    token = added.json()["token"]
    mine = api.client.get("/v1/consent", headers={"Authorization": f"Bearer {token}"})
    assert mine.json()["person_id"] == _person_of(api.root, "MRN-902")
    assert token not in api.call("GET", "/v1/people", "admin").text
    twice = api.call("POST", "/v1/people", "admin", json={"id": "pt-902", "role": "desk"})
    assert twice.status_code == 409 and "already has a live token" in twice.text
    assert api.call("POST", "/v1/people", "admin",
                    json={"id": "pt-903", "role": "patient"}).status_code == 422
    assert api.call("DELETE", "/v1/people/pt-902", "admin").status_code == 200
    assert api.client.get("/v1/consent",
                          headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert api.call("DELETE", "/v1/people/pt-902", "admin").status_code == 404
    escalate = api.call("POST", "/v1/people", "desk", json={"id": "desk-admin", "role": "admin"})
    assert escalate.status_code == 403 and api.denials("desk-3")[-1]["subject"] == (
        "api:people.manage")


def test_the_api_speaks_https_with_the_nodes_own_certificate(api: NodeApi) -> None:
    host, port = api.server.host, api.server.port
    certificate = x509.load_pem_x509_certificate(
        ssl.get_server_certificate((host, port)).encode("ascii"))
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    assert [n.value for n in names] == ["hospital-a"]
    with pytest.raises(httpx.ConnectError), httpx.Client(timeout=10) as stranger:
        stranger.get(f"{api.server.url}/v1/studies")
    with pytest.raises(httpx.HTTPError), httpx.Client(timeout=10) as plain:
        plain.get(f"http://{host}:{port}/v1/studies")


def test_node_run_serves_the_api_beside_its_agent_and_stops_cleanly_on_sigterm(
    tmp_path: Path,
) -> None:
    build_local(tmp_path, 1, lambda _i, _store: None, serve=False)
    root = tmp_path / "hospital-a"
    token = People.open(root).add_person("it-1", Role.ADMIN)
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "medspace", "node", "run", str(root), "--api-port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        trust = ssl.create_default_context(cafile=str(root / "tls" / "ca.crt"))
        with httpx.Client(verify=trust, timeout=10) as client:
            deadline = time.monotonic() + 30
            while True:
                try:
                    answer = client.get(f"https://127.0.0.1:{port}/v1/studies",
                                        headers={"Authorization": f"Bearer {token}"})
                    break
                except httpx.ConnectError:
                    assert process.poll() is None and time.monotonic() < deadline
                    time.sleep(0.1)
        assert answer.status_code == 200 and answer.json() == []
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=30)[0].decode()
    assert process.returncode == 0, output
    assert f"node API on https://127.0.0.1:{port}" in output

    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    with busy:
        taken = CliRunner().invoke(app, ["node", "run", str(root), "--api-port",
                                         str(busy.getsockname()[1])])
    assert taken.exit_code == 2
    assert "cannot serve the node's API" in taken.output and "--api-port 0" in taken.output
