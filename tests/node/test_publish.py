"""A hospital publishes its dataset offer: noisy sizes, codes many patients share and never a
rare one, the months enough patients cover, the risk summary and its usage policy as an Offer."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import statistics
from pathlib import Path

import pytest
from typer.testing import CliRunner

from medspace.cli import app
from medspace.demo.local import LocalDataSpace, countable_rows
from medspace.demo.local import build as build_local
from medspace.hub.space import open_space
from medspace.ledger.events import parse_event
from medspace.ledger.store import LogStore
from medspace.node.publish import (
    EPSILON_SHARES,
    ROWS_PER_PERSON,
    TABLES,
    PublishError,
    noisy_categories,
    noisy_count,
    offer_policy,
    publish,
)
from medspace.node.setup import open_vault
from medspace.node.state import NodeState
from medspace.policy.odrl import parse_yaml
from medspace.sqldb import create_engine, sqlite_url
from medspace.store.engine import ClinicalStore
from medspace.store.load import load
from medspace.store.tokens import person_pseudonym
from medspace.store.vault import Identity
from medspace.wire.messages import DatasetOffer, digest

PERSONS = 200
NODE = "hospital-a"
#: A large ε makes the noise small enough to assert on; the default is 1.
EPSILON = 8.0


def _person(n: int) -> str:
    return person_pseudonym(f"H0-{n:05d}", b"k" * 32)


def fill(index: int, store: ClinicalStore) -> None:
    """``countable_rows`` (C34 for every third person, in 2020-01) and, for hospital-a, type 2
    diabetes (E11) and metformin (A10) for many patients, a rare syndrome (Q87) and a rare
    immunosuppressant (L04) for two, and two lone events in 1990."""
    load(store, countable_rows(index, PERSONS))
    if index != 0:
        return
    conditions = [{"person_id": _person(n), "visit_id": None, "condition_source_value": "E11.9",
                   "start_date": dt.date(2019, 3, 15) if n < 60 else dt.date(2024, 11, 20)}
                  for n in range(120)]
    conditions += [{"person_id": _person(n), "visit_id": None, "condition_source_value": "Q87.4",
                    "start_date": dt.date(1990, 1, 1)} for n in (0, 1)]
    drugs = [{"person_id": _person(n), "visit_id": None, "drug_source_value": "A10BA02",
              "start_date": dt.date(2021, 6, 1)} for n in range(100)]
    drugs += [{"person_id": _person(n), "visit_id": None, "drug_source_value": "L04AX07",
               "start_date": dt.date(2021, 6, 1)} for n in (0, 1)]
    results = [{"person_id": _person(n), "visit_id": None, "measurement_source_value": "2345-7",
                "value_as_number": 5.5, "unit_source_value": "mmol/L",
                "measurement_date": dt.date(2022, 2, 2)} for n in range(100)]
    load(store, {"condition": conditions, "drug_exposure": drugs, "measurement": results})


@pytest.fixture(scope="module")
def space(tmp_path_factory: pytest.TempPathFactory):
    data_space = build_local(tmp_path_factory.mktemp("space"), 1, fill)
    _set_config(data_space.root / NODE, catalog_epsilon=1000)
    yield data_space
    data_space.stop()


def _set_config(root: Path, **values: object) -> None:
    config = json.loads((root / "node.json").read_text())
    (root / "node.json").write_text(json.dumps({**config, **values}))


@pytest.fixture(scope="module")
def offer(space: LocalDataSpace) -> DatasetOffer:
    return asyncio.run(publish(space.root / NODE, epsilon=EPSILON)).offer


def test_offer_lists_codes_many_patients_share_and_never_a_rare_one(
    offer: DatasetOffer,
) -> None:
    assert {"C34", "E11"} <= set(offer.conditions)
    assert "A10" in offer.drugs
    assert "Q87" not in offer.conditions and "L04" not in offer.drugs
    assert all(n >= offer.noise.category_threshold >= offer.noise.min_cell >= 5
               for n in (*offer.conditions.values(), *offer.drugs.values()))
    text = json.dumps(offer.model_dump(mode="json"))
    assert "Q87" not in text and "L04" not in text
    assert offer.code_systems == ["ICD-10", "ATC", "LOINC"]


def test_offer_sizes_are_noisy_counts_near_the_truth_with_the_budget_stated(
    offer: DatasetOffer,
) -> None:
    noise = offer.noise
    assert abs(offer.persons - PERSONS) < 20  # scale 0.5 at ε 2: 20 is 40 scales
    assert set(offer.rows) == set(TABLES)
    assert noise.epsilon == EPSILON and noise.rows_per_person == ROWS_PER_PERSON
    assert noise.persons_epsilon == pytest.approx(EPSILON * EPSILON_SHARES["persons"])
    spent = (noise.persons_epsilon + noise.rows_epsilon * len(TABLES)
             + 2 * noise.categories_epsilon)
    assert spent == pytest.approx(EPSILON)
    assert 0 < 2 * noise.categories_delta <= noise.delta


def test_offer_period_runs_over_months_enough_patients_share_not_a_lone_event(
    offer: DatasetOffer,
) -> None:
    assert offer.period is not None
    assert (offer.period.start, offer.period.end) == ("2019-03", "2024-11")


def test_offer_carries_the_risk_summary_profile_and_usage_policy_as_an_offer(
    offer: DatasetOffer,
) -> None:
    risk = offer.risk
    assert risk.quasi_identifiers == ["birth_year", "birth_month", "sex"]
    assert risk.k_anonymity >= 1 and 0 <= risk.records_at_risk <= 1
    assert 0 <= risk.sample_uniqueness <= 1 and risk.threshold == pytest.approx(0.2)
    assert "class_sizes" not in offer.risk.model_dump()
    assert offer.deid_profile == "cn-health"
    assert offer.policy["@type"] == "Offer"
    assert offer.policy["assigner"] == NODE and offer.policy["target"] == "dataset:hospital-a"
    assert (offer.dataset, offer.node) == ("dataset:hospital-a", NODE)


def test_noise_differs_between_two_publications(space: LocalDataSpace) -> None:
    first, second = (asyncio.run(publish(space.root / NODE, epsilon=0.1)).offer
                     for _ in range(2))
    assert (first.persons, first.rows) != (second.persons, second.rows)
    for published in (first, second):
        assert abs(published.persons - PERSONS) < 1000  # scale 40 at ε 0.025: 25 scales


def test_a_publication_is_journalled_by_the_node_with_the_digest_the_hub_logged(
    space: LocalDataSpace,
) -> None:
    published = asyncio.run(publish(space.root / NODE, epsilon=EPSILON))
    assert published.payload_digest == digest(published.offer.model_dump(mode="json"))
    journal = space.nodes[NODE].journal.store
    [entry] = journal.entries(published.journal_index, published.journal_index + 1)
    event = parse_event(entry)
    assert (event.action, event.subject, event.payload_digest) == (
        "dataset.published", "dataset:hospital-a", published.payload_digest)
    assert f"epsilon {EPSILON:g} spent" in (event.reason or "")
    hub = open_space(space.root / "hub")
    log = LogStore(create_engine(sqlite_url(hub.root / "ledger.db")), hub.origin)
    [logged] = log.entries(published.hub_index, published.hub_index + 1)
    assert parse_event(logged).payload_digest == published.payload_digest


def test_noisy_count_is_centred_on_the_true_count_and_spread_by_epsilon() -> None:
    wide = [noisy_count(1000, 1, 0.5)[0] for _ in range(400)]
    narrow = [noisy_count(1000, 1, 5.0)[0] for _ in range(400)]
    assert abs(statistics.mean(wide) - 1000) < 1.5  # standard error about 0.14
    assert len(set(wide)) > 5
    assert statistics.pstdev(wide) > 5 * statistics.pstdev(narrow)
    assert noisy_count(1000, 1, 0.5)[1] == pytest.approx(0.5)


def test_categories_below_the_threshold_never_appear_however_often_noised() -> None:
    for _ in range(200):
        listed, threshold, _, delta = noisy_categories(
            {"Q87": 2, "E11": 500}, per_person=5, epsilon=2.4, delta=5e-7, min_cell=5)
        assert "Q87" not in listed and "E11" in listed
    assert threshold >= 5 and delta <= 5e-7


def test_a_policy_the_node_cannot_enforce_or_for_another_dataset_is_not_offered() -> None:
    unknown = parse_yaml("uid: urn:x\nassigner: hospital-a\npermission:\n"
                         "  - action: aggregate\n    constraint:\n      mood: {eq: good}\n")
    with pytest.raises(PublishError, match="does not enforce"):
        offer_policy(unknown, NODE, "dataset:hospital-a")
    elsewhere = parse_yaml("uid: urn:y\ntarget: dataset:hospital-z\npermission:\n"
                           "  - action: aggregate\n")
    with pytest.raises(PublishError, match="targets 'dataset:hospital-z'"):
        offer_policy(elsewhere, NODE, "dataset:hospital-a")


def test_an_offer_naming_a_patient_is_not_sent(space: LocalDataSpace) -> None:
    root = space.root / NODE
    open_vault(root).put(_person(7), Identity(name="王芳", mrn="H0-00007"), None)
    catalog = space.researcher().get(space.hub_url + "/v1/catalog").json()
    with pytest.raises(PublishError, match="identifier"):
        asyncio.run(publish(root, description="Includes the records of 王芳.", epsilon=EPSILON))
    assert space.researcher().get(space.hub_url + "/v1/catalog").json() == catalog


def test_publish_command_says_what_it_published(space: LocalDataSpace) -> None:
    answer = CliRunner().invoke(app, ["node", "publish", str(space.root / NODE),
                                      "--title", "Diabetes and lung cancer cohort",
                                      "--epsilon", str(EPSILON)])
    assert answer.exit_code == 0, answer.output
    said = " ".join(answer.output.split())
    assert "published dataset:hospital-a" in said
    assert "persons: about" in said and f"{EPSILON:g} in all" in said
    assert "code categories:" in said and "ICD-10" in said
    assert "urn:medspace:hospital-a:usage-policy" in said
    entry = space.researcher().get(space.hub_url + "/v1/catalog/dataset:hospital-a").json()
    assert entry["dct:title"] == "Diabetes and lung cancer cohort"


def test_publish_command_explains_itself_and_refuses_a_budget_out_of_range(
    space: LocalDataSpace,
) -> None:
    runner = CliRunner()
    helped = runner.invoke(app, ["node", "publish", "--help"])
    assert helped.exit_code == 0
    for option in ("--title", "--description", "--epsilon"):
        assert option in helped.output
    refused = runner.invoke(app, ["node", "publish", str(space.root / NODE), "--epsilon", "0"])
    assert refused.exit_code == 2 and "ε must be above 0" in refused.output


def test_publish_command_on_a_folder_that_never_joined_says_what_to_do(tmp_path: Path) -> None:
    answer = CliRunner().invoke(app, ["node", "publish", str(tmp_path)])
    assert answer.exit_code == 2
    said = " ".join(answer.output.split())
    assert "has not joined a data space" in said and "medspace node join" in said


def test_publishing_stops_once_the_catalog_budget_is_spent(space: LocalDataSpace) -> None:
    root = space.root / NODE
    state = NodeState(create_engine(sqlite_url(root / "node.db")))
    spent = state.spend("catalog", 0.0, 1000)
    try:
        _set_config(root, catalog_epsilon=spent + 1.5)
        asyncio.run(publish(root, epsilon=1.0))
        with pytest.raises(PublishError, match=r"spent ε .* of the .* it allows"):
            asyncio.run(publish(root, epsilon=1.0))
        assert state.spend("catalog", 0.0, 1000) == pytest.approx(spent + 1.0)
    finally:
        _set_config(root, catalog_epsilon=1000)
