"""The hub's catalog: hospitals publish signed offers over mutual TLS, the hub logs them, and
every participant finds datasets by hospital, code and purpose (DESIGN §3.7: a policy medspace
does not understand never permits)."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import httpx
import pytest

from medspace.demo.local import LocalDataSpace, countable_rows
from medspace.demo.local import build as build_local
from medspace.hub.space import open_space
from medspace.hub.state import HubState
from medspace.ledger.events import parse_event
from medspace.ledger.store import LogStore
from medspace.node.publish import offer_policy, publish
from medspace.node.setup import hub_client
from medspace.pki.enrollment import participant_key
from medspace.policy.odrl import parse_yaml
from medspace.sqldb import create_engine, sqlite_url
from medspace.store.engine import ClinicalStore
from medspace.store.load import load
from medspace.store.tokens import person_pseudonym
from medspace.wire.messages import DATASET_KIND, DatasetOffer, digest, now_ms
from medspace.wire.signing import SignedMessage

EPSILON = 8.0
PUBLIC_HEALTH_ONLY = """\
uid: urn:medspace:hospital-b:usage-policy
assigner: hospital-b
target: dataset:hospital-b
permission:
  - action: aggregate
    constraint:
      purpose: {isA: public-health}
      recipientRole: {eq: researcher}
"""


def fill(index: int, store: ClinicalStore) -> None:
    """Every hospital: 200 persons, lung cancer (C34) for every third. hospital-a also: type 2
    diabetes (E11) and metformin (A10) for 120 persons, a rare syndrome (Q87) for two."""
    load(store, countable_rows(index, 200))
    if index != 0:
        return
    person = [person_pseudonym(f"H0-{n:05d}", b"k" * 32) for n in range(120)]
    load(store, {
        "condition": [{"person_id": p, "visit_id": None, "condition_source_value": code,
                       "start_date": dt.date(2021, 5, 1)}
                      for p, code in [*((p, "E11.9") for p in person),
                                      *((p, "Q87.4") for p in person[:2])]],
        "drug_exposure": [{"person_id": p, "visit_id": None, "drug_source_value": "A10BA02",
                           "start_date": dt.date(2021, 5, 1)} for p in person],
    })


@pytest.fixture(scope="module")
def space(tmp_path_factory: pytest.TempPathFactory):
    """Three hospitals: a and b publish (b offers for public health only); c is left for the
    tests' own offers."""
    data_space = build_local(tmp_path_factory.mktemp("space"), 3, fill)
    (data_space.root / "hospital-b" / "usage-policy.yaml").write_text(PUBLIC_HEALTH_ONLY)
    for name in ("hospital-a", "hospital-b"):
        asyncio.run(publish(data_space.root / name, title=f"Records of {name}",
                            epsilon=EPSILON))
    yield data_space
    data_space.stop()


def _catalog(space: LocalDataSpace, **params: str) -> httpx.Response:
    return space.researcher().get(space.hub_url + "/v1/catalog", params=params)


def _found(space: LocalDataSpace, **params: str) -> list[str]:
    answer = _catalog(space, **params)
    assert answer.status_code == 200, answer.text
    return [entry["@id"] for entry in answer.json()["dcat:dataset"]]


def _found_of_a_and_b(space: LocalDataSpace, **params: str) -> list[str]:
    """What a search finds of the two datasets the fixture published (hospital-c's entry is
    the other tests' to change)."""
    return [found for found in _found(space, **params) if found != "dataset:hospital-c"]


