"""A node's data: the clinical store (DuckDB or PostgreSQL) and the encrypted identity vault.

The clinical store holds OMOP-shaped clinical facts under pseudonymous ids and answers cohort
counts built from typed arguments; the vault holds the direct identifiers, sealed, and maps
linkage tokens to local persons for emergency look-ups.
"""

from medspace.store.cohort import GROUP_KEYS, Cohort, CohortError, cohort_size, count_by
from medspace.store.engine import ClinicalStore
from medspace.store.load import LoadError, load
from medspace.store.tokens import TokenError, linkage_token, normalise_id_number, person_pseudonym
from medspace.store.vault import (
    Identity,
    IdentityVault,
    UnknownPerson,
    VaultError,
    VaultTampered,
    WrongVaultKey,
)

__all__ = [
    "GROUP_KEYS",
    "ClinicalStore",
    "Cohort",
    "CohortError",
    "Identity",
    "IdentityVault",
    "LoadError",
    "TokenError",
    "UnknownPerson",
    "VaultError",
    "VaultTampered",
    "WrongVaultKey",
    "cohort_size",
    "count_by",
    "linkage_token",
    "load",
    "normalise_id_number",
    "person_pseudonym",
]
