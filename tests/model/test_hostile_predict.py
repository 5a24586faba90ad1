"""Property-based tests: every hostile row gets a finite positive prediction or its own error, never an exception."""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from building_energy.config import get_config
from building_energy.dashboard.analysis import score_upload
from building_energy.data.columns import BUILDING_ID, PREDICTION_REQUIRED
from building_energy.data.schema import DataValidationError
from building_energy.models.loading import LoadedModel, load_model
from building_energy.models.predict import (
    ERROR_COLUMN,
    MODEL_FAILURE,
    PREDICTION_COLUMN,
    AbsentColumnsError,
    predict_frame,
    score_frame,
)
from building_energy.models.train import TrainingResult
from tests.hostile import edge_grid, fuzz, hostile_rows
from tests.injected_fault import FAULTY_YEAR, INJECTED_MESSAGE, save_with_fault

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def model(trained: TrainingResult) -> LoadedModel:
    return load_model(trained.model_path)


def _assert_each_row_scored_or_explained(frame: pd.DataFrame, out: pd.DataFrame) -> None:
    assert len(out) == len(frame)
    assert out.index.equals(pd.RangeIndex(len(frame)))
    numeric = out.drop(columns=[c for c in (BUILDING_ID, ERROR_COLUMN) if c in out])
    failed = out[ERROR_COLUMN] != ""
    scored = numeric[~failed].to_numpy(dtype=float)
    assert np.isfinite(scored).all(), out[~failed]
    assert (scored > 0).all(), out[~failed]
    assert numeric[failed].isna().all().all(), out[failed]
    # predict_frame's last resort isolates a row the model raises on; a row the schema admits never needs it.
    assert not out[ERROR_COLUMN].str.contains(MODEL_FAILURE).any(), out[ERROR_COLUMN].tolist()
    if "lower_kbtu" in out:
        ok = out[~failed]
        assert (ok["lower_kbtu"] <= ok[PREDICTION_COLUMN]).all()
        assert (ok[PREDICTION_COLUMN] <= ok["upper_kbtu"]).all()
    if BUILDING_ID in out:
        assert str(out[BUILDING_ID].dtype) == "Int64"
    for column in PREDICTION_REQUIRED:
        if column not in frame:
            assert out[ERROR_COLUMN].str.contains(re.escape(column)).all()


def test_every_single_edge_value_is_scored_or_explained(model: LoadedModel, sample_buildings: pd.DataFrame) -> None:
    """Each column of a real row set, in turn, to missing, NaN, ±inf, ±1e308, zero, subnormal, empty, Unicode..."""
    frame, edited = edge_grid(sample_buildings.iloc[0])

    out = predict_frame(model, frame)

    _assert_each_row_scored_or_explained(frame, out)
    failed = out[ERROR_COLUMN] != ""
    assert 0 < failed.sum() < len(frame)
    # The base row is valid, so a row's error can only be about the cell that was edited.
    for position in np.flatnonzero(failed):
        error = out.loc[position, ERROR_COLUMN]
        assert edited[position] in error or error.startswith("prediction"), (edited[position], error)


@fuzz(60)
@given(data=st.data())
def test_hostile_rows_are_scored_or_explained(
    model: LoadedModel, sample_buildings: pd.DataFrame, data: st.DataObject
) -> None:
    frame = hostile_rows(data, sample_buildings, wrong_types=data.draw(st.booleans(), label="wrong types"))

    # Columns may be dropped too: each row's outcome is under test here, not the refusal of a partial frame.
    out = predict_frame(model, frame, allow_absent_columns=True)

    _assert_each_row_scored_or_explained(frame, out)
    # A row's outcome is its own: scoring it alone gives the same answer as scoring it with the others.
    alone = predict_frame(model, frame.iloc[[0]], allow_absent_columns=True)
    assert alone.loc[0, ERROR_COLUMN] == out.loc[0, ERROR_COLUMN]
    np.testing.assert_allclose(alone[PREDICTION_COLUMN].iloc[0], out[PREDICTION_COLUMN].iloc[0], rtol=1e-9)