def _offer(space: LocalDataSpace, node: str = "hospital-c", **changes: Any) -> dict[str, Any]:
    """A valid offer body for ``node``, published now, with ``changes`` made to it."""
    root = space.root / node
    policy = offer_policy(parse_yaml((root / "usage-policy.yaml").read_text()), node,
                          f"dataset:{node}")
    offer = DatasetOffer(
        dataset=f"dataset:{node}", node=node, title=f"Records of {node}",
        published_at=now_ms(), persons=200, rows={"condition": 70}, code_systems=["ICD-10"],
        conditions={"C34": 70}, drugs={}, deid_profile="cn-health",
        risk={"quasi_identifiers": ["birth_year", "birth_month", "sex"], "k_anonymity": 1,
              "records_at_risk": 0.5, "sample_uniqueness": 0.2, "threshold": 0.2},
        noise={"epsilon": 1.0, "delta": 1e-6, "persons_epsilon": 0.25, "rows_epsilon": 0.15,
               "rows_per_person": 50, "categories_epsilon": 0.3, "categories_delta": 4e-7,
               "categories_per_person": 5, "category_threshold": 60, "min_cell": 5},
        policy=policy)
    return {**offer.model_dump(mode="json"), **changes}


def _post(space: LocalDataSpace, body: dict[str, Any], signer: str = "hospital-c",
          kind: str = DATASET_KIND) -> httpx.Response:
    """``body`` signed by ``signer``'s key, posted over ``signer``'s mutual-TLS connection."""
    root = space.root / signer
    message = participant_key(root).sign(kind, body)

    async def run() -> httpx.Response:
        async with hub_client(root) as client:
            return await client.post(space.hub_url + "/v1/catalog", json=message.model_dump())

    return asyncio.run(run())


def _hub_events(space: LocalDataSpace) -> list[Any]:
    hub = open_space(space.root / "hub")
    log = LogStore(create_engine(sqlite_url(hub.root / "ledger.db")), hub.origin)
    return [parse_event(entry) for entry in log.entries(0, log.size)]


def test_catalog_is_dcat_json_ld_with_each_offer_policy(space: LocalDataSpace) -> None:
    catalog = _catalog(space).json()
    assert {"dcat", "dct", "odrl", "medspace"} <= set(catalog["@context"])
    assert catalog["@type"] == "dcat:Catalog"
    entries = {entry["@id"]: entry for entry in catalog["dcat:dataset"]}
    assert {"dataset:hospital-a", "dataset:hospital-b"} <= set(entries)
    entry = entries["dataset:hospital-a"]
    assert entry["@type"] == "dcat:Dataset"
    assert entry["dct:title"] == "Records of hospital-a" and entry["dct:description"]
    assert entry["dct:publisher"] == {"@id": "hospital-a"}
    assert entry["dct:temporal"]["dcat:startDate"]["@value"] == "2020-01"
    [policy] = entry["odrl:hasPolicy"]
    assert policy["@type"] == "Offer" and policy["assigner"] == "hospital-a"
    assert abs(entry["medspace:persons"] - 200) < 20
    codes = {c["medspace:code"] for c in entry["medspace:conditionCategories"]}
    assert {"C34", "E11"} <= codes and "Q87" not in codes
    assert entry["medspace:deidProfile"] == "cn-health"
    assert set(entry["medspace:risk"]) >= {"medspace:kAnonymity", "medspace:recordsAtRisk",
                                           "medspace:sampleUniqueness"}
    assert entry["medspace:noise"]["medspace:epsilon"] == EPSILON
    assert entry["medspace:offerDigest"].startswith("sha256:")


def test_catalog_is_searched_by_hospital(space: LocalDataSpace) -> None:
    assert _found(space, hospital="hospital-b") == ["dataset:hospital-b"]
    assert _found(space, hospital="hospital-a") == ["dataset:hospital-a"]
    assert _found(space, hospital="hospital-z") == []


def test_catalog_is_searched_by_code_against_the_published_categories(
    space: LocalDataSpace,
) -> None:
    both = ["dataset:hospital-a", "dataset:hospital-b"]
    assert _found_of_a_and_b(space, code="C34") == both
    assert _found_of_a_and_b(space, code="c34.1") == both
    assert _found_of_a_and_b(space, code="E11.9") == ["dataset:hospital-a"]
    assert _found_of_a_and_b(space, code="A10BA02") == ["dataset:hospital-a"]
    assert _found_of_a_and_b(space, code="E1") == ["dataset:hospital-a"]
    assert _found(space, code="Q87.4") == []
    bad = _catalog(space, code="34C; drop table")
    assert bad.status_code == 400 and "not an ICD-10 code" in bad.json()["detail"]


