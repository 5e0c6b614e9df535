"""The data space end to end: a researcher's count study answered by five hospitals."""

from __future__ import annotations

from pathlib import Path

import pytest

from medspace.wire.messages import StudyRequest
from tests.spacekit import AS_OF, DataSpace, build

COUNT_QUERY = {
    "cohort": {"as_of": AS_OF.isoformat(), "condition_prefixes": ["C34"]},
    "group_by": ["sex"],
}


@pytest.fixture
def space(tmp_path: Path):
    data_space = build(tmp_path)
    yield data_space
    data_space.stop()


def test_count_study_is_answered_by_every_hospital_and_pooled(space: DataSpace) -> None:
    space.start_agents()
    study = space.submit(StudyRequest(title="lung cancer by sex", kind="count",
                                      query=COUNT_QUERY, deadline_seconds=60))
    outcome = space.wait(study)
    assert outcome["status"] == "done", outcome
    result = outcome["result"]["result"]
    assert result["hospitals"] == space.hospitals
    pooled = {tuple(cell["key"]): cell["count"] for cell in result["pooled"]}
    assert pooled == {("female",): 5 * 10, ("male",): 5 * 10}

