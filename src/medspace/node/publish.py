"""The hospital's dataset offer for the data space's catalog (``medspace node publish``).

A researcher must be able to find a dataset before asking a study of it, without the catalog
telling anyone about a patient. The node therefore describes its one dataset from its own store
and rules, and every figure in the description is either differentially private or held by at
least the minimum cell of persons (DESIGN §6); no record's value is in it:

* **Size** — the number of persons and each clinical table's row count, each with discrete
  Laplace noise from OpenDP. One person changes the person count by at most 1. Rows are not
  bounded by nature (a patient may have thousands of results), so each table's count takes at
  most :data:`ROWS_PER_PERSON` rows of any one person, which bounds what one person changes it
  by; the figure is that bounded count, noised.
* **Codes** — the ICD-10 categories of the conditions and the ATC groups (3 characters) of the
  drugs, each with the noisy number of persons in it, listed only when that noisy count reaches
  a threshold. One person counts in at most :data:`CATEGORIES_PER_PERSON` categories of each
  system (chosen at random each time the offer is made), and OpenDP's Laplace threshold
  mechanism releases only categories whose noisy count reaches a threshold it computes for
  δ = :data:`DELTA` / 2 — never below the minimum cell — so a rare code is listed with
  probability at most δ.
* **Code systems and time range** — a code system is named when at least the minimum cell of
  persons have a record coded in it; the period runs from the first to the last month in which
  at least the minimum cell of persons have an event. These are not noised: the minimum cell
  protects them, as it protects a released count.
* **Risk** — k-anonymity, the share of persons at risk and sample uniqueness of the person
  table's quasi-identifiers (birth year, birth month, sex), from :func:`medspace.deid.report
  .measure`, with the name of the node's de-identification profile.
* **Usage policy** — the node's ``usage-policy.yaml`` as ODRL JSON-LD of type Offer.

The privacy budget ε of one publication is split by :data:`EPSILON_SHARES` and adds up by basic
composition; the offer states each part as OpenDP certifies it. Every publication spends its ε
again, and its journal entry says how much. Only persons whose consent lets them count for
research are described.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import duckdb
import httpx
import ibis
import ibis.expr.types as ir
import pandas as pd

from medspace.analytics.counting import DisclosureRules
from medspace.deid.egress import EgressBlocked, VaultEgressFilter
from medspace.deid.profiles import BUILT_IN, ProfileError, load_profile
from medspace.deid.report import measure
from medspace.keyfiles import KeyFileError
from medspace.ledger.events import Action, new_event
from medspace.node.governance import USAGE_POLICY_FILE, Governance, GovernanceError
from medspace.node.setup import (
    NodeSetupError,
    hub_client,
    open_journal,
    open_vault,
    read_config,
)
from medspace.node.state import BudgetExhausted, NodeState
from medspace.pki.enrollment import participant_key
from medspace.policy.evaluate import problems
from medspace.policy.odrl import Policy, PolicyError, to_jsonld
from medspace.sqldb import create_engine, sqlite_url
from medspace.store.consent import ConsentRule, allowed
from medspace.store.engine import ClinicalStore
from medspace.wire.messages import (
    DATASET_KIND,
    MAX_EPSILON,
    DatasetOffer,
    OfferNoise,
    OfferPeriod,
    OfferRisk,
    digest,
    now_ms,
)
from medspace.wire.signing import WireKey

__all__ = [
    "CATEGORIES_PER_PERSON",
    "DEFAULT_EPSILON",
    "DEFAULT_PROFILE",
    "DELTA",
    "EPSILON_SHARES",
    "QUASI_IDENTIFIERS",
    "ROWS_PER_PERSON",
    "TABLES",
    "PublishError",
    "Published",
    "build_offer",
    "noisy_categories",
    "noisy_count",
    "offer_policy",
    "publish",
    "send_offer",
]

DEFAULT_EPSILON = 1.0
CATALOG_EPSILON = 10.0
"""The total ε a node's catalog offers may spend, unless ``node.json`` says otherwise
(``catalog_epsilon``): each publication is charged to it before any count is noised."""
CATALOG_BUDGET = "catalog"
DEFAULT_PROFILE = "cn-health"
EPSILON_SHARES: Mapping[str, float] = {"persons": 0.25, "rows": 0.15, "categories": 0.6}
"""How one publication's ε is split. The rows' part is split again evenly over the tables, the
categories' part between the condition categories and the drug groups."""
ROWS_PER_PERSON = 50
CATEGORIES_PER_PERSON = 5
DELTA = 1e-6
"""The δ of one publication, half for the condition categories and half for the drug groups."""
TABLES: tuple[str, ...] = (
    "observation_period", "visit", "condition", "drug_exposure", "measurement", "observation",
    "allergy", "procedure", "immunization", "death",
)  # fmt: skip
"""The clinical tables whose size an offer states (persons are counted on their own)."""
EVENT_DATES: Mapping[str, str] = {
    "visit": "start_date", "condition": "start_date", "drug_exposure": "start_date",
    "measurement": "measurement_date", "observation": "observation_date",
    "allergy": "recorded_date", "procedure": "procedure_date",
    "immunization": "immunization_date", "death": "death_date",
}  # fmt: skip
CODE_SYSTEMS: Mapping[str, str] = {"ICD-10": "condition", "ATC": "drug_exposure",
                                   "LOINC": "measurement"}