def test_catalog_is_searched_by_what_the_offer_policy_permits_for_a_purpose(
    space: LocalDataSpace,
) -> None:
    assert _found_of_a_and_b(space, purpose="research") == ["dataset:hospital-a"]
    assert _found_of_a_and_b(space, purpose="research.clinical") == ["dataset:hospital-a"]
    assert _found_of_a_and_b(space, purpose="public-health") == ["dataset:hospital-a",
                                                                 "dataset:hospital-b"]
    assert _found(space, purpose="commercial") == []
    assert _found_of_a_and_b(space, purpose="public-health", code="E11") == [
        "dataset:hospital-a"]
    unknown = _catalog(space, purpose="marketing")
    assert unknown.status_code == 400 and "not a purpose" in unknown.json()["detail"]


def test_an_offer_whose_policy_medspace_does_not_understand_never_permits(
    space: LocalDataSpace,
) -> None:
    body = _offer(space)
    body["policy"]["permission"][0]["constraint"].append(
        {"leftOperand": "https://example.org/terms#mood", "operator": "eq",
         "rightOperand": "good"})
    answer = _post(space, body)
    assert answer.status_code == 200, answer.text
    assert "dataset:hospital-c" in _found(space)
    assert "dataset:hospital-c" in _found(space, code="C34")
    for purpose in ("research", "public-health"):
        assert "dataset:hospital-c" not in _found(space, purpose=purpose)


def test_one_dataset_is_read_by_its_id_and_an_unknown_one_is_not_found(
    space: LocalDataSpace,
) -> None:
    entry = space.researcher().get(space.hub_url + "/v1/catalog/dataset:hospital-b").json()
    assert entry["@id"] == "dataset:hospital-b" and "dcat" in entry["@context"]
    missing = space.researcher().get(space.hub_url + "/v1/catalog/dataset:nowhere")
    assert missing.status_code == 404


def test_a_node_cannot_publish_for_another_node_or_take_over_its_dataset(
    space: LocalDataSpace,
) -> None:
    before = _catalog(space).json()
    as_a = _post(space, _offer(space, node="hospital-a"), signer="hospital-c")
    assert as_a.status_code == 403 and "its own dataset" in as_a.json()["detail"]
    takeover = _post(space, _offer(space, dataset="dataset:hospital-a"))
    assert takeover.status_code == 403
    assert "published by hospital-a" in takeover.json()["detail"]
    assert _catalog(space).json() == before


def test_only_a_hospital_may_publish_an_offer(space: LocalDataSpace) -> None:
    body = _offer(space)
    researcher = participant_key(space.root / "researcher")
    answer = space.researcher().post(
        space.hub_url + "/v1/catalog",
        json=researcher.sign(DATASET_KIND, body).model_dump())
    assert answer.status_code == 403 and "not a registered hospital" in answer.json()["detail"]
    forged = SignedMessage(kind=DATASET_KIND, signer="hospital-c", body=body,
                           signature=researcher.sign(DATASET_KIND, body).signature)
    answer = space.researcher().post(space.hub_url + "/v1/catalog", json=forged.model_dump())
    assert answer.status_code == 403 and "bad signature" in answer.json()["detail"]


@pytest.mark.parametrize(("change", "says"), [
    ({"secret": 1}, "extra"),
    ({"conditions": {"Q87": 2}}, "below the threshold"),
    ({"persons": -3}, "greater than or equal to 0"),
    ({"dataset": "Dataset A"}, "dataset"),
])
def test_a_malformed_offer_is_refused_saying_what_is_wrong(
    space: LocalDataSpace, change: dict[str, Any], says: str,
) -> None:
    answer = _post(space, _offer(space, **change))
    assert answer.status_code == 422
    detail = answer.json()["detail"]
    assert detail.startswith("malformed DatasetOffer") and says in detail


