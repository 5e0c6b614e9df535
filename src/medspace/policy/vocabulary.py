"""The ODRL 2.2 terms medspace enforces, the five it adds, and how a written name resolves.

ODRL names every term by an IRI in ``http://www.w3.org/ns/odrl/2/``; its JSON-LD context lets a
document write it bare (``purpose``) or prefixed (``odrl:purpose``). medspace needs five terms
ODRL lacks and keeps them in its own namespace, ``https://medspace.example.org/ns/odrl#``
(prefix ``medspace:``). Together they make the ODRL profile
``https://medspace.example.org/ns/odrl``, which a policy may declare (``profile``); a policy
declaring any other profile is refused, since ODRL lets a profile change what terms mean.

=========================  ============  =====================================================
term                       kind          meaning
=========================  ============  =====================================================
``medspace:train``         action        fit a model on the data; only the model leaves
``medspace:lookup``        action        read one patient's de-identified emergency summary
``medspace:synthesize``    action        generate synthetic records from the data
``medspace:recipientRole`` left operand  the role the recipient acts in (researcher, clinician,
                                         …); ODRL's ``recipient`` names a party, not a role
``medspace:privacyBudget`` left operand  the differential-privacy ε spent under the policy
                                         once this task is counted
=========================  ============  =====================================================

Actions follow ODRL's inclusion: every action is included in ``use``, so a permission of
``use`` permits all of them (record-level downloads too) and a prohibition of ``use`` forbids
all. Otherwise the six are disjoint — training is not distributing, aggregating is not
reproducing — so a policy grants exactly what it names. A record-level download is both
``reproduce`` (a copy is made) and ``distribute`` (it goes to someone else), which is why
"training only, no download" prohibits the two.

Every local name has one owner namespace, so a name resolves the same however it is written:
bare, with a prefix, or as a full IRI. A name in the wrong namespace (``odrl:train``) keeps
its full IRI and is unknown; so is anything from a namespace medspace does not read.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

__all__ = [
    "ACTIONS",
    "CONFLICT_STRATEGIES",
    "DUTY_ACTIONS",
    "LEFT_OPERANDS",
    "MEDSPACE_NS",
    "MEDSPACE_PROFILE",
    "ODRL_CONTEXT",
    "ODRL_NS",
    "OPERATORS",
    "POLICY_TYPES",
    "PREFIXES",
    "TASK_ACTIONS",
    "compact",
    "includes",
    "resolve",
]

ODRL_NS = "http://www.w3.org/ns/odrl/2/"
ODRL_CONTEXT = "http://www.w3.org/ns/odrl.jsonld"
ODRL_CONTEXTS = frozenset({ODRL_CONTEXT, "https://www.w3.org/ns/odrl.jsonld"})
MEDSPACE_NS = "https://medspace.example.org/ns/odrl#"
MEDSPACE_PROFILE = "https://medspace.example.org/ns/odrl"
DCT_NS = "http://purl.org/dc/terms/"
XSD_NS = "http://www.w3.org/2001/XMLSchema#"
RDF_NS = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"

PREFIXES: Mapping[str, str] = MappingProxyType({
    "odrl": ODRL_NS, "medspace": MEDSPACE_NS, "dct": DCT_NS, "xsd": XSD_NS, "rdf": RDF_NS,
})  # fmt: skip
"""Prefixes every document may use undeclared; a JSON-LD ``@context`` may add its own."""

ACTIONS: Mapping[str, str | None] = MappingProxyType({
    "use": None,
    "aggregate": "use",
    "train": "use",
    "lookup": "use",
    "synthesize": "use",
    "distribute": "use",
    "reproduce": "use",
})  # fmt: skip
"""Each action a permission or prohibition may name, with the action it is included in."""

TASK_ACTIONS: tuple[str, ...] = tuple(a for a, broader in ACTIONS.items() if broader)
"""The actions a request performs: every action but ``use``, which only policies name."""

DUTY_ACTIONS: Mapping[str, str] = MappingProxyType({
    "inform": "tell the assigner of each use (ODRL inform)",
    "delete": "delete what was received, by the duty's dateTime or elapsedTime (ODRL delete)",
    "anonymize": "anonymise what was received before keeping it (ODRL anonymize)",
})  # fmt: skip
"""The duties a permission or the policy may impose, which the node fulfils or refuses."""

LEFT_OPERANDS: tuple[str, ...] = (
    "purpose", "recipient", "recipientRole", "dateTime", "spatial", "count", "elapsedTime",
    "privacyBudget",
)  # fmt: skip
"""The constraint subjects the evaluator checks (see :mod:`medspace.policy.evaluate`)."""

OPERATORS: tuple[str, ...] = (
    "eq", "neq", "lt", "lteq", "gt", "gteq", "isA", "hasPart", "isPartOf", "isAllOf",
    "isAnyOf", "isNoneOf",
)  # fmt: skip
"""ODRL 2.2's operators; which apply to which left operand is the evaluator's table."""

POLICY_TYPES: tuple[str, ...] = ("Set", "Offer", "Agreement")
CONFLICT_STRATEGIES: tuple[str, ...] = ("prohibit", "invalid")
"""The conflict strategies medspace honours; both deny a request a prohibition covers."""

_EXTENSIONS = ("train", "lookup", "synthesize", "recipientRole", "privacyBudget")
_OWNER: Mapping[str, str] = MappingProxyType({
    **dict.fromkeys(_EXTENSIONS, MEDSPACE_NS),
    "title": DCT_NS,
    "description": DCT_NS,
    "value": RDF_NS,
})  # fmt: skip
"""The namespace of each local name that is not ODRL's; every other name is ODRL's."""
_PREFIX_OF: Mapping[str, str] = MappingProxyType({MEDSPACE_NS: "medspace", DCT_NS: "dct",
                                                  RDF_NS: "rdf"})
_NAMESPACES = (ODRL_NS, MEDSPACE_NS, DCT_NS, RDF_NS, XSD_NS)


def includes(granted: str, requested: str) -> bool:
    """Whether a rule naming ``granted`` covers ``requested`` (the action or a narrower one)."""
    action: str | None = requested
    while action is not None:
        if action == granted:
            return True
        action = ACTIONS.get(action)
    return False


def resolve(written: str, prefixes: Mapping[str, str] = PREFIXES) -> str:
    """The canonical name of a term as written: its bare local name when medspace knows its
    namespace and the name belongs there, ``xsd:`` and the local name for XML Schema types,
    and otherwise the full IRI (or the text as written, when it is neither)."""
    prefix, colon, local = written.partition(":")
    compact_iri = colon and prefix in prefixes and not local.startswith("//")
    iri = prefixes[prefix] + local if compact_iri else written
    for namespace in _NAMESPACES:
        if iri.startswith(namespace) and len(iri) > len(namespace):
            name = iri[len(namespace):]
            if namespace == XSD_NS:
                return "xsd:" + name
            return name if _OWNER.get(name, ODRL_NS) == namespace else iri
    return iri


def compact(name: str) -> str:
    """How a canonical name is written in JSON-LD under the ODRL context: ODRL's names bare,
    the others with their prefix (which :func:`medspace.policy.odrl.to_jsonld` declares)."""
    namespace = _OWNER.get(name)
    return name if namespace is None else f"{_PREFIX_OF[namespace]}:{name}"
