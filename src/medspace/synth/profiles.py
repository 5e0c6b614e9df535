"""Hospital profiles: what makes one hospital's export differ from another's.

Federated statistics are only interesting when sites differ, so each profile fixes a size, a
region, an age structure, a case mix (disease prevalence), an encounter mix, a lab calibration
(the systematic offset and scale of some of its analysers) and the format its HIS exports in.
Five default profiles cover the tertiary / primary-care spread; larger data spaces cycle them
with deterministic perturbations.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from medspace.synth.divisions import PROVINCES
from medspace.synth.seeding import stream

Level = Literal["tertiary", "secondary", "primary"]
ExportFormat = Literal["fhir-ndjson", "hl7v2"]


@dataclass(frozen=True, slots=True)
class HospitalProfile:
    """One hospital's character. Prevalences are per-patient probabilities at age 60."""

    id: str
    name: str
    level: Level
    export_format: ExportFormat
    province_code: str
    size: float
    """Patients relative to the requested per-hospital count (the default five average 1.0)."""
    out_of_region: float
    """Share of patients living outside the hospital's province (tertiary centres attract)."""
    age_mean: float
    age_sd: float
    prevalence: dict[str, float]
    encounter_mix: dict[str, float]
    """Relative weights of ``inpatient``, ``outpatient`` and ``emergency`` encounters."""
    lab_calibration: dict[str, tuple[float, float]] = field(default_factory=dict)
    """LOINC code -> (scale, offset) applied to the true value: ``reported = true*scale+offset``."""
    drug_a_effect: float = 0.0
    """Site effect on the log-odds of responding to the assessed drugs, drug A among them."""
    mrn_prefix: str = "MR"

    def as_json(self) -> dict[str, Any]:
        """The profile as plain JSON values, for the export manifest."""
        data = dataclasses.asdict(self)
        data["lab_calibration"] = {k: list(v) for k, v in self.lab_calibration.items()}
        return data


_CHRONIC = {"I10": 0.25, "E11": 0.12, "J44": 0.05, "I25": 0.07, "N18": 0.04, "J45": 0.03}
_ACUTE = {"J18": 0.06, "S72": 0.01}

DEFAULT_PROFILES: tuple[HospitalProfile, ...] = (
    HospitalProfile(
        id="hospital-a",
        name="北京市示范肿瘤医学中心",
        level="tertiary",
        export_format="fhir-ndjson",
        province_code="11",
        size=1.6,
        out_of_region=0.35,
        age_mean=54,
        age_sd=16,
        prevalence={
            **_CHRONIC,
            **_ACUTE,
            "C34": 0.09,
            "C50": 0.05,
            "C16": 0.03,
            "C22": 0.02,
            "C18": 0.03,
            "C11": 0.004,
            "G12.2": 0.006,
            "D56": 0.002,
        },
        encounter_mix={"inpatient": 0.35, "outpatient": 0.55, "emergency": 0.10},
        mrn_prefix="BJ",
    ),
    HospitalProfile(
        id="hospital-b",
        name="上海市第一人民医学中心",
        level="tertiary",
        export_format="fhir-ndjson",
        province_code="31",
        size=1.3,
        out_of_region=0.25,
        age_mean=56,
        age_sd=17,
        prevalence={
            **_CHRONIC,
            **_ACUTE,
            "C34": 0.06,
            "C50": 0.09,
            "C16": 0.02,
            "C22": 0.02,
            "C18": 0.04,
            "C11": 0.003,
            "G12.2": 0.004,
            "D56": 0.002,
        },
        encounter_mix={"inpatient": 0.30, "outpatient": 0.60, "emergency": 0.10},
        lab_calibration={"2345-7": (1.0, 4.0), "718-7": (0.97, 0.0)},
        drug_a_effect=0.25,
        mrn_prefix="SH",
    ),
    HospitalProfile(
        id="hospital-c",
        name="广州市南方综合医院",
        level="secondary",
        export_format="fhir-ndjson",
        province_code="44",
        size=1.0,
        out_of_region=0.10,
        age_mean=45,
        age_sd=18,
        prevalence={
            **_CHRONIC,
            **_ACUTE,
            "I10": 0.20,
            "C34": 0.03,
            "C50": 0.03,
            "C16": 0.01,
            "C22": 0.04,
            "C18": 0.02,
            "C11": 0.03,
            "G12.2": 0.002,
            "D56": 0.05,
        },
        encounter_mix={"inpatient": 0.20, "outpatient": 0.65, "emergency": 0.15},
        lab_calibration={"2160-0": (1.08, 0.0), "4548-4": (1.0, 0.2)},
        drug_a_effect=-0.3,
        mrn_prefix="GZ",
    ),
    HospitalProfile(
        id="hospital-d",
        name="成都市锦江社区卫生服务中心",
        level="primary",
        export_format="hl7v2",
        province_code="51",
        size=0.6,
        out_of_region=0.02,
        age_mean=63,
        age_sd=14,
        prevalence={
            **_ACUTE,
            "I10": 0.38,
            "E11": 0.18,
            "J44": 0.11,
            "I25": 0.06,
            "N18": 0.05,
            "J45": 0.02,
            "C34": 0.006,
            "C50": 0.004,
            "C16": 0.003,
            "C22": 0.002,
            "C18": 0.003,
            "G12.2": 0.001,
            "D56": 0.001,
        },
        encounter_mix={"inpatient": 0.02, "outpatient": 0.93, "emergency": 0.05},
        lab_calibration={"2345-7": (0.95, 0.0), "2160-0": (1.0, 0.1)},
        drug_a_effect=-0.1,
        mrn_prefix="CD",
    ),
    HospitalProfile(
        id="hospital-e",
        name="杭州市西湖社区卫生服务中心",
        level="primary",
        export_format="hl7v2",
        province_code="33",
        size=0.5,
        out_of_region=0.03,
        age_mean=58,
        age_sd=17,
        prevalence={
            **_ACUTE,
            "I10": 0.30,
            "E11": 0.14,
            "J44": 0.08,
            "I25": 0.05,
            "N18": 0.03,
            "J45": 0.04,
            "C34": 0.005,
            "C50": 0.005,
            "C16": 0.004,
            "C22": 0.002,
            "C18": 0.003,
            "G12.2": 0.001,
            "D56": 0.001,
        },
        encounter_mix={"inpatient": 0.01, "outpatient": 0.95, "emergency": 0.04},
        lab_calibration={"718-7": (1.0, -0.4)},
        drug_a_effect=0.1,
        mrn_prefix="HZ",
    ),
)
"""The five hospitals of the demo: two tertiary centres, a secondary hospital, two clinics."""


