"""The files parse with the libraries the ingester uses: fhir.resources R4B and python-hl7."""

from __future__ import annotations

import importlib
import json
from itertools import islice
from pathlib import Path

import hl7
import pytest
from fhir.resources.R4B.bundle import Bundle

from medspace.synth.fhir import RESOURCE_TYPES
from medspace.synth.hl7v2 import MESSAGE_TYPES
from medspace.synth.resident_id import parse_resident_id
from tests.synth.helpers import fhir_hospitals, hl7_hospitals, read_hl7_messages, read_ndjson


def _model(resource_type: str) -> type:
    module = importlib.import_module(f"fhir.resources.R4B.{resource_type.lower()}")
    return getattr(module, resource_type)


@pytest.mark.parametrize("resource_type", RESOURCE_TYPES)
def test_fhir_resources_validate_against_r4b_models(export_dir: Path, resource_type: str) -> None:
    model = _model(resource_type)
    validated = 0
    for directory in fhir_hospitals(export_dir):
        for resource in islice(read_ndjson(directory / f"{resource_type}.ndjson"), 0, 400, 4):
            parsed = model.model_validate(resource)
            assert parsed.id == resource["id"]
            validated += 1
    assert validated > 0


def test_every_patient_validates_including_the_deceased(export_dir: Path) -> None:
    model = _model("Patient")
    deceased = 0
    for directory in fhir_hospitals(export_dir):
        for resource in read_ndjson(directory / "Patient.ndjson"):
            patient = model.model_validate(resource)
            deceased += patient.deceasedDateTime is not None
    assert deceased > 10


def test_observation_sample_includes_responses_and_validates(export_dir: Path) -> None:
    model = _model("Observation")
    for directory in fhir_hospitals(export_dir):
        for resource in read_ndjson(directory / "Observation.ndjson"):
            if "valueBoolean" in resource:
                assert model.model_validate(resource).valueBoolean == resource["valueBoolean"]


def test_transaction_bundles_validate_and_hold_the_patients_resources(export_dir: Path) -> None:
    directory = fhir_hospitals(export_dir)[0]
    for path in sorted((directory / "bundles").glob("*.json"))[:20]:
        data = json.loads(path.read_text(encoding="utf-8"))
        bundle = Bundle.model_validate(data)
        assert bundle.type == "transaction"
        assert bundle.entry[0].resource.get_resource_type() == "Patient"
        assert all(e.request.method == "PUT" for e in bundle.entry)


def test_hl7_batches_parse_and_every_message_parses_alone(export_dir: Path) -> None:
    for directory in hl7_hospitals(export_dir):
        for kind in MESSAGE_TYPES:
            raw = (directory / f"{kind}.hl7").read_bytes().decode("utf-8")
            assert "\n" not in raw
            messages = read_hl7_messages(directory / f"{kind}.hl7")
            assert messages
            for message in messages[:100]:
                alone = hl7.parse(str(message))
                assert str(alone["MSH.F9.R1.C3"]) == kind
                assert str(alone["MSH.F12"]) == "2.5.1"
                parse_resident_id(str(alone["PID.F3.R2.C1"]))


def test_hl7_admissions_carry_diagnoses_and_patient_class(export_dir: Path) -> None:
    diagnoses = 0
    for directory in hl7_hospitals(export_dir):
        for message in read_hl7_messages(directory / "ADT_A01.hl7"):
            assert str(message["PV1.F2"]) in {"I", "O", "E"}
            for dg1 in message.segments("DG1") if _has(message, "DG1") else []:
                assert str(dg1[3][0][2]) == "I10"
                diagnoses += 1
    assert diagnoses > 50


def _has(message: hl7.Message, segment: str) -> bool:
    return any(str(s[0]) == segment for s in message)
