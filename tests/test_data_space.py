"""The data space end to end: a researcher's count study answered by five hospitals."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from medspace.policy.odrl import parse_jsonld
from medspace.wire.messages import APPROVAL_KIND, StudyRequest
from medspace.wire.signing import SignatureError, SignedMessage, verify_message
from tests.spacekit import AS_OF, DataSpace, build

COUNT_QUERY = {
    "cohort": {"as_of": AS_OF.isoformat(), "condition_prefixes": ["C34"]},
    "group_by": ["sex"],
}


@pytest.fixture
def space(tmp_path: Path):
    data_space = build(tmp_path)
    yield data_space
    data_space.stop()


def test_count_study_is_answered_by_every_hospital_and_pooled(space: DataSpace) -> None:
    space.start_agents()
    study = space.submit(StudyRequest(title="lung cancer by sex", kind="count",
                                      query=COUNT_QUERY, deadline_seconds=60))
    outcome = space.wait(study)
    assert outcome["status"] == "done", outcome
    result = outcome["result"]["result"]
    assert result["hospitals"] == space.hospitals
    pooled = {tuple(cell["key"]): cell["count"] for cell in result["pooled"]}
    assert pooled == {("female",): 5 * 10, ("male",): 5 * 10}



def test_study_with_an_offline_hospital_finishes_at_its_deadline_with_the_others(
    space: DataSpace,
) -> None:
    space.start_agents(space.hospitals[:4])
    study = space.submit(StudyRequest(title="partial", kind="count", query=COUNT_QUERY,
                                      deadline_seconds=4, on_missing="partial"))
    outcome = space.wait(study)
    assert outcome["status"] == "done", outcome["result"]
    assert outcome["result"]["missing"] == ["hospital-e"]
    assert outcome["result"]["result"]["hospitals"] == space.hospitals[:4]


def test_study_that_needs_every_hospital_fails_at_its_deadline(space: DataSpace) -> None:
    space.start_agents(space.hospitals[:4])
    study = space.submit(StudyRequest(title="all or nothing", kind="count", query=COUNT_QUERY,
                                      deadline_seconds=4, on_missing="fail"))
    outcome = space.wait(study)
    assert outcome["status"] == "failed"
    assert outcome["result"]["missing"] == ["hospital-e"]


def test_hub_restart_keeps_studies_and_tasks_and_nodes_resume(space: DataSpace) -> None:
    space.restart_hub()
    space.start_agents()
    study = space.submit(StudyRequest(title="after restart", kind="count", query=COUNT_QUERY,
                                      deadline_seconds=60))
    space.restart_hub()
    outcome = space.wait(study)
    assert outcome["status"] == "done", outcome
    assert outcome["result"]["missing"] == []


def test_registry_publishes_every_participants_public_keys(space: DataSpace) -> None:
    registry = {p["id"]: p
                for p in space.researcher().get(space.hub_url + "/v1/registry").json()}
    for hospital in space.hospitals:
        entry = registry[hospital]
        assert entry["role"] == "hospital"
        assert len(base64.b64decode(entry["sign_key"])) == 32
        assert len(base64.b64decode(entry["kx_key"])) == 32
        assert entry["witness_vkey"].startswith(f"{hospital}+")
    assert registry["regulator"]["witness_vkey"].startswith("regulator+")
    key_files = [p for p in space.root.rglob("*.key")]
    assert key_files and all(p.stat().st_mode & 0o077 == 0 for p in key_files)


def test_the_researcher_checks_each_hospitals_signed_approval_and_its_agreement(
    space: DataSpace,
) -> None:
    space.start_agents()
    study = space.submit(StudyRequest(title="verifiable", kind="count", query=COUNT_QUERY))
    assert space.wait(study)["status"] == "done"
    found = space.researcher().get(space.hub_url + f"/v1/studies/{study}").json()
    keys = {p["id"]: base64.b64decode(p["sign_key"])
            for p in space.researcher().get(space.hub_url + "/v1/registry").json()}
    approvals = [SignedMessage.model_validate(m) for m in found["approvals"]]
    assert sorted(a.signer for a in approvals) == space.hospitals
    for approval in approvals:
        body = verify_message(approval, APPROVAL_KIND, keys[approval.signer])
        agreement = parse_jsonld(body["agreement"])
        assert (body["study"], body["decision"]) == (study, "permit")
        assert (agreement.type, agreement.assigner, agreement.assignee) == (
            "Agreement", approval.signer, found["researcher"])
    forged = approvals[0].model_copy(update={"body": {**approvals[0].body, "decision": "deny"}})
    with pytest.raises(SignatureError):
        verify_message(forged, APPROVAL_KIND, keys[forged.signer])
