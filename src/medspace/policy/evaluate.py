"""Deciding whether one request may go ahead under a usage policy, before anything is computed.

The node calls :func:`evaluate` with the dataset's policy and a :class:`Request` describing the
task: what it does, for which purpose, for whom, when, where, and how much of the policy's
allowance is already used. The answer is a :class:`Decision`: permitted or not, the reasons in
plain words for the audit log, and the duties the node takes on with a permit.

Semantics (ODRL 2.2 with the ``prohibit`` conflict strategy):

* A request is **permitted** when some permission covers its action (the action itself, or
  ``use``, which includes every action) and every constraint of that permission holds, and no
  prohibition that covers the action applies. The first such permission in document order
  gives the duties, together with the policy's obligations.
* A prohibition **applies** unless one of its constraints is known to fail. A constraint the
  request gives no information for (no jurisdiction, no count of earlier uses) counts as
  holding in a prohibition and as failing in a permission: what the node cannot check never
  widens what it does. Prohibitions therefore win over permissions, and an unconstrained
  prohibition always wins.
* ``assignee`` and ``target``, on the rule or inherited from the policy, restrict a rule to
  that recipient and that asset: they are compared with the request's ``recipient`` and
  ``target`` like constraints.
* A policy is understood entirely or not at all. Any term the evaluator does not enforce —
  an unknown action, left operand, operator, policy type, profile, conflict strategy or
  property, a right operand of the wrong type, an operator that does not apply to its
  operand — makes every request under the policy a denial, and the reasons name each term
  and where it is (:func:`problems`). A term medspace does not know may restrict any rule,
  so honouring the rest would be guessing its meaning. A request with an unknown action,
  purpose or role, or a value of the wrong type, is denied the same way.

Left operands and their operators:

=====================  =====================================  ====================================
left operand           request value compared                 operators
=====================  =====================================  ====================================
``purpose``            purpose (:mod:`.purposes` hierarchy)   eq, isA, isAnyOf, isAllOf, isNoneOf
``spatial``            jurisdiction, ISO 3166 (``CN``,        eq, isPartOf, isAnyOf, isAllOf,
                       ``CN-SH``)                             isNoneOf
``recipient``          recipient organisation                 eq, neq, isAnyOf, isAllOf, isNoneOf
``recipientRole``      role the recipient acts in             eq, neq, isAnyOf, isAllOf, isNoneOf
``dateTime``           now (right operand: an instant with    eq, neq, lt, lteq, gt, gteq
                       its time zone)
``elapsedTime``        time since the agreement began         eq, neq, lt, lteq, gt, gteq
                       (right operand: ISO 8601 duration in
                       weeks, days, hours, minutes, seconds)
``count``              uses of the policy counting this one   eq, neq, lt, lteq, gt, gteq
                       (``count lteq 100``: the 100th use is
                       permitted, the 101st is not)
``privacyBudget``      ε spent plus this task's ε, added as   eq, neq, lt, lteq, gt, gteq
                       the decimals they print as (0.1 spent
                       and 0.2 more fill 0.3 exactly)
=====================  =====================================  ====================================

With a hierarchy, ``isA``/``isPartOf`` and the set operators compare by it: ``research.clinical``
is any of ``[research]``, and ``CN-SH`` is part of ``CN``; ``eq`` is exact. ``isAllOf`` holds
when the value matches every entry, ``isNoneOf`` when it matches none; a single value stands
for a list of one, and an empty list is refused (``isAllOf []`` would hold for anything).
``neq`` is not offered for purpose and jurisdiction because its exact reading would let every
sub-purpose or region through; ``isNoneOf`` says what is meant. Durations in years or months
have no fixed length and are refused; a time without a time zone is refused.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any

from medspace.ledger.events import Role
from medspace.policy import purposes
from medspace.policy import vocabulary as v
from medspace.policy.odrl import Constraint, Duty, Policy, Rule

__all__ = ["ROLES", "Decision", "Request", "evaluate", "problems"]

ROLES: tuple[str, ...] = tuple(role.value for role in Role)
"""The roles a recipient acts in: the audit log's closed set."""


@dataclass(frozen=True)
class Request:
    """What a task asks to do, as the node knows it; None means the node does not know.

    ``queries`` counts the uses already made under this policy or agreement, ``elapsed`` is
    the time since the agreement began, ``epsilon_spent`` the ε already charged and
    ``epsilon`` this task's.
    """

    action: str
    purpose: str
    recipient: str
    role: str
    now: datetime
    target: str | None = None
    jurisdiction: str | None = None
    queries: int | None = None
    elapsed: timedelta | None = None
    epsilon_spent: float | None = None
    epsilon: float | None = None


