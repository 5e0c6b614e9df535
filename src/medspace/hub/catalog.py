"""The data space's catalog: the datasets hospitals offer, and finding them.

Each hospital's node publishes one signed :class:`~medspace.wire.messages.DatasetOffer` per
dataset; the latest offer of a dataset stands, and only the node that first published a
dataset may publish it again. The catalog is shown as JSON-LD shaped after the Dataspace
Protocol's catalog: a ``dcat:Catalog`` whose ``dcat:dataset`` entries carry DCAT and Dublin Core
metadata, the usage policy as an ODRL Offer under ``odrl:hasPolicy``, and what only medspace
describes — noisy sizes, code categories, the de-identification profile and its risk, the
noise's parameters — under the ``medspace:`` prefix.

Searching:

* ``hospital`` — the datasets the hospital publishes;
* ``code`` — an ICD-10 code or ATC code, or a prefix of one, matched against the published
  3-character categories: ``C34.1`` and ``C34`` find ``C34``, ``L01XE`` finds ``L01``, ``C3``
  finds any category from ``C30`` to ``C39``;
* ``purpose`` — the datasets whose offered policy permits ``aggregate`` for that purpose to a
  researcher now, at the start of an agreement (no use yet, no time elapsed). The recipient is
  :data:`ANY_RESEARCHER`, so a policy that permits only named recipients is not listed. A
  policy medspace does not understand entirely is never listed as permitting (DESIGN §3.7).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import unicodedata
from collections.abc import Iterable
from typing import Any

from pydantic import ValidationError

from medspace.hub.state import CatalogRow
from medspace.policy import purposes
from medspace.policy.evaluate import Request, evaluate
from medspace.policy.odrl import Policy, PolicyError, parse_jsonld
from medspace.wire.messages import DatasetOffer

__all__ = [
    "ANY_RESEARCHER",
    "CONTEXT",
    "CatalogError",
    "catalog_document",
    "check_offer",
    "code_category",
    "dataset_document",
    "dataset_entry",
    "matches_code",
    "permits",
    "search",
]

log = logging.getLogger(__name__)

CONTEXT: dict[str, str] = {
    "dcat": "http://www.w3.org/ns/dcat#",
    "dct": "http://purl.org/dc/terms/",
    "odrl": "http://www.w3.org/ns/odrl/2/",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "medspace": "https://medspace.example.org/ns/catalog#",
}
CATALOG_ID = "urn:medspace:catalog"
ANY_RESEARCHER = "any-researcher"
"""The recipient a purpose search asks for: a researcher the policy does not name."""
_CODE = re.compile(r"[A-Z](?:[0-9](?:[0-9](?:\.?[0-9A-Z]{1,10})?)?)?")


class CatalogError(ValueError):
    """An offer or a search the hub refuses, with the HTTP status and the reason to send."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def check_offer(offer: DatasetOffer, existing: CatalogRow | None) -> Policy:
    """The offer's policy, if the hub may publish ``offer`` over ``existing`` (the dataset's
    current offer); CatalogError saying why not.

    The policy must read as ODRL and be an Offer assigned by the publishing node for this
    dataset: a catalog entry must not promise terms its hospital did not set. A policy with
    terms medspace does not enforce is kept, and never permits (:func:`permits`).
    """
    if existing is not None and existing.node != offer.node:
        raise CatalogError(403, f"{offer.dataset} is published by {existing.node}; a node may "
                                "only publish its own dataset")
    if existing is not None and existing.published_ms >= offer.published_at:
        raise CatalogError(409, f"{offer.dataset} already has an offer as new as this one; "
                                "publish again to replace it")
    try:
        policy = parse_jsonld(offer.policy, f"the policy offered with {offer.dataset}")
    except PolicyError as exc:
        raise CatalogError(422, f"the offer's policy is not readable ODRL: {exc}") from None
    if policy.type != "Offer":
        raise CatalogError(422, f"the offer's policy is an ODRL {policy.type}, not an Offer")
    if policy.assigner != offer.node:
        raise CatalogError(422, f"the offer's policy is assigned by {policy.assigner!r}, not by "
                                f"the publishing node {offer.node!r}")
    if policy.target not in (None, offer.dataset):
        raise CatalogError(422, f"the offer's policy targets {policy.target!r}, not the dataset "
                                f"{offer.dataset!r}")
    return policy


def code_category(code: str) -> str:
    """A searched code in the catalog's form: its 3-character category (``C34.1`` → ``C34``,
    ``L01XE`` → ``L01``), or the whole of a shorter prefix (``C3``)."""
    folded = re.sub(r"\s", "", unicodedata.normalize("NFKC", code)).upper()
    if not _CODE.fullmatch(folded):
        raise CatalogError(400, f"code={code!r} is not an ICD-10 code or prefix (C34, C34.1) "
                                "or an ATC code (L01, L01XE01)")
    return folded[:3]


def matches_code(offer: DatasetOffer, category: str) -> bool:
    """Whether the offer lists a condition category or drug group under ``category``."""
    return any(listed.startswith(category) for listed in (*offer.conditions, *offer.drugs))


def permits(offer: DatasetOffer, purpose: str, now: dt.datetime) -> bool:
    """Whether the offer's policy lets a researcher aggregate the dataset for ``purpose`` now;
    False for any policy medspace cannot read or does not understand entirely."""
    try:
        policy = parse_jsonld(offer.policy, f"the policy offered with {offer.dataset}")
    except PolicyError:
        return False
    request = Request(action="aggregate", purpose=purpose, recipient=ANY_RESEARCHER,
                      role="researcher", now=now, target=offer.dataset,
                      jurisdiction=offer.jurisdiction, queries=0, elapsed=dt.timedelta(0))
    return evaluate(policy, request).permitted