QUASI_IDENTIFIERS: tuple[str, ...] = ("birth_year", "birth_month", "sex")
_INTEGER = "i64"
_LARGEST_THRESHOLD = 2**62


if TYPE_CHECKING:
    import opendp.prelude as dp


class PublishError(ValueError):
    """The offer cannot be made or was refused; the message says what to do."""


# -- differential privacy -------------------------------------------------------------------


@functools.cache
def _opendp() -> ModuleType:
    """OpenDP, imported when an offer is made: loading it takes a quarter of a second that no
    other ``medspace`` command should pay."""
    import opendp.prelude

    opendp.prelude.enable_features("contrib")
    return opendp.prelude


def _count_space() -> tuple[Any, Any]:
    dp = _opendp()
    return dp.atom_domain(T=_INTEGER), dp.absolute_distance(T=_INTEGER)


@functools.lru_cache(maxsize=64)
def _scale(sensitivity: int, epsilon: float) -> float:
    """The smallest discrete Laplace scale that keeps a count of this sensitivity within ε;
    kept once found, since every table's count asks the same."""
    dp = _opendp()
    return float(dp.binary_search_param(
        lambda scale: dp.m.make_laplace(*_count_space(), scale=scale),
        d_in=sensitivity, d_out=epsilon))


def noisy_count(count: int, sensitivity: int, epsilon: float) -> tuple[int, float]:
    """``count`` with discrete Laplace noise for ε-DP when one person changes it by at most
    ``sensitivity``; returns the noisy count (negative values read as 0) and the ε OpenDP
    certifies for it."""
    mechanism = _opendp().m.make_laplace(*_count_space(), scale=_scale(sensitivity, epsilon))
    return max(0, int(mechanism(int(count)))), float(mechanism.map(sensitivity))


@functools.lru_cache(maxsize=64)
def _laplace_threshold(per_person: int, epsilon: float, delta: float,
                       min_cell: int) -> tuple[dp.Measurement, int]:
    """The Laplace threshold mechanism for categories, and its threshold: the smallest one, and
    never below ``min_cell``, that keeps δ at the scale that keeps ε."""
    dp = _opendp()
    space = (dp.map_domain(dp.atom_domain(T=str), dp.atom_domain(T=_INTEGER)),
             dp.l01inf_distance(dp.absolute_distance(T=_INTEGER)))
    d_in = (per_person, per_person, 1)
    scale = _scale(per_person, epsilon)

    def mechanism(threshold: int) -> dp.Measurement:
        return dp.m.make_laplace_threshold(*space, scale=scale, threshold=threshold)

    def keeps_delta(threshold: int) -> bool:
        return float(mechanism(threshold).map(d_in)[1]) <= delta

    low, high = min_cell, max(min_cell, 1)
    while not keeps_delta(high):
        if high >= _LARGEST_THRESHOLD:
            raise PublishError(f"no threshold keeps δ {delta:g} at ε {epsilon:g}; raise --epsilon")
        low, high = high, min(high * 2, _LARGEST_THRESHOLD)
    while low < high:
        middle = (low + high) // 2
        if keeps_delta(middle):
            high = middle
        else:
            low = middle + 1
    return mechanism(high), high


