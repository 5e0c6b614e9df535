"""Deterministic synthetic hospital exports (FHIR R4 NDJSON and HL7 v2) for demo, tests, benchmarks.

``write_exports`` writes N hospitals' export directories; ``generate_hospital`` is the streaming
core that yields one ``PatientRecord`` at a time. README.md here documents the file formats.
"""

from medspace.synth.population import SharedPool, build_shared_pool, generate_hospital
from medspace.synth.profiles import DEFAULT_PROFILES, HospitalProfile, profiles_for
from medspace.synth.records import PatientRecord
from medspace.synth.writer import ExportSummary, HospitalSummary, write_exports

__all__ = [
    "DEFAULT_PROFILES",
    "ExportSummary",
    "HospitalProfile",
    "HospitalSummary",
    "PatientRecord",
    "SharedPool",
    "build_shared_pool",
    "generate_hospital",
    "profiles_for",
    "write_exports",
]
