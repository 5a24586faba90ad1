"""The custom transformers follow scikit-learn's estimator contract."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import Ridge
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline

from building_energy.config import get_config
from building_energy.data.columns import METER_COLUMNS
from building_energy.features.energy_star import EnergyStarIntensity, ScorableUseType
from building_energy.features.engineer import BuildingFeatures
from building_energy.features.use_flags import UseTypeFlags
from building_energy.features.use_mix import UseMixEncoder
from building_energy.models.monotone_svr import MonotoneSVR
from building_energy.models.pipeline import make_preprocessor
from building_energy.preprocessing.transformers import CleanBuildings


@pytest.fixture(scope="module")
def buildings(clean_buildings: pd.DataFrame) -> pd.DataFrame:
    return clean_buildings.head(300).copy()


def test_clone_keeps_parameters_and_drops_state(buildings: pd.DataFrame) -> None:
    fitted = BuildingFeatures(n_surface_clusters=4).fit(CleanBuildings().fit_transform(buildings))
    copy = clone(fitted)
    assert copy.get_params() == fitted.get_params()
    with pytest.raises(NotFittedError):
        copy.transform(buildings)


def test_transform_does_not_mutate_input(buildings: pd.DataFrame) -> None:
    before = buildings.copy()
    cleaned = CleanBuildings().fit_transform(buildings)
    cleaned_before = cleaned.copy()
    BuildingFeatures().fit_transform(cleaned)
    pd.testing.assert_frame_equal(buildings, before)
    pd.testing.assert_frame_equal(cleaned, cleaned_before)


def test_no_preprocessing_step_mutates_its_input_in_fit_transform_or_transform(buildings: pd.DataFrame) -> None:
    y = np.log1p(buildings["SiteEnergyUse(kBtu)"])
    frame = buildings
    for name, step in make_preprocessor(get_config(), use_energy_star=True):
        before = frame.copy()
        fitted = clone(step)
        out = fitted.fit_transform(frame, y)
        pd.testing.assert_frame_equal(frame, before, obj=f"{name}.fit_transform's input")
        fitted.transform(frame)
        pd.testing.assert_frame_equal(frame, before, obj=f"{name}.transform's input")
        frame = out


def test_feature_names_survive_to_the_learner(buildings: pd.DataFrame) -> None:
    steps = make_preprocessor(get_config(), use_energy_star=True)
    preprocess = make_pipeline(*(step for _, step in steps))
    out = preprocess.fit_transform(buildings, np.log1p(buildings["SiteEnergyUse(kBtu)"]))
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == list(preprocess.get_feature_names_out())
    assert {"PropertyGFATotal_log", "UseMixIntensity", "EnergyStarIntensity", "HasUse_OFFICE"} <= set(out.columns)
    assert "missingindicator_ENERGYSTARScore" in out.columns
    assert not out.isna().any().any()
    assert not set(out.columns) & set(METER_COLUMNS)


def test_energy_star_can_be_left_out(buildings: pd.DataFrame) -> None:
    assert "ENERGYSTARScore" not in CleanBuildings(use_energy_star=False).fit_transform(buildings)
    steps = make_preprocessor(get_config(), use_energy_star=False)
    preprocess = make_pipeline(*(step for _, step in steps))
    out = preprocess.fit_transform(buildings, np.log1p(buildings["SiteEnergyUse(kBtu)"]))
    assert not {name for name in out.columns if "ENERGYSTAR" in name.upper() or "ENERGYSTAR" in name}
    assert "EnergyStarIntensity" not in out.columns


def test_clusters_learn_from_fit_rows_only(buildings: pd.DataFrame) -> None:
    cleaned = CleanBuildings().fit_transform(buildings)
    first = BuildingFeatures().fit(cleaned.iloc[:150])
    centres = first.surface_kmeans_.cluster_centers_.copy()
    other = BuildingFeatures().fit(cleaned.iloc[150:])
    held_out = first.transform(cleaned.iloc[150:])
    assert np.array_equal(first.surface_kmeans_.cluster_centers_, centres), "transform must not refit"
    assert np.array_equal(BuildingFeatures().fit(cleaned.iloc[:150]).surface_kmeans_.cluster_centers_, centres)
    assert not np.array_equal(other.surface_kmeans_.cluster_centers_, centres)
    assert set(held_out["SurfaceCluster"]) <= set(range(first.n_surface_clusters))


def test_transformers_work_inside_grid_search(buildings: pd.DataFrame) -> None:
    steps = make_preprocessor(get_config(), use_energy_star=True)
    pipeline = make_pipeline(*(step for _, step in steps), Ridge())
    # error_score="raise": by default a fit that fails inside the search is only a NaN score and a warning.
    search = GridSearchCV(pipeline, {"buildingfeatures__n_surface_clusters": [3, 5]}, cv=3, error_score="raise")
    search.fit(buildings, np.log1p(buildings["SiteEnergyUse(kBtu)"]))
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    assert (
        search.best_estimator_.named_steps["buildingfeatures"].n_surface_clusters
        == search.best_params_["buildingfeatures__n_surface_clusters"]
    )


def test_clean_buildings_rejects_non_frames() -> None:
    with pytest.raises(TypeError, match="pandas DataFrame"):
        CleanBuildings().fit(np.zeros((3, 3)))


@pytest.mark.parametrize(
    "step",
    [BuildingFeatures(), UseTypeFlags(), UseMixEncoder(), EnergyStarIntensity(), ScorableUseType(), MonotoneSVR()],
    ids=lambda step: type(step).__name__,
)
def test_steps_refuse_to_fit_on_an_array_or_on_no_rows(buildings: pd.DataFrame, step: BaseEstimator) -> None:
    cleaned = CleanBuildings().fit_transform(buildings)
    log_energy = np.log1p(buildings["SiteEnergyUse(kBtu)"].to_numpy())
    name = type(step).__name__
    with pytest.raises(TypeError, match=f"{name} needs a pandas DataFrame with named columns, got ndarray"):
        clone(step).fit(cleaned.to_numpy(), log_energy)
    # No rows would leave NaN averages behind, which encode every later building as unknown.
    with pytest.raises(ValueError, match=f"{name} cannot be fitted on 0 rows"):
        clone(step).fit(cleaned.iloc[:0], log_energy[:0])


def _fitted_steps(buildings: pd.DataFrame) -> list[tuple[BaseEstimator, pd.DataFrame]]:
    cleaned = CleanBuildings().fit_transform(buildings)
    log_energy = np.log1p(buildings["SiteEnergyUse(kBtu)"].to_numpy())
    steps: list[BaseEstimator] = [
        BuildingFeatures(n_surface_clusters=4),
        UseTypeFlags(min_count=5),
        UseMixEncoder(),
        EnergyStarIntensity(),
        ScorableUseType(),
    ]
    return [(step.fit(cleaned, log_energy), cleaned) for step in steps]


def test_steps_refuse_columns_reordered_or_missing_instead_of_mislabelling_them(buildings: pd.DataFrame) -> None:
    for step, cleaned in _fitted_steps(buildings):
        name = type(step).__name__
        with pytest.raises(ValueError, match=f"{name} was fitted on these columns in another order"):
            step.transform(cleaned[cleaned.columns[::-1]])
        with pytest.raises(ValueError, match=rf"{name} was fitted on other columns: missing \['YearBuilt'\]"):
            step.transform(cleaned.drop(columns="YearBuilt"))
        with pytest.raises(TypeError, match=f"{name} needs a pandas DataFrame"):
            step.transform(cleaned.to_numpy())
        step.set_output(transform="pandas")
        assert list(step.transform(cleaned).columns) == list(step.get_feature_names_out())


@pytest.mark.parametrize("encoder", [UseMixEncoder(), EnergyStarIntensity()], ids=lambda step: type(step).__name__)
def test_target_encoders_refuse_to_fit_without_the_target(buildings: pd.DataFrame, encoder: BaseEstimator) -> None:
    cleaned = CleanBuildings().fit_transform(buildings)
    name = type(encoder).__name__
    with pytest.raises(ValueError, match=f"{name} is fitted on the target: pass y"):
        clone(encoder).fit_transform(cleaned)
    with pytest.raises(ValueError, match=rf"{name}: y has shape \(3,\), expected one value per row of X \(300\)"):
        clone(encoder).fit_transform(cleaned, np.ones(3))
