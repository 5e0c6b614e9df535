"""The egress filter finds the node's own identifiers in any outbound payload, however written."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medspace.deid.egress import EgressBlocked, EgressFilter, VaultEgressFilter
from medspace.sqldb import create_engine, sqlite_url
from medspace.store.vault import Identity, IdentityVault
from medspace.wire.messages import Approval, TaskResult

PATIENTS = [
    Identity(name="王芳", mrn="0012345678", id_number="11010519491231002X", phone="13812345678"),
    Identity(name="Maria Lopez Garcia", mrn="A-77", id_number=None, phone="+86 10 6552 9988"),
]
EGRESS = EgressFilter(PATIENTS)


def _kinds(payload: str) -> list[str]:
    return [hit.kind for hit in EGRESS.scan(payload)]


def test_a_payload_of_counts_and_codes_passes() -> None:
    payload = json.dumps({"cells": [{"sex": "female", "count": 1234567}], "code": "C34.9"})
    EGRESS.check(payload)


@pytest.mark.parametrize("written", [
    "11010519491231002X", "11010519491231002x", "110105 19491231 002X", "110105-19491231-002X",
    "１１０１０５１９４９１２３１００２Ｘ",
])
def test_an_id_number_is_found_however_it_is_written(written: str) -> None:
    assert _kinds(f"患者身份证{written}已核验") == ["id_number"]


@pytest.mark.parametrize("written", ["13812345678", "138 1234 5678", "138-1234-5678",
                                     "电话13812345678联系"])
def test_a_phone_is_found_spaced_dashed_or_glued_to_chinese(written: str) -> None:
    assert _kinds(written) == ["phone"]


def test_a_chinese_name_glued_to_text_and_a_latin_name_in_any_case_are_found() -> None:
    assert _kinds("患者王芳于2023年入院") == ["name"]
    assert _kinds("seen by MARIA lopez garcia today") == ["name"]


def test_a_json_escaped_name_is_found() -> None:
    assert _kinds(json.dumps({"note": "王芳"})) == ["name"]


def test_a_hit_reports_where_and_what_kind_never_the_value() -> None:
    with pytest.raises(EgressBlocked) as caught:
        EGRESS.check("x 13812345678")
    assert "13812345678" not in str(caught.value)
    assert [(h.kind, h.start, h.end) for h in caught.value.hits] == [("phone", 2, 13)]


@pytest.mark.parametrize("plant", ["王芳", "11010519491231002X", "13812345678"])
def test_a_planted_identifier_is_blocked_in_every_kind_of_outbound_message(plant: str) -> None:
    result = TaskResult(task="0" * 32, node="hospital-a", status="released",
                        payload={"cells": [{"label": plant, "count": 5}]}, event="e30=")
    refusal = TaskResult(task="0" * 32, node="hospital-a", status="refused",
                         reason=f"patient {plant} withdrew consent", event="e30=")
    approval = Approval(study="s1", node="hospital-a", decision="deny",
                        reason=f"asked by {plant}", decided_by="admin")
    event = base64.b64encode(json.dumps({"detail": plant}, ensure_ascii=False).encode()).decode()
    payloads = [result.model_dump_json(), refusal.model_dump_json(), approval.model_dump_json(),
                json.dumps(result.model_dump()), base64.b64decode(event).decode()]
    for payload in payloads:
        with pytest.raises(EgressBlocked):
            EGRESS.check(payload)


def test_an_empty_vault_blocks_nothing() -> None:
    assert len(EgressFilter([])) == 0
    EgressFilter([]).check("王芳 13812345678")


@given(st.text())
def test_scanning_never_fails_and_hits_lie_inside_the_text(text: str) -> None:
    for hit in EGRESS.scan(text):
        assert 0 <= hit.start < hit.end


def test_the_vault_filter_blocks_a_patient_added_after_it_was_built(tmp_path: Path) -> None:
    vault = IdentityVault(create_engine(sqlite_url(tmp_path / "vault.db")), b"V" * 32)
    screen = VaultEgressFilter(vault)
    screen.check("李雷 13912345678")
    vault.put("ps:" + "a" * 32, Identity(name="李雷", mrn="M9", phone="13912345678"), None)
    with pytest.raises(EgressBlocked):
        screen.check("李雷")
    vault.delete(["ps:" + "a" * 32])
    screen.check("李雷 13912345678")
