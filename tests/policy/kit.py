"""Requests and small policies for the policy tests, written the way a hospital writes them."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone
from typing import Any

import yaml

from medspace.policy.evaluate import Request
from medspace.policy.odrl import Policy, parse_yaml

BEIJING = timezone(timedelta(hours=8))
NOW = datetime(2027, 6, 1, 9, 30, tzinfo=BEIJING)

REQUEST = Request(
    action="aggregate",
    purpose="research",
    recipient="university-x",
    role="researcher",
    now=NOW,
    target=None,
    jurisdiction="CN-SH",
    queries=0,
    elapsed=timedelta(days=1),
    epsilon_spent=0.0,
    epsilon=0.1,
)


def request(**changes: Any) -> Request:
    """The standard request, with ``changes``."""
    return dataclasses.replace(REQUEST, **changes)


def policy(*, permission: list[dict[str, Any]] | None = None,
           prohibition: list[dict[str, Any]] | None = None, **extra: Any) -> Policy:
    """A Set policy from the YAML form's rules, through the YAML reader."""
    document: dict[str, Any] = {"uid": "urn:test:policy", **extra}
    if permission is not None:
        document["permission"] = permission
    if prohibition is not None:
        document["prohibition"] = prohibition
    return parse_yaml(yaml.safe_dump(document, allow_unicode=True, sort_keys=False), "test.yaml")


def permitting(action: str | list[str] = "aggregate", **constraint: dict[str, Any]) -> Policy:
    """A policy with one permission of ``action`` under ``constraint`` (operand: {op: value})."""
    rule: dict[str, Any] = {"action": action}
    if constraint:
        rule["constraint"] = constraint
    return policy(permission=[rule])