def test_a_frame_without_a_column_the_model_reads_is_refused_unless_allowed(
    model: LoadedModel, sample_buildings: pd.DataFrame
) -> None:
    rows = sample_buildings.head(5)
    # A misspelt name is a column the model never reads: without the check, every row counted it unknown.
    misspelt = rows.rename(columns={"LargestPropertyUseTypeGFA": "LargestPropertyUseTypeGfa"})
    with pytest.raises(AbsentColumnsError, match=r"^no column for \['LargestPropertyUseTypeGFA'\], which the model"):
        predict_frame(model, misspelt)
    allowed = predict_frame(model, misspelt, allow_absent_columns=True)
    blank = predict_frame(model, rows.assign(LargestPropertyUseTypeGFA=np.nan))
    pd.testing.assert_frame_equal(allowed, blank)


# KeyError stands for what a library raises outside the usual three (LightGBMError derives from Exception).
@pytest.mark.parametrize("error", [ValueError, KeyError])
def test_a_row_the_model_fails_on_costs_that_row_only(
    trained: TrainingResult,
    model: LoadedModel,
    sample_buildings: pd.DataFrame,
    tmp_path: Path,
    error: type[Exception],
    caplog: pytest.LogCaptureFixture,
) -> None:
    faulty = load_model(save_with_fault(trained.model_path, tmp_path, error=error))
    frame = sample_buildings.head(5).reset_index(drop=True)
    assert (frame["YearBuilt"] != FAULTY_YEAR).all()
    frame.loc[2, "YearBuilt"] = FAULTY_YEAR

    scored = score_frame(faulty, frame)

    assert scored.model_failures == {2}
    # The row's own cause is in the log, not only the first batch error.
    assert any(r.getMessage() == "the model failed on row 2" and r.exc_info for r in caplog.records)
    out = scored.table
    assert out.loc[2, ERROR_COLUMN].startswith(f"{MODEL_FAILURE} ({error.__name__}")
    assert INJECTED_MESSAGE in out.loc[2, ERROR_COLUMN]
    assert out.loc[2, [PREDICTION_COLUMN, "lower_kbtu", "upper_kbtu"]].isna().all()
    # Every other row is scored exactly as the intact model scores it.
    others = [0, 1, 3, 4]
    intact = predict_frame(model, frame)
    assert (out.loc[others, ERROR_COLUMN] == "").all()
    pd.testing.assert_frame_equal(out.loc[others], intact.loc[others])
    # A row that fails on its input is the input's fault, not the model's.
    frame.loc[0, "PropertyGFATotal"] = -5
    assert score_frame(faulty, frame).model_failures == {2}


class _Tripwire:
    """Unpickling this creates ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.marker), "w"))


def test_a_dashboard_upload_is_parsed_as_data_only(
    model: LoadedModel, sample_buildings: pd.DataFrame, tmp_path: Path
) -> None:
    marker = tmp_path / "unpickled"
    limit = get_config().dashboard.max_upload_mb * 2**20
    with pytest.raises(DataValidationError):
        score_upload(model, pickle.dumps(_Tripwire(marker)), "model.pkl", limit)
    assert not marker.exists()

    frame = sample_buildings.head(3).copy()
    frame.loc[0, "PrimaryPropertyType"] = '=HYPERLINK("http://127.0.0.1/","x")'
    frame.loc[1, "Neighborhood"] = "__import__('os').system('touch " + str(marker) + "')"
    result = score_upload(model, frame.to_csv(index=False).encode(), "buildings.csv", limit)

    assert not marker.exists()
    assert len(result.predictions) == 3
    # Code-looking cells are just unseen categories: the rows are scored like any other.
    assert (result.predictions[ERROR_COLUMN] == "").all()
