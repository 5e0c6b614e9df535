"""Hand-made clinical rows whose cohort counts are worked out by hand in the tests.

As of 2024-06-15 the persons' ages are: 1 → 35, 2 → 39 (birthday in July not yet reached),
3 → 40 (born in June: counted as had the birthday), 4 → 34, 5 → 34 (no birth month: January),
6 → 54, 7 → 24, 8 → not yet born.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from medspace.store.tokens import person_pseudonym

NODE_KEY = b"n" * 32
AS_OF = dt.date(2024, 6, 15)


def pid(n: int) -> str:
    """The pseudonymous id of hand-made person ``n``."""
    return person_pseudonym(f"MRN{n:04d}", NODE_KEY)


def _d(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def _persons() -> list[dict[str, Any]]:
    people = [
        (1, "female", 1989, 3),
        (2, "female", 1984, 7),
        (3, "male", 1984, 6),
        (4, "male", 1989, 12),
        (5, "female", 1990, None),
        (6, "male", 1970, 1),
        (7, "other", 2000, 5),
        (8, "female", 2025, 1),
    ]
    return [
        {"person_id": pid(n), "sex": sex, "birth_year": year, "birth_month": month}
        for n, sex, year, month in people
    ]


def _events(rows: list[tuple[int, str, str]], code: str, date: str) -> list[dict[str, Any]]:
    return [{"person_id": pid(n), code: value, date: _d(day)} for n, value, day in rows]


def clinical_batch() -> dict[str, list[dict[str, Any]]]:
    """One batch touching every clinical table."""
    return {
        "person": _persons(),
        "observation_period": [
            {"person_id": pid(n), "start_date": _d("2015-01-01"), "end_date": _d("2024-12-31")}
            for n in range(1, 8)
        ],
        "visit": [
            {
                "visit_id": n,
                "person_id": pid(n),
                "visit_type": ("inpatient", "outpatient", "emergency")[n % 3],
                "start_date": _d("2020-01-01"),
                "end_date": _d("2020-01-03"),
            }
            for n in range(1, 8)
        ],
        "condition": _events(
            [
                (1, "C34.1", "2020-01-01"),
                (2, "C34.9", "2021-03-01"),
                (2, "E11.9", "2019-01-01"),
                (3, "C34", "2024-06-15"),
                (4, "C34.1", "2024-06-16"),
                (5, "C50.9", "2022-01-01"),
                (6, "C43.9", "2018-01-01"),
                (7, "C34.2", "2023-01-01"),
            ],
            "condition_source_value",
            "start_date",
        ),
        "drug_exposure": _events(
            [
                (1, "L01XE03", "2020-02-01"),
                (2, "L01XE14", "2021-04-01"),
                (3, "L01BA01", "2024-06-01"),
                (7, "L01XE03", "2025-01-01"),
            ],
            "drug_source_value",
            "start_date",
        ),
        "measurement": [
            {
                "person_id": pid(1),
                "measurement_source_value": "2345-7",
                "value_as_number": 5.4,
                "unit_source_value": "mmol/L",
                "measurement_date": _d("2020-01-02"),
            }
        ],
        "observation": [
            {
                "person_id": pid(n),
                "observation_source_value": "treatment-response",
                "value_as_concept": value,
                "observation_date": _d("2022-01-01"),
            }
            for n, value in [(1, "PR"), (2, "PD"), (3, "CR")]
        ],
        "allergy": [
            {
                "person_id": pid(2),
                "allergy_source_value": "J01CA04",
                "reaction_source_value": "rash",
                "severity": "moderate",
                "recorded_date": _d("2019-05-01"),
            }
        ],
        "procedure": [
            {
                "person_id": pid(1),
                "procedure_source_value": "32.4101",
                "procedure_date": _d("2020-01-02"),
            }
        ],
        "death": [{"person_id": pid(6), "death_date": _d("2023-02-01")}],
        "person_key": [{"key_id": "pk:" + "1" * 32, "person_id": pid(1)}],
        "ingest_progress": [{"export_id": "ex:" + "2" * 32, "batch": 0}],
        "immunization": [
            {
                "person_id": pid(3),
                "vaccine_source_value": "J07BB02",
                "immunization_date": _d("2021-10-11"),
            }
        ],
        "consent": [
            {
                "person_id": pid(4),
                "purpose": "research",
                "decision": "deny",
                "start_date": _d("2022-03-01"),
            }
        ],
    }