def test_an_offer_whose_policy_is_not_an_offer_of_this_node_is_refused(
    space: LocalDataSpace,
) -> None:
    body = _offer(space)
    for policy, says in [({**body["policy"], "@type": "Set"}, "not an Offer"),
                         ({**body["policy"], "assigner": "hospital-a"}, "assigned by"),
                         ({"permission": "everything"}, "not readable ODRL")]:
        answer = _post(space, {**body, "policy": policy})
        assert answer.status_code == 422 and says in answer.json()["detail"], answer.text


def test_a_replayed_or_stale_offer_is_refused(space: LocalDataSpace) -> None:
    body = _offer(space)
    assert _post(space, body).status_code == 200
    replayed = _post(space, body)
    assert replayed.status_code == 409 and "as new" in replayed.json()["detail"]
    stale = _post(space, {**body, "published_at": body["published_at"] - 3_600_000})
    assert stale.status_code == 400 and "clock" in stale.json()["detail"]


def test_the_hub_log_holds_each_publication_and_its_policy_by_digest(
    space: LocalDataSpace,
) -> None:
    body = _offer(space)
    answer = _post(space, body)
    assert answer.status_code == 200
    assert answer.json()["payload_digest"] == digest(body)
    events = _hub_events(space)
    published = [e for e in events if e.action == "dataset.published"
                 and e.payload_digest == digest(body)]
    assert len(published) == 1
    assert (published[0].actor, published[0].subject) == ("hospital-c", "dataset:hospital-c")
    assert any(e.action == "policy.published" and e.payload_digest == digest(body["policy"])
               for e in events)
    assert {e.subject for e in events if e.action == "dataset.published"} >= {
        "dataset:hospital-a", "dataset:hospital-b"}
    entry = space.researcher().get(space.hub_url + "/v1/catalog/dataset:hospital-c").json()
    assert entry["medspace:offerDigest"] == digest(body)


def test_a_newer_offer_replaces_the_dataset_entry_and_keeps_its_first_publication(
    space: LocalDataSpace,
) -> None:
    first = _offer(space, title="First title")
    assert _post(space, first).status_code == 200
    issued = space.researcher().get(space.hub_url + "/v1/catalog/dataset:hospital-c").json()
    second = _offer(space, title="Second title", published_at=first["published_at"] + 1)
    assert _post(space, second).status_code == 200
    entry = space.researcher().get(space.hub_url + "/v1/catalog/dataset:hospital-c").json()
    assert entry["dct:title"] == "Second title"
    assert entry["dct:issued"] == issued["dct:issued"]
    assert _found(space).count("dataset:hospital-c") == 1


def test_the_catalog_table_keeps_the_newest_offer_of_its_own_node(database_url: str) -> None:
    state = HubState(create_engine(database_url))
    assert state.put_offer("dataset:h-a", "h-a", 1000, '{"v": 1}', "sha256:1")
    assert not state.put_offer("dataset:h-a", "h-b", 2000, '{"v": 2}', "sha256:2")
    assert not state.put_offer("dataset:h-a", "h-a", 1000, '{"v": 3}', "sha256:3")
    assert state.put_offer("dataset:h-a", "h-a", 3000, '{"v": 4}', "sha256:4")
    row = state.offer("dataset:h-a")
    assert row is not None
    assert (row.node, row.first_published_ms, row.published_ms, row.offer) == (
        "h-a", 1000, 3000, '{"v": 4}')
    assert state.put_offer("dataset:h-b", "h-b", 500, "{}", "sha256:5")
    assert [r.dataset for r in state.offers()] == ["dataset:h-a", "dataset:h-b"]
    assert [r.dataset for r in state.offers("h-b")] == ["dataset:h-b"]
    assert state.offer("dataset:none") is None
