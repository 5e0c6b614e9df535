"""Usage policies as ODRL 2.2 documents: the model, and reading it from JSON-LD or YAML.

A policy arrives in one of two forms that read into the same :class:`Policy`:

* **ODRL JSON-LD** in compact form, as catalogs and other connectors exchange it:
  ``"@context": "http://www.w3.org/ns/odrl.jsonld"``, terms bare (``purpose``), prefixed
  (``odrl:purpose``, ``medspace:privacyBudget``) or as full IRIs, values plain or as
  ``{"@value": …, "@type": "xsd:dateTime"}`` / ``{"@id": …}`` objects;
* **YAML** that a hospital writes by hand: the same keys without ``@context``, where a rule's
  ``constraint`` may be a mapping from left operand to ``{operator: value}``::

      uid: https://hospital-a.example.org/policy/training-only
      permission:
        - action: train
          constraint:
            purpose: {isA: research}
            dateTime: {lt: 2027-12-31T23:59:59+08:00}
      prohibition:
        - action: [distribute, reproduce]

Reading separates two kinds of failure. A document whose *shape* is wrong — not an object, a
rule without an action, a constraint without an operator, a list where one value belongs, a
key given twice, a number that is not finite — raises :class:`PolicyError` naming the place: it
is the author's to fix. A document of the right shape that uses a *term* medspace does not
enforce — an unknown action, left operand, operator, policy type, conflict strategy, profile,
``@context`` or property — is read with the term kept as written (unknown properties, which
have no field, are listed in :attr:`Policy.unknown`). :func:`medspace.policy.evaluate.evaluate`
then denies every request under that policy and names each such term: a node must refuse to
act under a policy it only partly understands rather than guess what the rest meant (DESIGN
§3.7), and keeping the terms lets the denial say exactly which ones.

Hostile input is bounded: documents over :data:`MAX_DOCUMENT_BYTES` are refused, JSON and YAML
keys may not repeat (a repeated key would silently drop a constraint), and YAML anchors,
aliases and merge keys are refused, which also rules out exponential "billion laughs" documents.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    FiniteFloat,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
)

from medspace.policy import vocabulary as v

__all__ = [
    "EXAMPLES",
    "MAX_DOCUMENT_BYTES",
    "Constraint",
    "Duty",
    "Policy",
    "PolicyError",
    "Rule",
    "load_policy",
    "parse_jsonld",
    "parse_yaml",
    "to_jsonld",
]

MAX_DOCUMENT_BYTES = 256 * 1024
"""A policy is a few kilobytes; the bound keeps reading hostile input cheap."""

EXAMPLES: tuple[str, ...] = (
    "training-only-no-download", "research-aggregates-cn", "emergency-lookup",
)  # fmt: skip
"""The example policies shipped in ``medspace/policy/examples/``, by name."""

Scalar = StrictBool | Annotated[StrictInt, Field(ge=-(2**63), lt=2**63)] | FiniteFloat | StrictStr
"""A right operand's value; integers are bounded so that every one can be printed in a reason."""
RightOperand = Scalar | tuple[Scalar, ...]


