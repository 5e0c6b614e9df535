"""``medspace node publish``: offer the hospital's dataset in the data space's catalog."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from medspace.node.publish import (
    CATEGORIES_PER_PERSON,
    DEFAULT_EPSILON,
    ROWS_PER_PERSON,
    PublishError,
    publish,
)
from medspace.terminal import fail, out


def publish_command(
    folder: Annotated[Path, typer.Argument(help="The node's folder (after `medspace node join`).")],
    title: Annotated[str | None, typer.Option(
        help="The dataset's title in the catalog (default: 'Clinical records of' and the "
             "node's id).",
    )] = None,
    description: Annotated[str | None, typer.Option(
        help="What the dataset holds, in a few sentences for researchers. Never name a "
             "patient: the offer is screened and refused if it carries an identifier.")] = None,
    epsilon: Annotated[float, typer.Option(
        help="The differential-privacy budget ε this publication spends on its noisy counts "
             "(above 0, at most 10). Smaller is more private and noisier; every publication "
             "spends it again.")] = DEFAULT_EPSILON,
) -> None:
    """Publish this hospital's dataset offer in the data space's catalog.

    The offer describes the node's dataset without telling anything about a patient: the
    number of persons and each table's rows with OpenDP discrete Laplace noise (a table counts
    at most 50 rows of one person), the ICD-10 categories and ATC groups whose noisy person
    count passes a threshold of at least the minimum cell (one person counts in at most 5 of
    each), the code systems and the months held by at least the minimum cell of persons, the
    de-identification profile (node.json "deid_profile", default cn-health) with the risk of
    the person table's quasi-identifiers, and usage-policy.yaml offered as an ODRL Offer. Only
    persons whose consent lets them count for research are described.

    The offer is journalled, then signed with the node's key and sent over its mutual-TLS
    connection; the hub logs it (dataset.published, policy.published) and shows it in its
    catalog, where a newer offer replaces this one. Stop the node's agent first if it runs in
    another process: the clinical store has one user at a time.
    """
    try:
        published = asyncio.run(publish(folder, title=title, description=description,
                                        epsilon=epsilon))
    except PublishError as exc:
        raise fail(str(exc)) from None
    offer = published.offer
    noise = offer.noise
    uid = offer.policy.get("uid") or offer.policy.get("@id") or "(no uid)"
    out.print(f"published {offer.dataset} in the catalog: {offer.title}", highlight=False)
    out.print(f"  persons: about {offer.persons:,} (noisy, ε {noise.persons_epsilon:g}); ε spent "
              f"by this publication: {noise.epsilon:g} in all, δ {noise.delta:g}",
              highlight=False)
    out.print(f"  rows per table: noisy, each counting at most {ROWS_PER_PERSON} rows of one "
              f"person (ε {noise.rows_epsilon:g} each)", highlight=False)
    out.print(f"  code categories: {len(offer.conditions)} ICD-10 and {len(offer.drugs)} ATC, "
              f"each with a noisy count of at least {noise.category_threshold} persons (one "
              f"person counts in at most {CATEGORIES_PER_PERSON})", highlight=False)
    period = "none held by enough persons" if offer.period is None else (
        f"{offer.period.start} to {offer.period.end}")
    out.print(f"  code systems: {', '.join(offer.code_systems) or 'none'}; period: {period}",
              highlight=False)
    out.print(f"  usage policy offered: {uid}; de-identification profile: "
              f"{offer.deid_profile}", highlight=False)
    out.print(f"  logged on the hub as entry {published.hub_index} and in this node's journal "
              f"as entry {published.journal_index} ({published.payload_digest})",
              highlight=False)