def noisy_categories(counts: Mapping[str, int], *, per_person: int, epsilon: float,
                     delta: float, min_cell: int) -> tuple[dict[str, int], int, float, float]:
    """The categories whose noisy person count reaches a threshold, with their noisy counts.

    ``counts`` holds each category present and its persons, one person counting in at most
    ``per_person`` categories. OpenDP's Laplace threshold mechanism (propose-test-release) is
    (ε, δ)-DP over such data; the threshold is the smallest one, and never below
    ``min_cell``, that keeps δ. Returns the listed categories, the threshold, and the ε and δ
    OpenDP certifies.
    """
    mechanism, threshold = _laplace_threshold(per_person, epsilon, delta, min_cell)
    spent_epsilon, spent_delta = mechanism.map((per_person, per_person, 1))
    released = mechanism({code: int(n) for code, n in counts.items()})
    return ({code: int(n) for code, n in sorted(released.items())}, threshold,
            float(spent_epsilon), float(spent_delta))


# -- what the store holds (exact, never sent) -----------------------------------------------


@dataclass(frozen=True)
class _Holdings:
    """The exact figures an offer is made from; only their noised or thresholded forms leave."""

    persons: int
    rows: dict[str, int]
    conditions: dict[str, int]
    drugs: dict[str, int]
    code_systems: tuple[str, ...]
    period: tuple[dt.date, dt.date] | None
    quasi: pd.DataFrame


def _scalar(store: ClinicalStore, key: tuple[Any, ...], build: Callable[[], ir.Expr]) -> int:
    [(value,)] = store.rows(key, build)
    return int(value or 0)


def _categories(store: ClinicalStore, table: str, column: str, persons: ir.Table,
                key: tuple[Any, ...]) -> dict[str, int]:
    """Persons per 3-character code category, each person in at most CATEGORIES_PER_PERSON of
    them, chosen at random so that no category is favoured."""

    def build() -> ir.Table:
        rows = store.backend.table(table).semi_join(persons, "person_id")
        rows = rows.filter(rows[column].length() >= 3)
        held = rows.select(person_id=rows.person_id, code=rows[column].substr(0, 3)).distinct()
        ranked = held.mutate(rank=ibis.row_number().over(group_by=held.person_id,
                                                         order_by=ibis.random()))
        kept = ranked.filter(ranked.rank < CATEGORIES_PER_PERSON)
        return kept.group_by("code").aggregate(persons=kept.count())

    return {str(code): int(n) for code, n in store.rows(key, build)}


def _period(store: ClinicalStore, persons: ir.Table, min_cell: int,
            key: tuple[Any, ...]) -> tuple[dt.date, dt.date] | None:
    """The first and last month in which at least ``min_cell`` persons have an event."""

    def build() -> ir.Table:
        months = []
        for table, column in EVENT_DATES.items():
            rows = store.backend.table(table).semi_join(persons, "person_id")
            months.append(rows.select(person_id=rows.person_id,
                                      month=rows[column].truncate("M")))
        events = ibis.union(*months, distinct=True)
        per_month = events.group_by("month").aggregate(persons=events.count())
        held = per_month.filter(per_month.persons >= min_cell)
        return held.aggregate(first=held.month.min(), last=held.month.max())

    [(first, last)] = store.rows(key, build)
    return None if first is None else (first, last)


