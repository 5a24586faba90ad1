"""The served model: its version, the categories its encoder saw, and JSON-safe answers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from building_energy.api.schemas import EXAMPLE_BUILDING, BuildingIn, PredictionOut, buildings_frame
from building_energy.api.serving import ServedModel, finite_or_none, is_integrity_error, model_version, seen_categories
from building_energy.data.columns import CATEGORICAL_INPUTS
from building_energy.models.artifacts import ModelIntegrityError, ModelLoadError, load_artifact
from building_energy.models.loading import LoadedModel
from building_energy.models.train import TrainingResult
from building_energy.preprocessing.categories import normalise_category


def test_the_version_is_the_registry_version_else_the_file_checksum() -> None:
    assert model_version({"model_sha256": "ab" * 32}) == "sha256:abababababab"
    registry = {"registry": {"name": "building-energy", "version": "3"}, "model_sha256": "ab" * 32}
    assert model_version(registry) == "building-energy/3"
    assert model_version({}) == "unknown"


@pytest.mark.parametrize(("value", "expected"), [(1.5, 1.5), (math.inf, None), (-math.inf, None), (math.nan, None)])
def test_bounds_that_are_not_finite_become_null(value: float, expected: float | None) -> None:
    assert finite_or_none(value) == expected


def test_an_integrity_error_is_found_below_a_wrapping_error() -> None:
    try:
        try:
            raise ModelIntegrityError("checksum mismatch")
        except ModelIntegrityError as inner:
            raise ModelLoadError("models:/x@champion (run 1): checksum mismatch") from inner
    except ModelLoadError as outer:
        assert is_integrity_error(outer)
    assert not is_integrity_error(ModelLoadError("no model at x"))


@pytest.mark.slow
def test_seen_categories_are_the_fitted_encoders_normalised_ones(
    loaded: LoadedModel, trained: TrainingResult, clean_buildings: pd.DataFrame
) -> None:
    seen = seen_categories(loaded.model)
    assert seen is not None
    assert set(seen) == set(CATEGORICAL_INPUTS)
    encoder = load_artifact(trained.model_path)["encoder"]
    for column, categories in zip(encoder.feature_names_in_, encoder.categories_, strict=True):
        assert seen[column] == {c for c in categories if isinstance(c, str)}
    # The encoder learned the normalised spellings: every spelling in the data maps into what it saw.
    normalised = set(normalise_category(clean_buildings["PrimaryPropertyType"]).dropna())
    assert normalised <= seen["PrimaryPropertyType"]
    assert "Hotel" not in seen["PrimaryPropertyType"]


@pytest.mark.slow
def test_a_building_becomes_one_typed_city_record(loaded: LoadedModel) -> None:
    frame = buildings_frame([BuildingIn.model_validate(EXAMPLE_BUILDING)])
    assert frame.shape[0] == 1
    assert frame["PropertyGFABuilding(s)"].dtype == np.float64
    assert frame["YearBuilt"].dtype == np.float64
    assert frame.loc[0, "PrimaryPropertyType"] == "Hotel"
    assert frame["SecondLargestPropertyUseTypeGFA"].isna().all()
    served = ServedModel.load(loaded.source, 0.9)
    (result,) = served.predict([BuildingIn.model_validate(EXAMPLE_BUILDING)])
    assert isinstance(result, PredictionOut)
    assert result.prediction == float(loaded.predict(frame)[0])


@pytest.mark.slow
def test_a_score_the_model_never_learned_from_is_flagged(loaded: LoadedModel) -> None:
    without_score = ServedModel(
        LoadedModel(loaded.model, {**loaded.metadata, "use_energy_star": False}, loaded.source), "v", None, 0.9
    )
    frame = buildings_frame([BuildingIn.model_validate(EXAMPLE_BUILDING)])
    assert without_score.warnings(frame) == [["ENERGYSTARScore is ignored: this model was trained without it"]]
