"""The terminology the synthetic exports use: ICD-10, ATC, LOINC/UCUM, SNOMED CT, ICD-9-CM-3.

One table per code system, each entry carrying what the generator needs to make the data
plausible (how prevalence grows with age, which drug treats what, a lab's normal range), so the
clinical model and the file writers agree on codes and display names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ICD10 = "http://hl7.org/fhir/sid/icd-10"
ATC = "http://www.whocc.no/atc"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
SNOMED = "http://snomed.info/sct"
ICD9_PROC = "http://hl7.org/fhir/sid/icd-9-cm"
SYNTH = "https://medspace.example.org/fhir/CodeSystem/synth"
"""Local code system for the few facts with no standard code (the treatment response)."""
RESPONSE_CODE = "treatment-response"

DiseaseKind = Literal["chronic", "cancer", "rare", "acute"]


@dataclass(frozen=True, slots=True)
class Disease:
    """An ICD-10 diagnosis, how its risk changes per decade of age, and what treats it."""

    code: str
    display: str
    display_zh: str
    kind: DiseaseKind
    age_slope: float
    """Log of the relative risk per ten years of age around 60."""
    drugs: tuple[str, ...] = ()
    procedures: tuple[str, ...] = ()
    median_survival_years: float | None = None
    """Median survival from diagnosis without a response to treatment (cancers, ALS)."""
    male_factor: float = 1.0
    female_factor: float = 1.0


DISEASES: dict[str, Disease] = {
    d.code: d
    for d in (
        Disease("I10", "Essential (primary) hypertension", "原发性高血压", "chronic", 0.45,
                ("C08CA01", "C09CA01")),
        Disease("E11", "Type 2 diabetes mellitus", "2型糖尿病", "chronic", 0.35, ("A10BA02",)),
        Disease("J44", "Other chronic obstructive pulmonary disease", "慢性阻塞性肺疾病",
                "chronic", 0.55, ("R03AK06",), male_factor=1.4, female_factor=0.6),
        Disease("I25", "Chronic ischaemic heart disease", "慢性缺血性心脏病", "chronic", 0.55,
                ("B01AC06", "C10AA05"), ("00.66",), male_factor=1.3, female_factor=0.7),
        Disease("N18", "Chronic kidney disease", "慢性肾脏病", "chronic", 0.45, ("B03XA01",),
                ("39.95",)),
        Disease("J45", "Asthma", "支气管哮喘", "chronic", -0.15, ("R03AC02",)),
        Disease("J18", "Pneumonia, organism unspecified", "肺炎", "acute", 0.2, ("J01DD04",),
                ("87.41",)),
        Disease("S72", "Fracture of femur", "股骨骨折", "acute", 0.6, ("M01AE01",), ("79.35",),
                male_factor=0.7, female_factor=1.3),
        Disease("C34", "Malignant neoplasm of bronchus and lung", "支气管和肺恶性肿瘤", "cancer",
                0.5, ("L01XE03",), ("87.41", "32.49"), 1.5, male_factor=1.4, female_factor=0.6),
        Disease("C50", "Malignant neoplasm of breast", "乳房恶性肿瘤", "cancer", 0.25,
                ("L02BA01", "L01CD01"), ("85.41", "99.25"), 12.0, 0.01, 1.99),
        Disease("C16", "Malignant neoplasm of stomach", "胃恶性肿瘤", "cancer", 0.5, ("L01BC06",),
                ("43.7", "99.25"), 2.0, male_factor=1.5, female_factor=0.5),
        Disease("C22", "Malignant neoplasm of liver and intrahepatic bile ducts", "肝恶性肿瘤",
                "cancer", 0.4, ("L01XE05",), ("50.22",), 1.0, male_factor=1.6, female_factor=0.4),
        Disease("C18", "Malignant neoplasm of colon", "结肠恶性肿瘤", "cancer", 0.5,
                ("L01BC06",), ("45.23", "45.73", "99.25"), 5.0),
        Disease("C11", "Malignant neoplasm of nasopharynx", "鼻咽恶性肿瘤", "cancer", 0.1,
                ("L01XA01",), ("92.24",), 6.0, male_factor=1.5, female_factor=0.5),
        Disease("G12.2", "Motor neuron disease", "运动神经元病", "rare", 0.3, ("N07XX02",),
                median_survival_years=3.0),
        Disease("D56", "Thalassaemia", "地中海贫血", "rare", 0.0, ("B03BB01",)),
    )
}  # fmt: skip
"""The diagnoses the generator draws, by ICD-10 code."""


@dataclass(frozen=True, slots=True)
class Drug:
    """An ATC-coded drug; ``response_logit`` is set for drugs whose response is recorded."""

    code: str
    display: str
    response_logit: float | None = None
    """Log-odds of responding at age 37.5 for a man, before the site effect."""


DRUG_A = "L01XE03"
"""Drug A of the multi-centre study: erlotinib (ATC 2021 code; ATC 2022 moved it to L01EB02)."""

DRUGS: dict[str, Drug] = {
    d.code: d
    for d in (
        Drug("A10BA02", "metformin"),
        Drug("C08CA01", "amlodipine"),
        Drug("C09CA01", "losartan"),
        Drug("R03AK06", "salmeterol and fluticasone"),
        Drug("B01AC06", "acetylsalicylic acid"),
        Drug("C10AA05", "atorvastatin"),
        Drug("B03XA01", "erythropoietin"),
        Drug("R03AC02", "salbutamol"),
        Drug("J01DD04", "ceftriaxone"),
        Drug("M01AE01", "ibuprofen"),
        Drug(DRUG_A, "erlotinib", 1.27),
        Drug("L02BA01", "tamoxifen", 1.0),
        Drug("L01CD01", "paclitaxel", 0.4),
        Drug("L01BC06", "capecitabine", 0.2),
        Drug("L01XE05", "sorafenib", -0.5),
        Drug("L01XA01", "cisplatin", 0.6),
        Drug("N07XX02", "riluzole"),
        Drug("B03BB01", "folic acid"),
    )
}
"""ATC codes as of ATC 2021, so the kinase inhibitors keep their L01XE codes."""


@dataclass(frozen=True, slots=True)
class LabTest:
    """A LOINC test with its UCUM unit and the decimals the analyser reports."""

    code: str
    display: str
    unit: str
    decimals: int
    low: float
    high: float
    """Reference range, used for HL7 OBX-7 and the abnormal flag."""


LABS: dict[str, LabTest] = {
    t.code: t
    for t in (
        LabTest("2345-7", "Glucose [Mass/volume] in Serum or Plasma", "mg/dL", 0, 70, 99),
        LabTest("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", "%", 1, 4.0, 5.6),
        LabTest("2160-0", "Creatinine [Mass/volume] in Serum or Plasma", "mg/dL", 2, 0.6, 1.2),
        LabTest("718-7", "Hemoglobin [Mass/volume] in Blood", "g/dL", 1, 12.0, 17.5),
        LabTest("2093-3", "Cholesterol [Mass/volume] in Serum or Plasma", "mg/dL", 0, 0, 200),
        LabTest("6690-2", "Leukocytes [#/volume] in Blood by Automated count", "10*3/uL", 1,
                4.0, 10.0),
    )
}  # fmt: skip
"""The lab tests, by LOINC code; every value carries its UCUM unit."""


@dataclass(frozen=True, slots=True)
class Substance:
    """An allergy's substance: a SNOMED CT code when one exists, else only the hospital's text."""

    text: str
    category: Literal["medication", "food", "environment"]
    """The FHIR AllergyIntolerance category (HL7 v2 AL1-2: DA, FA or EA)."""
    snomed: str | None = None
    display: str | None = None


ALLERGENS: tuple[Substance, ...] = (
    Substance("青霉素", "medication", "764146007", "Penicillin"),
    Substance("阿莫西林", "medication", "372687004", "Amoxicillin"),
    Substance("阿司匹林", "medication", "387458008", "Aspirin"),
    Substance("头孢类抗生素", "medication"),
    Substance("碘造影剂", "medication"),
    Substance("海鲜", "food"),
    Substance("花粉", "environment"),
)
"""Recorded allergies; free-text ones are common in Chinese EMRs and must survive ingestion."""

PROCEDURES: dict[str, str] = {
    "00.66": "Percutaneous transluminal coronary angioplasty",
    "39.95": "Hemodialysis",
    "79.35": "Open reduction of fracture with internal fixation, femur",
    "87.41": "Computerized axial tomography of thorax",
    "32.49": "Other lobectomy of lung",
    "85.41": "Unilateral simple mastectomy",
    "99.25": "Injection or infusion of cancer chemotherapeutic substance",
    "43.7": "Partial gastrectomy with anastomosis to jejunum",
    "50.22": "Partial hepatectomy",
    "45.23": "Colonoscopy",
    "45.73": "Open and other right hemicolectomy",
    "92.24": "Teleradiotherapy using photons",
}
"""Procedures in ICD-9-CM volume 3, the procedure classification Chinese hospitals report in."""