def _holdings(store: ClinicalStore, consent: ConsentRule, min_cell: int) -> _Holdings:
    """Measure the store: everyone research consent lets count, and their records."""
    persons = allowed(store.backend.table("person"), store, consent)
    key = ("catalog", consent, min_cell)

    def rows_of(table: str) -> ir.Expr:
        mine = store.backend.table(table).semi_join(persons, "person_id")
        per_person = mine.group_by("person_id").aggregate(n=mine.count())
        return per_person.n.clip(upper=ROWS_PER_PERSON).sum()

    def persons_with(table: str) -> ir.Expr:
        return store.backend.table(table).semi_join(persons, "person_id").person_id.nunique()

    systems = tuple(system for system, table in CODE_SYSTEMS.items()
                    if _scalar(store, (*key, "coded", table),
                               lambda table=table: persons_with(table)) >= min_cell)
    quasi = store.rows((*key, "quasi"), lambda: persons.select(*QUASI_IDENTIFIERS))
    return _Holdings(
        persons=_scalar(store, (*key, "persons"), persons.count),
        rows={table: _scalar(store, (*key, "rows", table, ROWS_PER_PERSON),
                             lambda table=table: rows_of(table)) for table in TABLES},
        conditions=_categories(store, "condition", "condition_source_value", persons,
                               (*key, "icd10", CATEGORIES_PER_PERSON)),
        drugs=_categories(store, "drug_exposure", "drug_source_value", persons,
                          (*key, "atc", CATEGORIES_PER_PERSON)),
        code_systems=systems,
        period=_period(store, persons, min_cell, (*key, "period")),
        quasi=pd.DataFrame(quasi, columns=list(QUASI_IDENTIFIERS)),
    )


def _risk(quasi: pd.DataFrame, min_cell: int) -> OfferRisk:
    """The summary figures of the quasi-identifiers' risk; shares rounded to 0.001, since the
    exact ones with a noisy size would come close to exact counts."""
    report = measure(quasi, list(QUASI_IDENTIFIERS), threshold=1.0 / min_cell)
    at_risk = report.records_at_risk / report.records if report.records else 0.0
    return OfferRisk(quasi_identifiers=list(QUASI_IDENTIFIERS), k_anonymity=report.k_anonymity,
                     records_at_risk=round(at_risk, 3),
                     sample_uniqueness=round(report.sample_uniqueness, 3),
                     threshold=report.threshold)


# -- the offer ------------------------------------------------------------------------------


def offer_policy(policy: Policy, node_id: str, dataset: str) -> dict[str, Any]:
    """The usage policy as the ODRL Offer published with the dataset: assigned by this node,
    targeting this dataset. A policy the node could not enforce itself is not offered."""
    found = problems(policy)
    if found:
        raise PublishError(f"{USAGE_POLICY_FILE} uses terms medspace does not enforce "
                           f"({'; '.join(found)}); fix it before publishing")
    if policy.assigner not in (None, node_id):
        raise PublishError(f"{USAGE_POLICY_FILE} is assigned by {policy.assigner!r}, not this "
                           f"node ({node_id}); correct its assigner")
    if policy.target not in (None, dataset):
        raise PublishError(f"{USAGE_POLICY_FILE} targets {policy.target!r}, not this node's "
                           f"dataset {dataset!r}; correct its target or node.json's dataset")
    offer = policy.model_copy(update={"type": "Offer", "assigner": node_id, "target": dataset})
    try:
        return to_jsonld(offer)
    except PolicyError as exc:
        raise PublishError(f"{exc}; fix {USAGE_POLICY_FILE} before publishing") from None