class PolicyError(ValueError):
    """A policy document that cannot be read; the message names the source and the place."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Constraint(_Frozen):
    """``left_operand operator right_operand``: a condition a request must meet.

    The right operand is kept as written (text, number or a list of them); what it must be
    depends on the left operand, and the evaluator checks it.
    """

    left_operand: str
    operator: str
    right_operand: RightOperand
    data_type: str | None = None
    unit: str | None = None


class Duty(_Frozen):
    """An action the recipient must perform, e.g. ``delete`` within ``elapsedTime lteq P90D``."""

    action: str
    constraints: tuple[Constraint, ...] = ()


class Rule(_Frozen):
    """A permission or prohibition of one or more actions (ODRL reads several as one rule each).

    ``assigner``, ``assignee`` and ``target`` left unset take the policy's.
    """

    uid: str | None = None
    actions: tuple[str, ...] = Field(min_length=1)
    assigner: str | None = None
    assignee: str | None = None
    target: str | None = None
    constraints: tuple[Constraint, ...] = ()
    duties: tuple[Duty, ...] = ()


class Policy(_Frozen):
    """An ODRL policy: who grants what to whom, on which conditions, with which duties.

    ``type`` is ``Set``, ``Offer`` or ``Agreement`` (a document's plain ``Policy`` reads as
    ``Set``, ODRL's default); parties and assets are identifiers, compared as text with the
    request's recipient and target.
    """

    uid: str = Field(min_length=1)
    type: str = "Set"
    title: str | None = None
    description: str | None = None
    profiles: tuple[str, ...] = ()
    assigner: str | None = None
    assignee: str | None = None
    target: str | None = None
    conflict: str | None = None
    permissions: tuple[Rule, ...] = ()
    prohibitions: tuple[Rule, ...] = ()
    obligations: tuple[Duty, ...] = ()
    unknown: tuple[tuple[str, str], ...] = ()
    """(place, term) for each property or ``@context`` entry the reader did not understand."""


_POLICY_KEYS = frozenset({
    "@context", "uid", "type", "title", "description", "profile", "assigner", "assignee",
    "target", "conflict", "permission", "prohibition", "obligation",
})  # fmt: skip
_PERMISSION_KEYS = frozenset({"uid", "type", "action", "assigner", "assignee", "target",
                              "constraint", "duty"})
_PROHIBITION_KEYS = _PERMISSION_KEYS - {"duty"}
_DUTY_KEYS = frozenset({"type", "action", "constraint"})
_CONSTRAINT_KEYS = frozenset({"type", "leftOperand", "operator", "rightOperand", "dataType",
                              "unit"})
_ACTION_KEYS = frozenset({"uid", "value"})
_REFERENCE_KEYS = frozenset({"uid", "type"})
_REFERENCES = {"assigner": "Party", "assignee": "Party", "target": "Asset"}
_SHORTHAND_KEYS = ("dataType", "unit")
_KEYWORDS = {"@id": "uid", "@type": "type"}
_PREFIX_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
_NAMES = frozenset({
    *_POLICY_KEYS, *_PERMISSION_KEYS, *_CONSTRAINT_KEYS, *_ACTION_KEYS, *v.ACTIONS,
    *v.DUTY_ACTIONS, *v.LEFT_OPERANDS, *v.OPERATORS, *v.POLICY_TYPES, *v.CONFLICT_STRATEGIES,
    "Policy", "Permission", "Prohibition", "Duty", "Constraint", "Party", "Asset",
})  # fmt: skip
"""Names the reader gives meaning to; a ``@context`` may not redefine them as prefixes."""


class _Reader:
    """One pass over a decoded document, collecting unknown terms as it goes."""

    def __init__(self, source: str, *, jsonld: bool) -> None:
        self.source = source
        self.jsonld = jsonld
        self.prefixes = dict(v.PREFIXES)
        self.unknown: list[tuple[str, str]] = []

    def error(self, place: str, message: str) -> PolicyError:
        return PolicyError(f"{self.source}: {place}: {message}")

    def fields(self, data: object, place: str, known: frozenset[str],
               kind: str | None = None) -> dict[str, Any]:
        """The recognised properties of an object, by canonical name; others go to unknown."""
        if not isinstance(data, Mapping):
            raise self.error(place, f"must be an object, not {_kind(data)}")
        found: dict[str, Any] = {}
        for key, value in data.items():
            if not isinstance(key, str):
                raise self.error(place, f"a key is {_kind(key)}, not text")
            name = self.key(key)
            if name not in known:
                self.unknown.append((place, key))
                continue
            if name in found:
                raise self.error(place, f"{name!r} is given twice")
            if value is None:
                raise self.error(place, f"{key!r} is empty")
            found[name] = value
        if kind is not None and "type" in found:
            written = self.term(found.pop("type"), place)
            if written != kind:
                self.unknown.append((place, f"type {written}"))
        return found

    def key(self, key: str) -> str:
        """A property's canonical name (``@id`` and ``@type`` are ``uid`` and ``type``)."""
        return _KEYWORDS.get(key, key) if key.startswith("@") else v.resolve(key, self.prefixes)

    def text(self, value: object, place: str) -> str:
        if not isinstance(value, str):
            raise self.error(place, f"must be text, not {_kind(value)}")
        return value

    def term(self, value: object, place: str) -> str:
        """A vocabulary term, written as text or as ``{"@id": …}``."""
        if isinstance(value, Mapping) and set(value) == {"@id"}:
            value = value["@id"]
        return v.resolve(self.text(value, place), self.prefixes)

    def reference(self, value: object, place: str, kind: str) -> str:
        """A party or asset: an identifier, or an object holding one as ``uid``/``@id``."""
        if isinstance(value, str):
            return value
        found = self.fields(value, place, _REFERENCE_KEYS, kind)
        if "uid" not in found:
            raise self.error(place, "names no uid")
        return self.text(found["uid"], place)

    def context(self, value: object) -> None:
        entries = value if isinstance(value, list) else [value]
        odrl = False
        for entry in entries:
            if isinstance(entry, str):
                odrl = odrl or entry in v.ODRL_CONTEXTS
                if entry not in v.ODRL_CONTEXTS:
                    self.unknown.append(("@context", entry))
            elif isinstance(entry, Mapping):
                for prefix, iri in entry.items():
                    if (isinstance(prefix, str) and _PREFIX_NAME.fullmatch(prefix)
                            and prefix not in _NAMES and isinstance(iri, str)
                            and iri.endswith(("/", "#"))):
                        self.prefixes[prefix] = iri
                    else:
                        written = prefix if isinstance(prefix, str) else _kind(prefix)
                        self.unknown.append(("@context", written))
            else:
                raise self.error("@context", f"holds {_kind(entry)}, not an IRI or prefixes")
        if not odrl:
            raise self.error("@context", f"must include {v.ODRL_CONTEXT}")

    def policy(self, data: object) -> Policy:
        found = self.fields(data, "policy", _POLICY_KEYS)
        if self.jsonld:
            if "@context" not in found:
                raise self.error("policy", f"JSON-LD needs \"@context\": \"{v.ODRL_CONTEXT}\"")
            self.context(found["@context"])
        if "uid" not in found:
            raise self.error("policy", "has no uid")
        kind = self.term(found["type"], "policy type") if "type" in found else "Set"
        record: dict[str, Any] = {
            "uid": self.text(found["uid"], "policy uid"),
            "type": "Set" if kind == "Policy" else kind,
            "profiles": tuple(self.text(p, "policy profile") for p in _many(found, "profile")),
            "permissions": self.rules(found, "permission", _PERMISSION_KEYS, "Permission"),
            "prohibitions": self.rules(found, "prohibition", _PROHIBITION_KEYS, "Prohibition"),
            "obligations": tuple(self.duty(d, f"obligation {i}")
                                 for i, d in enumerate(_many(found, "obligation"), 1)),
        }
        for key in ("title", "description"):
            if key in found:
                record[key] = self.text(found[key], f"policy {key}")
        for key, expected in _REFERENCES.items():
            if key in found:
                record[key] = self.reference(found[key], f"policy {key}", expected)
        if "conflict" in found:
            record["conflict"] = self.term(found["conflict"], "policy conflict")
        record["unknown"] = tuple(self.unknown)
        try:
            return Policy.model_validate(record)
        except ValidationError as exc:
            details = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                                for e in exc.errors())
            raise PolicyError(f"{self.source}: {details}") from None

    def rules(self, found: Mapping[str, Any], key: str, known: frozenset[str],
              kind: str) -> tuple[dict[str, Any], ...]:
        return tuple(self.rule(data, f"{key} {i}", known, kind)
                     for i, data in enumerate(_many(found, key), 1))

    def rule(self, data: object, place: str, known: frozenset[str], kind: str) -> dict[str, Any]:
        found = self.fields(data, place, known, kind)
        actions = tuple(self.action(a, f"{place} action") for a in _many(found, "action"))
        if not actions:
            raise self.error(place, "names no action")
        rule: dict[str, Any] = {
            "actions": actions,
            "constraints": self.constraints(found.get("constraint"), place),
            "duties": tuple(self.duty(d, f"{place} duty {i}")
                            for i, d in enumerate(_many(found, "duty"), 1)),
        }
        if "uid" in found:
            rule["uid"] = self.text(found["uid"], f"{place} uid")
        for key, expected in _REFERENCES.items():
            if key in found:
                rule[key] = self.reference(found[key], f"{place} {key}", expected)
        return rule

    def action(self, value: object, place: str) -> str:
        """An action as a term, or as ODRL's ``{"rdf:value": …}`` object (whose refinements
        medspace does not read, so they land in unknown)."""
        if isinstance(value, str):
            return self.term(value, place)
        found = self.fields(value, place, _ACTION_KEYS)
        if len(found) != 1:
            raise self.error(place, "names no action, or more than one")
        return self.term(next(iter(found.values())), place)

    def duty(self, data: object, place: str) -> dict[str, Any]:
        found = self.fields(data, place, _DUTY_KEYS, "Duty")
        if "action" not in found:
            raise self.error(place, "names no action")
        return {"action": self.action(found["action"], f"{place} action"),
                "constraints": self.constraints(found.get("constraint"), place)}

    def constraints(self, value: object, place: str) -> tuple[dict[str, Any], ...]:
        if value is None:
            return ()
        if not self.jsonld and isinstance(value, Mapping) and not any(
            isinstance(key, str) and self.key(key) == "leftOperand"
            for key in value
        ):
            return self.shorthand(value, place)
        read: list[dict[str, Any]] = []
        for item in value if isinstance(value, list) else [value]:
            constraint = self.constraint(item, f"{place} constraint {len(read) + 1}", place)
            if constraint is not None:
                read.append(constraint)
        return tuple(read)

    def constraint(self, data: object, place: str, rule: str) -> dict[str, Any] | None:
        """One constraint object; None for one made only of properties medspace does not read
        (ODRL's logical constraints ``and``, ``or``, …), whose terms go to unknown under the
        rule's place, since the constraint has no place in the model."""
        before = len(self.unknown)
        found = self.fields(data, place, _CONSTRAINT_KEYS, "Constraint")
        missing = [k for k in ("leftOperand", "operator", "rightOperand") if k not in found]
        if missing and len(self.unknown) > before:
            self.unknown[before:] = [(rule, term) for _, term in self.unknown[before:]]
            return None
        if missing:
            raise self.error(place, f"has no {', '.join(missing)}")
        right, data_type = self.right_operand(found["rightOperand"], place)
        if "dataType" in found:
            declared = self.term(found["dataType"], f"{place} dataType")
            if data_type is not None and declared != data_type:
                raise self.error(place, f"dataType {declared!r} contradicts {data_type!r}")
            data_type = declared
        return {
            "left_operand": self.term(found["leftOperand"], f"{place} leftOperand"),
            "operator": self.term(found["operator"], f"{place} operator"),
            "right_operand": right,
            "data_type": data_type,
            "unit": self.term(found["unit"], f"{place} unit") if "unit" in found else None,
        }

    def shorthand(self, value: Mapping[Any, Any], place: str) -> tuple[dict[str, Any], ...]:
        """YAML's ``left_operand: {operator: value, …}``: one constraint per operator."""
        read: list[dict[str, Any]] = []
        for operand, tests in value.items():
            left = self.term(operand, f"{place} constraint")
            here = f"{place} constraint {operand!r}"
            if not isinstance(tests, Mapping) or not tests:
                raise self.error(here, "write it as {operator: value}")
            extra = {k: self.term(tests[k], f"{here} {k}") for k in _SHORTHAND_KEYS if k in tests}
            operators = [(op, right) for op, right in tests.items() if op not in _SHORTHAND_KEYS]
            if not operators:
                raise self.error(here, "names no operator")
            for op, right in operators:
                operand_value, data_type = self.right_operand(right, here)
                read.append({
                    "left_operand": left,
                    "operator": self.term(op, here),
                    "right_operand": operand_value,
                    "data_type": extra.get("dataType", data_type),
                    "unit": extra.get("unit"),
                })
        return tuple(read)

    def right_operand(self, value: object, place: str) -> tuple[Any, str | None]:
        """The value and, from a ``{"@value", "@type"}`` object, its declared data type."""
        if isinstance(value, list):
            return tuple(self.literal(item, place) for item in value), None
        if isinstance(value, Mapping):
            keys = set(value)
            if keys in ({"@list"}, {"@set"}):
                items = next(iter(value.values()))
                if not isinstance(items, list):
                    raise self.error(place, "@list or @set must hold a list")
                return tuple(self.literal(item, place) for item in items), None
            if keys == {"@value", "@type"}:
                return self.scalar(value["@value"], place), self.term(value["@type"], place)
        return self.literal(value, place), None

    def literal(self, value: object, place: str) -> Any:
        if isinstance(value, Mapping):
            if set(value) == {"@id"}:
                return self.text(value["@id"], place)
            if set(value) == {"@value"}:
                return self.scalar(value["@value"], place)
            raise self.error(place, "cannot read this value object (write a value, a list, "
                                    "{\"@value\": …} or {\"@id\": …})")
        return self.scalar(value, place)

    def scalar(self, value: object, place: str) -> Any:
        if isinstance(value, date):
            return value.isoformat()
        if isinstance(value, float) and not -float("inf") < value < float("inf"):
            raise self.error(place, f"{value!r} is not a finite number")
        if isinstance(value, bool | int | float | str):
            return value
        raise self.error(place, f"a value must be text or a number, not {_kind(value)}")


