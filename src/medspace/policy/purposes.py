"""The purposes a use of data may serve, as a hierarchy a policy can grant or refuse by branch.

A purpose is a dotted code: ``research.clinical`` lies within ``research``, so a policy that
permits research permits clinical research, and one that prohibits commercial use prohibits
insurers and marketers too. The four roots are the purposes a patient consents to or refuses
(the clinical store's consent purposes), so :func:`root` of a task's purpose is the consent
that must cover it.

The codes follow the HL7 v3 ActReason purposes of use that FHIR Consent carries (the connector
maps those same codes onto the four roots) and, for research, the Data Privacy Vocabulary's
split between non-commercial and commercial research: a pharmaceutical company's research is
``commercial.research``, not ``research``, so a hospital that shares for research does not
share with industry unless it says so.

A code outside the hierarchy is an error (:class:`UnknownPurpose`), never a guess at the
nearest known one: the policy evaluator turns it into a denial that names it.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

__all__ = ["PURPOSES", "UnknownPurpose", "is_known", "is_within", "parent", "root"]

PURPOSES: Mapping[str, str] = MappingProxyType({
    "research": "scientific research in the public interest (HL7 HRESCH; DPV "
                "NonCommercialResearch)",
    "research.clinical": "clinical research and trials on patient care (HL7 CLINTRCH)",
    "research.biomedical": "biomedical research on disease mechanisms (HL7 BIORCH)",
    "public-health": "public-health surveillance, prevention and response (HL7 PUBHLTH)",
    "public-health.surveillance": "reporting and monitoring of diseases in the population",
    "public-health.disaster": "response to a disaster or mass-casualty event (HL7 DISASTER)",
    "public-health.threat": "response to a threat to public health or safety (HL7 THREAT)",
    "emergency": "treatment of a patient in an emergency (HL7 ETREAT)",
    "emergency.break-glass": "a clinician's break-the-glass look-up of a patient's history "
                             "(HL7 BTG)",
    "commercial": "use for profit by a company",
    "commercial.research": "research and development by industry, e.g. a drug maker (DPV "
                           "CommercialResearch)",
    "commercial.insurance": "underwriting, coverage and claims (HL7 COVERAGE)",
    "commercial.marketing": "marketing of products or services (HL7 HMARKT)",
})  # fmt: skip
"""Every purpose medspace knows, by code, with what it covers and the codes it corresponds to."""


class UnknownPurpose(ValueError):
    """A purpose code that is not in :data:`PURPOSES`."""

    def __init__(self, purpose: object) -> None:
        super().__init__(f"unknown purpose {purpose!r} (known: {', '.join(PURPOSES)})")
        self.purpose = purpose


def is_known(purpose: object) -> bool:
    """Whether ``purpose`` is a code of the hierarchy."""
    return isinstance(purpose, str) and purpose in PURPOSES


def _require(purpose: object) -> str:
    if isinstance(purpose, str) and purpose in PURPOSES:
        return purpose
    raise UnknownPurpose(purpose)


def parent(purpose: str) -> str | None:
    """The purpose ``purpose`` is a kind of, or None for a root."""
    head, dot, _ = _require(purpose).rpartition(".")
    return head if dot else None


def root(purpose: str) -> str:
    """The root of ``purpose``: the consent purpose (research, commercial, …) it falls under."""
    return _require(purpose).partition(".")[0]


def is_within(purpose: str, allowed: str) -> bool:
    """Whether ``purpose`` is ``allowed`` or lies beneath it; UnknownPurpose if either is unknown.

    The relation is reflexive and follows the dots only: ``research.clinical`` is within
    ``research``, while ``commercial.research`` is not.
    """
    _require(purpose)
    _require(allowed)
    return purpose == allowed or purpose.startswith(allowed + ".")