def build_offer(
    store: ClinicalStore,
    *,
    node_id: str,
    dataset: str,
    title: str,
    description: str,
    policy: dict[str, Any],
    deid_profile: str,
    consent: ConsentRule,
    epsilon: float = DEFAULT_EPSILON,
    jurisdiction: str | None = None,
    min_cell: int = DisclosureRules().min_cell,
    published_at: int | None = None,
) -> DatasetOffer:
    """The dataset offer of ``store``, with fresh noise; see the module docstring for what it
    holds and how each figure is protected."""
    if not 0 < epsilon <= MAX_EPSILON:
        raise PublishError(f"ε must be above 0 and at most {MAX_EPSILON:g}, not {epsilon:g}")
    held = _holdings(store, consent, min_cell)
    persons, persons_epsilon = noisy_count(held.persons, 1, epsilon * EPSILON_SHARES["persons"])
    table_epsilon = epsilon * EPSILON_SHARES["rows"] / len(TABLES)
    noisy_rows = {table: noisy_count(n, ROWS_PER_PERSON, table_epsilon)
                  for table, n in held.rows.items()}
    conditions, drugs = (
        noisy_categories(counts, per_person=CATEGORIES_PER_PERSON,
                         epsilon=epsilon * EPSILON_SHARES["categories"] / 2, delta=DELTA / 2,
                         min_cell=min_cell)
        for counts in (held.conditions, held.drugs))
    period = None if held.period is None else OfferPeriod(
        start=held.period[0].strftime("%Y-%m"), end=held.period[1].strftime("%Y-%m"))
    try:
        return DatasetOffer(
            dataset=dataset, node=node_id, title=title, description=description,
            published_at=now_ms() if published_at is None else published_at,
            jurisdiction=jurisdiction, persons=persons,
            rows={table: n for table, (n, _) in noisy_rows.items()},
            code_systems=list(held.code_systems), conditions=conditions[0], drugs=drugs[0],
            period=period, deid_profile=deid_profile, risk=_risk(held.quasi, min_cell),
            noise=OfferNoise(
                epsilon=epsilon, delta=DELTA, persons_epsilon=persons_epsilon,
                rows_epsilon=max(spent for _, spent in noisy_rows.values()),
                rows_per_person=ROWS_PER_PERSON,
                categories_epsilon=conditions[2], categories_delta=conditions[3],
                categories_per_person=CATEGORIES_PER_PERSON, category_threshold=conditions[1],
                min_cell=min_cell),
            policy=policy,
        )
    except ValueError as exc:
        raise PublishError(f"the offer cannot be made: {exc}") from None


# -- sending it -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Published:
    """An offer the hub took: what it said, its digest, and where each log recorded it."""

    offer: DatasetOffer
    payload_digest: str
    hub_index: int
    journal_index: int


async def send_offer(client: httpx.AsyncClient, hub_url: str, key: WireKey,
                     offer: DatasetOffer) -> dict[str, Any]:
    """Sign ``offer`` with the node's key and post it to the hub's catalog; the hub's answer.

    Raises PublishError when the hub cannot be reached, refuses the offer, or says it logged
    another digest than the node's.
    """
    body = offer.model_dump(mode="json")
    signed = key.sign(DATASET_KIND, body)
    url = hub_url.rstrip("/") + "/v1/catalog"
    try:
        response = await client.post(url, json=signed.model_dump())
    except httpx.HTTPError as exc:
        raise PublishError(f"cannot reach the hub at {hub_url} ({exc}); check that it runs and "
                           "publish again") from None
    if response.status_code != 200:
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text
        raise PublishError(f"the hub refused the offer ({response.status_code}): "
                           f"{str(detail)[:500]}")
    answer: dict[str, Any] = response.json()
    if answer.get("payload_digest") != digest(body):
        raise PublishError("the hub logged another digest than this node's offer; do not trust "
                           "this catalog entry and tell the data space's operator")
    return answer


def _config(root: Path) -> dict[str, Any]:
    try:
        config = read_config(root)
    except NodeSetupError as exc:
        raise PublishError(str(exc)) from None
    if not config.get("dataset") or not config.get("hub_url"):
        raise PublishError(f"{root / 'node.json'} names no dataset or hub_url; join the data "
                           "space again")
    return config


def _profile_name(root: Path, config: Mapping[str, Any]) -> str:
    """The name of the node's de-identification profile, which must load."""
    chosen = str(config.get("deid_profile", DEFAULT_PROFILE))
    try:
        return load_profile(chosen if chosen in BUILT_IN else root / chosen).name
    except ProfileError as exc:
        raise PublishError(f"node.json: deid_profile: {exc}") from None