def _instant(ms: int) -> dict[str, str]:
    moment = dt.datetime.fromtimestamp(ms / 1000, dt.UTC)
    return {"@value": moment.isoformat(timespec="seconds").replace("+00:00", "Z"),
            "@type": "xsd:dateTime"}


def _month(month: str) -> dict[str, str]:
    return {"@value": month, "@type": "xsd:gYearMonth"}


def _categories(listed: dict[str, int]) -> list[dict[str, Any]]:
    return [{"medspace:code": code, "medspace:persons": persons}
            for code, persons in sorted(listed.items())]


def dataset_entry(offer: DatasetOffer, row: CatalogRow) -> dict[str, Any]:
    """One ``dcat:Dataset`` of the catalog: the offer and when it was published."""
    noise, risk = offer.noise, offer.risk
    entry: dict[str, Any] = {
        "@id": offer.dataset,
        "@type": "dcat:Dataset",
        "dct:identifier": offer.dataset,
        "dct:title": offer.title,
        "dct:description": offer.description,
        "dct:publisher": {"@id": offer.node},
        "dct:issued": _instant(row.first_published_ms),
        "dct:modified": _instant(row.published_ms),
        "odrl:hasPolicy": [offer.policy],
        "dcat:distribution": [{
            "@type": "dcat:Distribution",
            "dct:format": {"@id": "medspace:AggregateStudy"},
            "dcat:accessService": {"@type": "dcat:DataService",
                                   "dcat:endpointURL": {"@id": "/v1/studies"}},
        }],
        "medspace:persons": offer.persons,
        "medspace:rows": [{"medspace:table": table, "medspace:rows": rows}
                          for table, rows in sorted(offer.rows.items())],
        "medspace:codeSystems": list(offer.code_systems),
        "medspace:conditionCategories": _categories(offer.conditions),
        "medspace:drugGroups": _categories(offer.drugs),
        "medspace:deidProfile": offer.deid_profile,
        "medspace:risk": {
            "medspace:quasiIdentifiers": list(risk.quasi_identifiers),
            "medspace:kAnonymity": risk.k_anonymity,
            "medspace:recordsAtRisk": risk.records_at_risk,
            "medspace:sampleUniqueness": risk.sample_uniqueness,
            "medspace:threshold": risk.threshold,
        },
        "medspace:noise": {
            "medspace:mechanism": noise.mechanism,
            "medspace:epsilon": noise.epsilon,
            "medspace:delta": noise.delta,
            "medspace:personsEpsilon": noise.persons_epsilon,
            "medspace:rowsEpsilon": noise.rows_epsilon,
            "medspace:rowsPerPerson": noise.rows_per_person,
            "medspace:categoriesEpsilon": noise.categories_epsilon,
            "medspace:categoriesDelta": noise.categories_delta,
            "medspace:categoriesPerPerson": noise.categories_per_person,
            "medspace:categoryThreshold": noise.category_threshold,
            "medspace:minCell": noise.min_cell,
        },
        "medspace:offerDigest": row.payload_digest,
    }
    if offer.period is not None:
        entry["dct:temporal"] = {"@type": "dct:PeriodOfTime",
                                 "dcat:startDate": _month(offer.period.start),
                                 "dcat:endDate": _month(offer.period.end)}
    if offer.jurisdiction is not None:
        entry["dct:spatial"] = offer.jurisdiction
    return entry


def _readable(rows: Iterable[CatalogRow]) -> list[tuple[DatasetOffer, CatalogRow]]:
    """The stored offers this hub can read; one it cannot is left out of the catalog, since
    showing it would mean guessing what it says."""
    found = []
    for row in rows:
        try:
            found.append((DatasetOffer.model_validate_json(row.offer), row))
        except ValidationError as exc:
            log.error("the stored offer of %s is unreadable and is not shown: %s", row.dataset,
                      exc.errors()[:3])
    return found


def dataset_document(row: CatalogRow) -> dict[str, Any]:
    """One dataset of the catalog as a JSON-LD document of its own."""
    readable = _readable([row])
    if not readable:
        raise CatalogError(500, f"the hub cannot read the stored offer of {row.dataset}; its "
                                "hospital should publish it again")
    return {"@context": CONTEXT, **dataset_entry(*readable[0])}


def catalog_document(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """The catalog as one JSON-LD document around ``entries``."""
    return {"@context": CONTEXT, "@id": CATALOG_ID, "@type": "dcat:Catalog",
            "dct:title": "medspace data space catalog", "dcat:dataset": entries}


def search(rows: Iterable[CatalogRow], *, code: str | None = None, purpose: str | None = None,
           now: dt.datetime | None = None) -> dict[str, Any]:
    """The catalog of the offers in ``rows`` that match ``code`` and ``purpose`` (each
    ignored when None); CatalogError for a code or purpose that cannot be searched for."""
    category = None if code is None else code_category(code)
    if purpose is not None and not purposes.is_known(purpose):
        raise CatalogError(400, f"purpose={purpose!r} is not a purpose; purposes are "
                                f"{', '.join(purposes.PURPOSES)}")
    moment = now or dt.datetime.now(dt.UTC)
    entries = [dataset_entry(offer, row) for offer, row in _readable(rows)
               if (category is None or matches_code(offer, category))
               and (purpose is None or permits(offer, purpose, moment))]
    return catalog_document(entries)