@dataclass(frozen=True)
class Decision:
    """Whether the request may go ahead, why, and what the node must then do."""

    permitted: bool
    reasons: tuple[str, ...]
    duties: tuple[Duty, ...] = ()


class _Unusable(ValueError):
    """A right operand the evaluator cannot use; becomes a problem of the policy."""


_JURISDICTION = re.compile(r"[A-Z]{2}(?:-[A-Z0-9]{1,3})?")
_DURATION = re.compile(
    r"P(?!$)(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?=\d)(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?"
)
_CALENDAR_DURATION = re.compile(r"P[^T]*[YM].*")
_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq, "neq": operator.ne, "lt": operator.lt, "lteq": operator.le,
    "gt": operator.gt, "gteq": operator.ge,
}  # fmt: skip
_SETS = frozenset({"isAnyOf", "isAllOf", "isNoneOf"})


_LARGEST = 2**63
"""Counts and budgets beyond this are not real, and could not be printed in a reason."""


def _quote(value: object) -> str:
    """A request's value as a reason shows it: its repr, shortened, and never an integer too
    long for Python to print."""
    if isinstance(value, int) and value.bit_length() > 64:
        return f"an integer of {value.bit_length()} bits"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _decimal(value: float) -> Decimal:
    """The number as written in decimal: 0.1 is one tenth, not the binary float nearest it."""
    return Decimal(value) if isinstance(value, int) else Decimal(repr(value))


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _purpose(value: object) -> str:
    if not purposes.is_known(value):
        raise _Unusable(f"{value!r} is not a purpose (purposes are {', '.join(purposes.PURPOSES)})")
    return str(value)


def _jurisdiction(value: object) -> str:
    if not (isinstance(value, str) and _JURISDICTION.fullmatch(value)):
        raise _Unusable(f"{value!r} is not an ISO 3166 code such as CN or CN-SH")
    return value


def _part_of(region: str, area: str) -> bool:
    """Whether ``region`` is ``area`` or one of its subdivisions (CN-SH is part of CN)."""
    return region == area or region.startswith(area + "-")


def _party(value: object) -> str:
    if not (isinstance(value, str) and value):
        raise _Unusable(f"{value!r} is not a party's identifier")
    return value


def _role(value: object) -> str:
    if value not in ROLES:
        raise _Unusable(f"{value!r} is not a role (roles are {', '.join(ROLES)})")
    return str(value)


def _instant(value: object) -> datetime:
    try:
        instant = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        instant = None
    if instant is None or instant.utcoffset() is None:
        raise _Unusable(f"{value!r} is not a date and time with a time zone, "
                        "e.g. 2027-12-31T23:59:59+08:00")
    return instant


def _duration(value: object) -> timedelta:
    match = _DURATION.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        if isinstance(value, str) and _CALENDAR_DURATION.fullmatch(value):
            raise _Unusable(f"{value!r}: years and months have no fixed length; "
                            "write days, e.g. P365D")
        raise _Unusable(f"{value!r} is not an ISO 8601 duration such as P90D or PT1H")
    parts = {unit: float(amount) for unit, amount in match.groupdict(default="0").items()}
    try:
        return timedelta(**parts)
    except OverflowError:
        raise _Unusable(f"{value!r} is longer than any date can reach") from None


