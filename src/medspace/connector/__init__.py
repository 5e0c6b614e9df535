"""Load a hospital's export (FHIR Bulk NDJSON or HL7 v2) into its node's store and vault.

Direct identifiers go only to the identity vault; the clinical store receives pseudonymous,
coded facts. Loading is batched and transactional, resumes after a crash without duplicating,
and keeps every rejected record in a quarantine file with its source position and reason.
"""

from medspace.connector.ingest import IngestError, load_export
from medspace.connector.quarantine import Quarantine
from medspace.connector.report import DataQuality, IngestReport

__all__ = ["DataQuality", "IngestError", "IngestReport", "Quarantine", "load_export"]
