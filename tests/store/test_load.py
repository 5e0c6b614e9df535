"""Bulk loading: whole batches in, bad batches refused or rolled back with nothing left behind."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pyarrow as pa
import pytest

from medspace.store.engine import ClinicalStore
from medspace.store.load import LoadError, load
from tests.store.data import clinical_batch, pid


def test_a_batch_lands_in_every_table_it_names(store: ClinicalStore) -> None:
    batch = clinical_batch()
    loaded = load(store, batch)
    expected = {name: len(rows) for name, rows in batch.items()}
    assert loaded == expected
    assert store.row_counts() == expected


def test_a_batch_failing_in_the_engine_leaves_nothing_loaded(store: ClinicalStore) -> None:
    batch = clinical_batch()
    batch["visit"].append({**batch["visit"][0]})  # a duplicate visit_id, refused by the engine
    with pytest.raises(LoadError, match="rolled back"):
        load(store, batch)
    assert set(store.row_counts().values()) == {0}


def test_a_failed_batch_does_not_disturb_earlier_batches(store: ClinicalStore) -> None:
    batch = clinical_batch()
    load(store, {"person": batch["person"][:2]})
    with pytest.raises(LoadError):
        load(store, {"person": batch["person"], "condition": batch["condition"]})
    assert store.row_counts()["person"] == 2
    assert store.row_counts()["condition"] == 0


def test_a_name_in_a_code_column_is_refused_before_loading(store: ClinicalStore) -> None:
    rows = [
        {"person_id": pid(1), "condition_source_value": "Zhang Wei", "start_date": dt.date.today()}
    ]
    with pytest.raises(LoadError, match="condition_source_value"):
        load(store, {"condition": rows})


def test_a_person_id_that_is_not_a_keyed_pseudonym_is_refused(store: ClinicalStore) -> None:
    rows = [{"person_id": "MRN0001", "sex": "male", "birth_year": 1980}]
    with pytest.raises(LoadError, match="person_id"):
        load(store, {"person": rows})


@pytest.mark.parametrize(
    ("batch", "reason"),
    [
        ({"patient": []}, "unknown tables"),
        (
            {"person": [{"person_id": pid(1), "sex": "male", "birth_year": 1980, "name": "x"}]},
            "unknown columns",
        ),
        ({"person": pa.table({"person_id": [pid(1)], "birth_year": [1980]})}, "missing columns"),
        ({"person": [{"person_id": pid(1), "sex": None, "birth_year": 1980}]}, "empty values"),
        ({"person": [{"person_id": pid(1), "sex": "male", "birth_year": "old"}]}, "wrong type"),
    ],
)
def test_malformed_batches_are_refused(store: ClinicalStore, batch: dict, reason: str) -> None:
    with pytest.raises(LoadError, match=reason):
        load(store, batch)
    assert store.row_counts()["person"] == 0


def test_arrow_tables_and_pandas_frames_load_like_records(store: ClinicalStore) -> None:
    persons = clinical_batch()["person"]
    load(store, {"person": pa.Table.from_pylist(persons[:4])})
    load(store, {"person": pd.DataFrame(persons[4:])})
    assert store.row_counts()["person"] == len(persons)