def _count(value: object) -> int:
    if not (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
        raise _Unusable(f"{value!r} is not a whole number of at least 0")
    return value


def _epsilon(value: object) -> Decimal:
    if not (_is_number(value) and value >= 0):
        raise _Unusable(f"{value!r} is not a number of at least 0")
    return _decimal(value)


def _spent(request: Request) -> Decimal | None:
    if request.epsilon_spent is None or request.epsilon is None:
        return None
    return _decimal(request.epsilon_spent) + _decimal(request.epsilon)


def _use_number(request: Request) -> int | None:
    return None if request.queries is None else request.queries + 1


@dataclass(frozen=True)
class _Operand:
    """How one left operand reads its right operand and finds the request's value."""

    read: Callable[[object], Any]
    value: Callable[[Request], Any]
    field: str
    """The request's field(s), named when they are missing."""
    describe: Callable[[Any], str]
    operators: frozenset[str]
    data_types: frozenset[str]
    within: Callable[[Any, Any], bool] | None = None


_ORDERED = frozenset(_ORDER)
_CATEGORICAL = frozenset({"eq", "neq", *_SETS})
_TEXT = frozenset({"xsd:string"})
_OPERANDS: dict[str, _Operand] = {
    "purpose": _Operand(
        _purpose, lambda r: r.purpose, "purpose", lambda x: f"purpose {x!r}",
        frozenset({"eq", "isA", *_SETS}), _TEXT, purposes.is_within),
    "spatial": _Operand(
        _jurisdiction, lambda r: r.jurisdiction, "jurisdiction", lambda x: f"jurisdiction {x!r}",
        frozenset({"eq", "isPartOf", *_SETS}), _TEXT, _part_of),
    "recipient": _Operand(
        _party, lambda r: r.recipient, "recipient", lambda x: f"recipient {x!r}",
        _CATEGORICAL, frozenset({"xsd:string", "xsd:anyURI"})),
    "recipientRole": _Operand(
        _role, lambda r: r.role, "role", lambda x: f"role {x!r}", _CATEGORICAL, _TEXT),
    "dateTime": _Operand(
        _instant, lambda r: r.now, "now", lambda x: f"time {x.isoformat()}",
        _ORDERED, frozenset({"xsd:dateTime", "xsd:dateTimeStamp"})),
    "elapsedTime": _Operand(
        _duration, lambda r: r.elapsed, "elapsed", lambda x: f"{x} since the agreement began",
        _ORDERED, frozenset({"xsd:duration", "xsd:dayTimeDuration"})),
    "count": _Operand(
        _count, _use_number, "queries", lambda x: f"use number {x} (counting this one)",
        _ORDERED, frozenset({"xsd:integer", "xsd:nonNegativeInteger"})),
    "privacyBudget": _Operand(
        _epsilon, _spent, "epsilon_spent and epsilon", lambda x: f"ε {x} spent with this task",
        _ORDERED, frozenset({"xsd:decimal", "xsd:double", "xsd:float"})),
}  # fmt: skip


@dataclass(frozen=True)
class _Test:
    """A constraint ready to check: the operand, the comparison and how to say it."""

    operand: _Operand
    compare: Callable[[Any], bool]
    text: str

    def holds(self, request: Request) -> bool | None:
        """True or False, or None when the request does not give the value."""
        value = self.operand.value(request)
        return None if value is None else self.compare(value)

    def failure(self, place: str, request: Request) -> str:
        value = self.operand.value(request)
        if value is None:
            return f"{place} requires {self.text}; the request gives no {self.operand.field}"
        return f"{place} requires {self.text}; the request has {self.operand.describe(value)}"


def _comparison(op: str, operand: _Operand, right: Sequence[Any]) -> Callable[[Any], bool]:
    """The predicate ``value op right`` (``right`` holds one value unless ``op`` is a set)."""
    match = operand.within or operator.eq
    if op in _SETS:
        values = tuple(right)
        if op == "isAnyOf":
            return lambda x: any(match(x, y) for y in values)
        if op == "isAllOf":
            return lambda x: all(match(x, y) for y in values)
        return lambda x: not any(match(x, y) for y in values)
    (single,) = right
    if op in ("isA", "isPartOf"):
        return lambda x: match(x, single)
    compare = _ORDER[op]
    return lambda x: compare(x, single)


def _test(constraint: Constraint) -> _Test:
    """The constraint as a test; _Unusable says why the evaluator cannot enforce it."""
    name, op = constraint.left_operand, constraint.operator
    operand = _OPERANDS.get(name)
    if operand is None:
        raise _Unusable(f"unknown left operand {name!r} "
                        f"(medspace enforces {', '.join(v.LEFT_OPERANDS)})")
    if op not in operand.operators:
        usable = ", ".join(sorted(operand.operators))
        if op in v.OPERATORS:
            raise _Unusable(f"operator {op!r} does not apply to {name} (use {usable})")
        raise _Unusable(f"unknown operator {op!r} (operators for {name}: {usable})")
    if constraint.unit is not None:
        raise _Unusable(f"unit {constraint.unit!r} is not understood")
    if constraint.data_type is not None and constraint.data_type not in operand.data_types:
        raise _Unusable(f"dataType {constraint.data_type!r} does not fit {name} "
                        f"({', '.join(sorted(operand.data_types))})")
    raw = constraint.right_operand
    if op in _SETS:
        written: tuple[Any, ...] = raw if isinstance(raw, tuple) else (raw,)
        if not written:
            raise _Unusable(f"{op} needs at least one value, not an empty list")
    elif isinstance(raw, tuple):
        raise _Unusable(f"{op} takes one value, not a list")
    else:
        written = (raw,)
    right = [operand.read(value) for value in written]
    return _Test(operand, _comparison(op, operand, right), f"{name} {op} {raw!r}")


_RECIPIENT = _Operand(_party, lambda r: r.recipient, "recipient", lambda x: f"recipient {x!r}",
                      frozenset({"eq"}), _TEXT)
_TARGET = _Operand(_party, lambda r: r.target, "target", lambda x: f"target {x!r}",
                   frozenset({"eq"}), _TEXT)


@dataclass(frozen=True)
class _Rule:
    place: str
    actions: tuple[str, ...]
    tests: tuple[_Test, ...]
    duties: tuple[Duty, ...]


@dataclass(frozen=True)
class _Compiled:
    problems: tuple[str, ...]
    permissions: tuple[_Rule, ...]
    prohibitions: tuple[_Rule, ...]
    obligations: tuple[Duty, ...]


def _check_duty(duty: Duty, place: str, found: list[str]) -> None:
    if duty.action not in v.DUTY_ACTIONS:
        found.append(f"{place}: unknown duty {duty.action!r} "
                     f"(medspace fulfils {', '.join(v.DUTY_ACTIONS)})")
    for i, constraint in enumerate(duty.constraints, 1):
        try:
            _test(constraint)
        except _Unusable as exc:
            found.append(f"{place} constraint {i}: {exc}")


def _rule(rule: Rule, place: str, policy: Policy, found: list[str]) -> _Rule:
    for action in rule.actions:
        if action not in v.ACTIONS:
            found.append(f"{place}: unknown action {action!r} "
                         f"(policies name {', '.join(v.ACTIONS)})")
    tests: list[_Test] = []
    assignee = rule.assignee or policy.assignee
    if assignee is not None:
        tests.append(_Test(_RECIPIENT, partial(operator.eq, assignee),
                           f"the recipient {assignee!r}"))
    target = rule.target or policy.target
    if target is not None:
        tests.append(_Test(_TARGET, partial(operator.eq, target), f"target {target!r}"))
    for i, constraint in enumerate(rule.constraints, 1):
        try:
            tests.append(_test(constraint))
        except _Unusable as exc:
            found.append(f"{place} constraint {i}: {exc}")
    for i, duty in enumerate(rule.duties, 1):
        _check_duty(duty, f"{place} duty {i}", found)
    return _Rule(place, rule.actions, tuple(tests), rule.duties)


def _policy_problems(policy: Policy) -> list[str]:
    """What is wrong with the policy as a whole, before its rules."""
    found = [f"{place}: {term!r} is not understood" for place, term in policy.unknown]
    if policy.type not in v.POLICY_TYPES:
        found.append(f"policy type {policy.type!r} is not one medspace enforces "
                     f"({', '.join(v.POLICY_TYPES)})")
    needs = {"Offer": ("assigner",), "Agreement": ("assigner", "assignee")}
    rules = (*policy.permissions, *policy.prohibitions)
    for party in needs.get(policy.type, ()):
        if getattr(policy, party) is None and not (rules and all(getattr(r, party)
                                                                 for r in rules)):
            found.append(f"an {policy.type} must name its {party}")
    for profile in policy.profiles:
        if profile != v.MEDSPACE_PROFILE:
            found.append(f"profile {profile!r} is not understood "
                         f"(medspace's is {v.MEDSPACE_PROFILE})")
    if policy.conflict is not None and policy.conflict not in v.CONFLICT_STRATEGIES:
        found.append(f"conflict strategy {policy.conflict!r} is not enforced: medspace lets "
                     f"prohibitions win ({', '.join(v.CONFLICT_STRATEGIES)})")
    for i, rule in enumerate(policy.prohibitions, 1):
        if rule.duties:
            found.append(f"prohibition {i}: a prohibition carries no duties")
    return found


def _compile(policy: Policy) -> _Compiled:
    found = _policy_problems(policy)
    permissions = tuple(_rule(r, f"permission {i}", policy, found)
                        for i, r in enumerate(policy.permissions, 1))
    prohibitions = tuple(_rule(r, f"prohibition {i}", policy, found)
                         for i, r in enumerate(policy.prohibitions, 1))
    for i, duty in enumerate(policy.obligations, 1):
        _check_duty(duty, f"obligation {i}", found)
    return _Compiled(tuple(found), permissions, prohibitions, policy.obligations)


def problems(policy: Policy) -> tuple[str, ...]:
    """Everything in ``policy`` medspace does not enforce, each naming its term and place.

    Empty when the policy is understood; otherwise :func:`evaluate` denies every request under
    it with these as the reasons. A hospital checks a policy with this before publishing it.
    """
    return _compile(policy).problems


def _request_problems(request: Request) -> list[str]:
    """Why the request itself cannot be evaluated: unknown terms or values of the wrong type."""
    found = []
    if request.action not in v.TASK_ACTIONS:
        found.append(f"unknown action {_quote(request.action)}: a request performs one of "
                     f"{', '.join(v.TASK_ACTIONS)}")
    if not purposes.is_known(request.purpose):
        found.append(f"unknown purpose {_quote(request.purpose)}: purposes are "
                     f"{', '.join(purposes.PURPOSES)}")
    if request.role not in ROLES:
        found.append(f"unknown role {_quote(request.role)}: roles are {', '.join(ROLES)}")
    if not (isinstance(request.recipient, str) and request.recipient):
        found.append(f"recipient {_quote(request.recipient)} is not a party's identifier")
    if not (isinstance(request.now, datetime) and request.now.utcoffset() is not None):
        found.append(f"now {_quote(request.now)} is not a date and time with a time zone")
    if request.target is not None and not isinstance(request.target, str):
        found.append(f"target {_quote(request.target)} is not an asset's identifier")
    if request.jurisdiction is not None and not (
        isinstance(request.jurisdiction, str) and _JURISDICTION.fullmatch(request.jurisdiction)
    ):
        found.append(f"jurisdiction {_quote(request.jurisdiction)} is not an ISO 3166 code "
                     "such as CN or CN-SH")
    if request.queries is not None and not (isinstance(request.queries, int)
                                            and not isinstance(request.queries, bool)
                                            and 0 <= request.queries < _LARGEST):
        found.append(f"queries {_quote(request.queries)} is not a whole number of at least 0")
    if request.elapsed is not None and not (isinstance(request.elapsed, timedelta)
                                            and request.elapsed >= timedelta(0)):
        found.append(f"elapsed {_quote(request.elapsed)} is not a duration of at least 0")
    for name in ("epsilon_spent", "epsilon"):
        value = getattr(request, name)
        if value is not None and not (_is_number(value) and 0 <= value < _LARGEST):
            found.append(f"{name} {_quote(value)} is not a finite number of at least 0")
    return found


def _covering(rule: _Rule, action: str) -> str | None:
    """The rule's action that covers ``action``, if any."""
    return next((a for a in rule.actions if v.includes(a, action)), None)


def evaluate(policy: Policy, request: Request) -> Decision:
    """Whether ``request`` may go ahead under ``policy``; never raises for any policy model or
    request, however wrong: whatever cannot be evaluated is a denial that says why."""
    compiled = _compile(policy)
    if compiled.problems:
        return Decision(False, (f"policy {policy.uid!r} is refused as a whole: it uses terms "
                                "medspace does not enforce", *compiled.problems))
    wrong = _request_problems(request)
    if wrong:
        return Decision(False, tuple(wrong))
    action = request.action
    forbidding = []
    for rule in compiled.prohibitions:
        covering = _covering(rule, action)
        if covering is None:
            continue
        outcomes = [(test, test.holds(request)) for test in rule.tests]
        if any(outcome is False for _, outcome in outcomes):
            continue
        what = repr(action) if covering == action else f"{covering!r}, which includes {action!r}"
        unknown = [test.operand.field for test, outcome in outcomes if outcome is None]
        reason = f"{rule.place} forbids {what}"
        if unknown:
            reason += f" (taken to apply: the request gives no {', '.join(unknown)})"
        forbidding.append(reason)
    if forbidding:
        return Decision(False, tuple(forbidding))
    reasons = []
    for rule in compiled.permissions:
        covering = _covering(rule, action)
        if covering is None:
            continue
        failures = [test.failure(rule.place, request) for test in rule.tests
                    if test.holds(request) is not True]
        if not failures:
            return Decision(True, (f"{rule.place} permits {action!r}",),
                            rule.duties + compiled.obligations)
        reasons.extend(failures)
    return Decision(False, tuple(reasons) or (f"no permission covers {action!r}",))
