"""Conformal intervals and SHAP explanations of the trained model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from building_energy.models.explain import explain
from building_energy.models.intervals import conformal_halfwidth, predict_interval, stack_residuals
from building_energy.models.loading import load_model
from building_energy.models.train import TrainingResult, prepare_xy

pytestmark = pytest.mark.slow


def test_conformal_halfwidth_is_the_corrected_quantile() -> None:
    residuals = np.arange(1.0, 100.0)  # 99 scores
    assert conformal_halfwidth(residuals, 0.9) == 90.0  # ceil(100 * 0.9) = 90th smallest
    assert conformal_halfwidth(-residuals, 0.5) == 50.0
    assert conformal_halfwidth(residuals[:5], 0.9) == np.inf
    with pytest.raises(ValueError, match=r"interval level must be in \(0, 1\)"):
        conformal_halfwidth(residuals, 1.0)


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
    assert "Location (Latitude, Longitude)" in explanation.contributions.columns
    assert not any(name.endswith("_log") for name in explanation.contributions.columns)


def test_top_drivers_are_ordered_by_size(trained: TrainingResult, sample_buildings: pd.DataFrame) -> None:
    drivers = load_model(trained.model_path).explain(sample_buildings.head(3), top_k=4)
    assert [len(d) for d in drivers] == [4, 4, 4]
    sizes = [abs(float(d["contribution_log"])) for d in drivers[0]]
    assert sizes == sorted(sizes, reverse=True)
    assert drivers[0][0]["factor"] == pytest.approx(np.exp(drivers[0][0]["contribution_log"]))