def _many(found: Mapping[str, Any], key: str) -> list[Any]:
    """A property that may hold one value or a list of them, as a list."""
    value = found.get(key, [])
    return value if isinstance(value, list) else [value]


def _kind(value: object) -> str:
    """How to name a wrong value's type in an error, without echoing the value."""
    if value is None:
        return "null"
    names = {dict: "an object", list: "a list", str: "text", bool: "true/false"}
    for python_type, name in names.items():
        if isinstance(value, python_type):
            return name
    return "a number" if isinstance(value, int | float) else type(value).__name__


def _no_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError(f"key {key!r} appears twice")
        seen[key] = value
    return seen


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number a policy may hold")


class _StrictLoader(yaml.SafeLoader):
    """YAML without anchors, aliases, merge keys or repeated keys."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise yaml.composer.ComposerError(None, None, "anchors and aliases are refused",
                                              event.start_mark)
        return super().compose_node(parent, index)

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: set[str] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise yaml.constructor.ConstructorError(None, None, "merge keys are refused",
                                                        key_node.start_mark)
            if isinstance(key_node, yaml.ScalarNode):
                if key_node.value in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"key {key_node.value!r} appears twice", key_node.start_mark)
                seen.add(key_node.value)
        return super().construct_mapping(node, deep)


def _check_size(text: str | bytes, source: str) -> None:
    if len(text) > MAX_DOCUMENT_BYTES:
        raise PolicyError(f"{source}: longer than {MAX_DOCUMENT_BYTES} bytes")


def parse_jsonld(document: object, source: str = "<policy>") -> Policy:
    """A policy from ODRL JSON-LD: text (``str`` or ``bytes``) or the decoded JSON value.

    Anything that is not a readable policy raises :class:`PolicyError`, never another error.
    """
    if isinstance(document, str | bytes):
        _check_size(document, source)
        try:
            document = json.loads(document, object_pairs_hook=_no_repeats,
                                  parse_constant=_no_constant)
        except (ValueError, RecursionError) as exc:
            raise PolicyError(f"{source}: unreadable JSON: {exc}") from None
    try:
        return _Reader(source, jsonld=True).policy(document)
    except RecursionError:
        raise PolicyError(f"{source}: nested too deeply") from None


def parse_yaml(document: object, source: str = "<policy>") -> Policy:
    """A policy from YAML text or its decoded value: the hand-written form, or JSON-LD written
    as YAML when it carries an ``@context``.

    Anything that is not a readable policy raises :class:`PolicyError`, never another error.
    """
    if isinstance(document, str | bytes):
        _check_size(document, source)
        try:
            document = yaml.load(document, Loader=_StrictLoader)
        except (yaml.YAMLError, ValueError, RecursionError) as exc:
            raise PolicyError(f"{source}: unreadable YAML: {exc}") from None
    jsonld = isinstance(document, Mapping) and "@context" in document
    try:
        return _Reader(source, jsonld=jsonld).policy(document)
    except RecursionError:
        raise PolicyError(f"{source}: nested too deeply") from None


def load_policy(name_or_path: str | Path) -> Policy:
    """An example policy by name (:data:`EXAMPLES`), or a policy file: ``.json`` and
    ``.jsonld`` are read as JSON-LD, anything else as YAML."""
    if isinstance(name_or_path, str) and name_or_path in EXAMPLES:
        example = resources.files("medspace.policy").joinpath("examples", f"{name_or_path}.yaml")
        return parse_yaml(example.read_text(encoding="utf-8"), name_or_path)
    path = Path(name_or_path)
    try:
        data = path.read_bytes()
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise PolicyError(f"{path}: {reason}; examples are {', '.join(EXAMPLES)}") from None
    if path.suffix.lower() in (".json", ".jsonld"):
        return parse_jsonld(data, str(path))
    return parse_yaml(data, str(path))


def _constraint_jsonld(constraint: Constraint) -> dict[str, Any]:
    right = constraint.right_operand
    written: dict[str, Any] = {
        "leftOperand": v.compact(constraint.left_operand),
        "operator": v.compact(constraint.operator),
        "rightOperand": list(right) if isinstance(right, tuple) else right,
    }
    if constraint.data_type is not None:
        written["dataType"] = constraint.data_type
    if constraint.unit is not None:
        written["unit"] = constraint.unit
    return written


def _duty_jsonld(duty: Duty) -> dict[str, Any]:
    written: dict[str, Any] = {"action": v.compact(duty.action)}
    if duty.constraints:
        written["constraint"] = [_constraint_jsonld(c) for c in duty.constraints]
    return written


def _rule_jsonld(rule: Rule) -> dict[str, Any]:
    written: dict[str, Any] = {} if rule.uid is None else {"uid": rule.uid}
    actions = [v.compact(a) for a in rule.actions]
    written["action"] = actions[0] if len(actions) == 1 else actions
    for key in ("assigner", "assignee", "target"):
        if getattr(rule, key) is not None:
            written[key] = getattr(rule, key)
    if rule.constraints:
        written["constraint"] = [_constraint_jsonld(c) for c in rule.constraints]
    if rule.duties:
        written["duty"] = [_duty_jsonld(d) for d in rule.duties]
    return written


def to_jsonld(policy: Policy) -> dict[str, Any]:
    """The policy as compact ODRL JSON-LD, which :func:`parse_jsonld` reads back equal.

    A policy with unknown properties is refused: they were never kept, and writing the policy
    without them would turn a policy that denies everything into one that does not.
    """
    if policy.unknown:
        terms = ", ".join(f"{place}: {term!r}" for place, term in policy.unknown)
        raise PolicyError(f"{policy.uid}: has terms medspace does not understand ({terms})")
    written: dict[str, Any] = {
        "@context": [v.ODRL_CONTEXT, {"medspace": v.MEDSPACE_NS, "dct": v.DCT_NS}],
        "uid": policy.uid,
        "@type": v.compact(policy.type),
    }
    if policy.title is not None:
        written[v.compact("title")] = policy.title
    if policy.description is not None:
        written[v.compact("description")] = policy.description
    if policy.profiles:
        written["profile"] = list(policy.profiles)
    for key in ("assigner", "assignee", "target"):
        if getattr(policy, key) is not None:
            written[key] = getattr(policy, key)
    if policy.conflict is not None:
        written["conflict"] = v.compact(policy.conflict)
    for key, rules in (("permission", policy.permissions), ("prohibition", policy.prohibitions)):
        if rules:
            written[key] = [_rule_jsonld(r) for r in rules]
    if policy.obligations:
        written["obligation"] = [_duty_jsonld(d) for d in policy.obligations]
    return written
