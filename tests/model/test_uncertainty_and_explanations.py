"""Conformal intervals and SHAP explanations of the trained model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression
from sklearn.utils.estimator_checks import check_estimator

from building_energy.models.evaluate import metrics_real
from building_energy.models.explain import LOCATION, explain
from building_energy.models.intervals import (
    conformal_halfwidth,
    group_halfwidths,
    group_relative_factors,
    predict_interval,
    predict_relative_error_point,
    relative_error_factor,
    stack_groups,
    stack_residuals,
)
from building_energy.models.loading import load_model
from building_energy.models.pipeline import ConformalMetaLearner, interval_groups
from building_energy.models.train import TrainingResult, prepare_xy

pytestmark = pytest.mark.slow


def test_the_meta_learner_keeping_residuals_passes_scikit_learns_estimator_checks() -> None:
    results = check_estimator(ConformalMetaLearner(LinearRegression(positive=True)), on_fail=None)
    failed = {result["check_name"]: str(result["exception"]) for result in results if result["status"] == "failed"}
    assert failed == {}


def test_conformal_halfwidth_is_the_corrected_quantile() -> None:
    residuals = np.arange(1.0, 100.0)  # 99 scores
    assert conformal_halfwidth(residuals, 0.9) == 90.0  # ceil(100 * 0.9) = 90th smallest
    assert conformal_halfwidth(-residuals, 0.5) == 50.0
    assert conformal_halfwidth(residuals[:5], 0.9) == np.inf
    with pytest.raises(ValueError, match=r"interval level must be in \(0, 1\)"):
        conformal_halfwidth(residuals, 1.0)


def test_a_group_too_small_for_its_quantile_borrows_the_pooled_one() -> None:
    residuals = np.concatenate([np.linspace(0.0, 1.0, 50), [5.0, 6.0, 7.0]])
    groups = np.array([0] * 50 + [1] * 3)
    widths = group_halfwidths(residuals, groups, 0.9)
    assert widths[0] == conformal_halfwidth(residuals[:50], 0.9)
    assert widths[1] == conformal_halfwidth(residuals, 0.9)


def test_the_relative_error_factor_minimises_the_mean_relative_error() -> None:
    residuals = np.random.default_rng(0).standard_t(3, 400) * 0.5
    grid = np.linspace(0.05, 2.0, 39_001)
    mean_ape = np.abs(grid[:, None] * np.exp(-residuals)[None, :] - 1).mean(axis=1)
    assert relative_error_factor(residuals) == pytest.approx(grid[np.argmin(mean_ape)], abs=1e-4)
    # Over-estimates cost more than under-estimates, so a wider spread scales further down; none at all keeps 1.
    assert relative_error_factor(np.zeros(5)) == 1.0
    assert relative_error_factor(residuals) < relative_error_factor(residuals / 4) < 1
    with pytest.raises(ValueError, match="no residuals"):
        relative_error_factor(np.array([]))


def test_each_group_gets_its_own_relative_error_factor() -> None:
    residuals = np.concatenate([np.linspace(-0.2, 0.2, 41), np.linspace(-1.5, 1.5, 41)])
    factors = group_relative_factors(residuals, np.array([0] * 41 + [1] * 41))
    assert factors[0] == relative_error_factor(residuals[:41]) and factors[1] == relative_error_factor(residuals[41:])
    assert factors[1] < factors[0]
    only_scored = group_relative_factors(residuals[:41], np.zeros(41, dtype=int))
    assert only_scored[1] == only_scored[0]


def test_the_relative_error_point_trades_log_accuracy_for_a_lower_mape(
    trained: TrainingResult, clean_buildings: pd.DataFrame
) -> None:
    model = load_model(trained.model_path)
    test_rows = clean_buildings[clean_buildings["OSEBuildingID"].isin(model.metadata["test_ids"])]
    X, y = prepare_xy(test_rows)
    point = model.model.predict(X)
    relative = predict_relative_error_point(model.model, X)
    assert (relative <= point).all()
    shipped, scaled = metrics_real(y, point), metrics_real(y, relative)
    assert scaled["mape"] < shipped["mape"]
    assert scaled["r2_log"] < shipped["r2_log"]


def test_without_a_score_column_the_groups_follow_the_scorable_use_types() -> None:
    scored_model = pd.DataFrame({"missingindicator_ENERGYSTARScore": [0.0, 1.0], "ScorableUseType": [0.0, 1.0]})
    np.testing.assert_array_equal(interval_groups(scored_model), [0, 1])  # the score's presence wins
    unscored_model = pd.DataFrame({"ScorableUseType": [1.0, 0.0, 1.0]})
    np.testing.assert_array_equal(interval_groups(unscored_model), [0, 1, 0])
    np.testing.assert_array_equal(interval_groups(pd.DataFrame({"YearBuilt": [1990.0, 2000.0]})), [0, 0])


def test_a_model_trained_without_the_score_widens_intervals_for_unscorable_use_types(
    trained_without_score: TrainingResult, sample_buildings: pd.DataFrame
) -> None:
    model = load_model(trained_without_score.model_path).model
    groups = stack_groups(model)
    assert set(groups) == {0, 1} and len(groups) == len(stack_residuals(model))
    ratio = {}
    for use_type in ("Office", "Self-Storage Facility"):
        frame = sample_buildings.assign(LargestPropertyUseType=use_type, ENERGYSTARScore=np.nan)
        point, lower, upper = predict_interval(model, frame, 0.9)
        np.testing.assert_allclose(point, model.predict(frame))
        ratio[use_type] = upper / lower
    assert (ratio["Self-Storage Facility"] > ratio["Office"]).all()


def test_buildings_without_a_score_get_wider_intervals(trained: TrainingResult, sample_buildings: pd.DataFrame) -> None:
    model = load_model(trained.model_path).model
    groups = stack_groups(model)
    assert set(groups) == {0, 1} and len(groups) == len(stack_residuals(model))
    scored = sample_buildings.assign(ENERGYSTARScore=50.0)
    unscored = sample_buildings.assign(ENERGYSTARScore=np.nan)
    ratio = {}
    for name, frame in (("scored", scored), ("unscored", unscored)):
        point, lower, upper = predict_interval(model, frame, 0.9)
        np.testing.assert_allclose(point, model.predict(frame))
        ratio[name] = upper / lower
    assert (ratio["unscored"] > ratio["scored"]).all()


def test_intervals_cover_the_held_out_buildings(trained: TrainingResult, clean_buildings: pd.DataFrame) -> None:
    model = load_model(trained.model_path)
    test_rows = clean_buildings[clean_buildings["OSEBuildingID"].isin(model.metadata["test_ids"])]
    X, y = prepare_xy(test_rows)
    point, lower, upper = predict_interval(model.model, X, 0.9)
    assert (lower < point).all() and (point < upper).all()
    coverage = np.mean((y >= lower) & (y <= upper))
    assert 0.8 <= coverage <= 0.97
    _, narrow_low, narrow_high = predict_interval(model.model, X, 0.5)
    assert ((narrow_high - narrow_low) < (upper - lower)).all()
    assert len(stack_residuals(model.model)) == model.metadata["n_train"]


def test_contributions_add_up_to_the_prediction(trained: TrainingResult, sample_buildings: pd.DataFrame) -> None:
    model = load_model(trained.model_path)
    explanation = explain(model, sample_buildings)
    rebuilt = explanation.baseline + explanation.contributions.sum(axis=1).to_numpy()
    np.testing.assert_allclose(rebuilt, np.log1p(model.predict(sample_buildings)), atol=1e-4)
    assert "PropertyGFATotal" in explanation.contributions.columns
    assert LOCATION in explanation.contributions.columns
    assert not any(name.endswith("_log") for name in explanation.contributions.columns)


def test_top_drivers_are_ordered_by_size(trained: TrainingResult, sample_buildings: pd.DataFrame) -> None:
    drivers = load_model(trained.model_path).explain(sample_buildings.head(3), top_k=4)
    assert [len(d) for d in drivers] == [4, 4, 4]
    sizes = [abs(float(d["contribution_log"])) for d in drivers[0]]
    assert sizes == sorted(sizes, reverse=True)
    assert drivers[0][0]["factor"] == pytest.approx(np.exp(drivers[0][0]["contribution_log"]))


def test_a_driver_the_building_did_not_give_is_marked_unknown(
    trained: TrainingResult, sample_buildings: pd.DataFrame
) -> None:
    model = load_model(trained.model_path)
    given = sample_buildings.head(6).assign(ENERGYSTARScore=60.0)
    unscored = given.assign(ENERGYSTARScore=np.nan)
    for frame, expected in ((given, False), (unscored, True)):
        explanation = explain(model, frame)
        assert explanation.unknown["ENERGYSTARScore"].tolist() == [expected] * 6
        # A partly given group is known; fields given in every row are never unknown.
        assert not explanation.unknown["PropertyGFATotal"].any()
    located = unscored.assign(Latitude=np.nan)
    assert not explain(model, located).unknown[LOCATION].any()
    nowhere = located.drop(columns=["Longitude", "Neighborhood", "CouncilDistrictCode"])
    assert explain(model, nowhere).unknown[LOCATION].all()
    # Every driver says whether it is a value's effect or the effect of the value being unknown.
    for drivers in model.explain(unscored, top_k=30):
        for driver in drivers:
            assert driver["unknown"] == (driver["field"] in ("ENERGYSTARScore",))