def hospital_id(index: int) -> str:
    """``hospital-a`` ... ``hospital-z``, then ``hospital-aa``: stable, sortable-enough ids."""
    letters = ""
    n = index + 1
    while n:
        n, rem = divmod(n - 1, 26)
        letters = chr(ord("a") + rem) + letters
    return f"hospital-{letters}"


def profiles_for(n_hospitals: int) -> list[HospitalProfile]:
    """The first ``n_hospitals`` profiles: the defaults, then perturbed copies in other provinces.

    A profile depends only on its index, never on the seed, so hospital-f is the same kind of
    hospital in every run.
    """
    if n_hospitals < 1:
        raise ValueError("need at least one hospital")
    return [_profile(i) for i in range(n_hospitals)]


def _profile(index: int) -> HospitalProfile:
    base = DEFAULT_PROFILES[index % len(DEFAULT_PROFILES)]
    if index < len(DEFAULT_PROFILES):
        return base
    rng = stream(0, "profile", index)
    provinces = sorted(PROVINCES)
    province = provinces[(provinces.index(base.province_code) + 3 * (index // 5)) % len(provinces)]
    kind = "社区卫生服务中心" if base.level == "primary" else "人民医院"
    return dataclasses.replace(
        base,
        id=hospital_id(index),
        name=f"{PROVINCES[province]}第{index + 1}{kind}",
        province_code=province,
        size=round(base.size * rng.uniform(0.7, 1.3), 3),
        prevalence={
            k: round(min(0.6, p * rng.uniform(0.7, 1.3)), 4) for k, p in base.prevalence.items()
        },
        lab_calibration={
            k: (round(s * rng.uniform(0.97, 1.03), 3), o)
            for k, (s, o) in base.lab_calibration.items()
        },
        drug_a_effect=round(base.drug_a_effect + rng.uniform(-0.3, 0.3), 3),
        mrn_prefix=f"H{index:02d}",
    )


def hospital_index(hospital: str) -> int:
    """The index of a ``hospital-...`` id: the inverse of :func:`hospital_id`."""
    letters = hospital.removeprefix("hospital-")
    if not letters or not letters.isascii() or not letters.isalpha() or not letters.islower():
        raise ValueError(f"not a generated hospital id: {hospital!r}")
    n = 0
    for ch in letters:
        n = n * 26 + ord(ch) - ord("a") + 1
    return n - 1