def _prepare(root: Path, config: Mapping[str, Any], title: str | None,
             description: str | None, epsilon: float) -> DatasetOffer:
    """Build and screen the offer: the work that reads the store, off the event loop."""
    try:
        rules = Governance.read(root, config)
    except GovernanceError as exc:
        raise PublishError(f"{exc}; fix it and publish again") from None
    if rules.usage_policy is None:
        raise PublishError(f"this node has no usage policy ({root / USAGE_POLICY_FILE}); write "
                           "one before publishing: nothing is offered without its terms")
    node_id, dataset = str(config["id"]), str(config["dataset"])
    today = dt.datetime.now(dt.UTC).date()
    try:
        store = ClinicalStore.open_duckdb(root / "store.duckdb")
    except duckdb.Error as exc:
        raise PublishError(f"cannot open the clinical store ({exc}); if the node's agent is "
                           "running in another process, stop it, publish, and start it again"
                           ) from None
    with store:
        store.create_schema()
        offer = build_offer(
            store, node_id=node_id, dataset=dataset,
            title=title or f"Clinical records of {node_id}",
            description=description if description is not None else (
                f"De-identified clinical records held by {node_id}; studies approved by the "
                "hospital receive disclosure-controlled aggregates, never records."),
            policy=offer_policy(rules.usage_policy, node_id, dataset),
            deid_profile=_profile_name(root, config),
            consent=ConsentRule("research", today, rules.consent_defaults["research"]),
            epsilon=epsilon, jurisdiction=rules.jurisdiction)
    try:
        VaultEgressFilter(open_vault(root)).check(
            json.dumps(offer.model_dump(mode="json"), ensure_ascii=False))
    except EgressBlocked as blocked:
        raise PublishError(f"the offer would carry a patient's identifier ({blocked}); change "
                           "the title or description") from None
    except KeyFileError as exc:
        raise PublishError(f"cannot open the identity vault to screen the offer: {exc}") from None
    return offer


async def publish(root: Path, *, title: str | None = None, description: str | None = None,
                  epsilon: float = DEFAULT_EPSILON) -> Published:
    """Make the node's dataset offer, journal it, and publish it in the hub's catalog.

    The publication's ε is first charged to the node's catalog budget (refused when that would
    pass ``catalog_epsilon``). The node journals the offer's digest before it leaves (it spends
    ε whether or not the hub takes it), then posts it signed over the node's mutual-TLS
    connection.
    """
    config = _config(root)
    cap = config.get("catalog_epsilon", CATALOG_EPSILON)
    if isinstance(cap, bool) or not isinstance(cap, int | float) or not 0 < cap <= 1000:
        raise PublishError("node.json: 'catalog_epsilon' must be a number above 0, at most 1000")
    state = NodeState(create_engine(sqlite_url(root / "node.db")))
    try:
        await asyncio.to_thread(state.spend, CATALOG_BUDGET, epsilon, float(cap))
    except BudgetExhausted as exc:
        raise PublishError(
            f"this node's catalog offers have spent ε {exc.spent:g} of the {exc.cap:g} it "
            f"allows (node.json catalog_epsilon); publishing again with ε {epsilon:g} would "
            "pass it. Every publication tells a little more about the same patients: raise "
            "the cap only as a deliberate decision") from None
    offer = await asyncio.to_thread(_prepare, root, config, title, description, epsilon)
    payload_digest = digest(offer.model_dump(mode="json"))
    try:
        key = participant_key(root)
    except (KeyFileError, OSError) as exc:
        raise PublishError(f"cannot read the node's signing key: {exc}") from None
    journal = open_journal(root, offer.node)
    try:
        journal_index = await journal.record_async(new_event(
            actor=offer.node, org=offer.node, role="hospital", action=Action.DATASET_PUBLISHED,
            subject=offer.dataset, decision="info", payload_digest=payload_digest,
            reason=f"catalog offer sent to the hub; epsilon {offer.noise.epsilon:g} spent"))
    finally:
        await asyncio.to_thread(journal.close)
    async with hub_client(root) as client:
        answer = await send_offer(client, str(config["hub_url"]), key, offer)
    return Published(offer, payload_digest, int(answer["index"]), journal_index)
