"""The floor-area-weighted use-mix encoding and the intensity learner."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.ensemble import ExtraTreesRegressor
from sklearn.linear_model import LinearRegression

from building_energy.features.use_mix import UseMixEncoder
from building_energy.models.pipeline import IntensityRegressor


@pytest.fixture
def mixed() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "PropertyGFATotal": [100.0, 100.0, 200.0, 100.0, 100.0, 100.0],
            "LargestPropertyUseType": ["OFFICE", "OFFICE", "DATA CENTER", "OFFICE", "DATA CENTER", "MUSEUM"],
            "LargestPropertyUseTypeGFA": [100.0, 60.0, 200.0, 100.0, 100.0, 100.0],
            "SecondLargestPropertyUseType": [np.nan, "DATA CENTER", np.nan, np.nan, np.nan, np.nan],
            "SecondLargestPropertyUseTypeGFA": [np.nan, 40.0, np.nan, np.nan, np.nan, np.nan],
            "ThirdLargestPropertyUseType": [np.nan] * 6,
            "ThirdLargestPropertyUseTypeGFA": [np.nan] * 6,
        }
    )


def _log_energy(frame: pd.DataFrame, intensity: list[float]) -> np.ndarray:
    return np.log1p(frame["PropertyGFATotal"].to_numpy()) + np.asarray(intensity)


def test_encoding_weights_use_types_by_floor_area(mixed: pd.DataFrame) -> None:
    y = _log_energy(mixed, [1.0, 2.0, 5.0, 1.0, 5.0, 3.0])
    encoder = UseMixEncoder(smoothing=0.0).fit(mixed, y)
    out = encoder.transform(mixed)
    office, data_centre = encoder.means_["OFFICE"], encoder.means_["DATA CENTER"]
    assert data_centre > office
    assert out["UseMixIntensity"].iloc[1] == pytest.approx(0.6 * office + 0.4 * data_centre)
    assert out["UseMixIntensity"].iloc[0] == pytest.approx(office)


def test_unseen_use_types_fall_back_to_the_average(mixed: pd.DataFrame) -> None:
    encoder = UseMixEncoder().fit(mixed, _log_energy(mixed, [1.0, 2.0, 5.0, 1.0, 5.0, 3.0]))
    unseen = mixed.head(1).assign(LargestPropertyUseType="LIGHTHOUSE")
    assert encoder.transform(unseen)["UseMixIntensity"].iloc[0] == pytest.approx(encoder.prior_)


def test_training_rows_never_see_their_own_target(mixed: pd.DataFrame) -> None:
    y = _log_energy(mixed, [1.0, 2.0, 5.0, 1.0, 5.0, 3.0])
    encoder = UseMixEncoder(smoothing=0.0, cv=3)
    cross_fitted = encoder.fit_transform(mixed, y)["UseMixIntensity"]
    in_sample = encoder.transform(mixed)["UseMixIntensity"]
    assert not np.allclose(cross_fitted, in_sample)


def test_use_mix_follows_the_estimator_contract(mixed: pd.DataFrame) -> None:
    y = _log_energy(mixed, [1.0, 2.0, 5.0, 1.0, 5.0, 3.0])
    before = mixed.copy()
    encoder = UseMixEncoder(smoothing=2.0)
    encoder.fit_transform(mixed, y)
    pd.testing.assert_frame_equal(mixed, before)
    assert clone(encoder).get_params() == encoder.get_params()
    assert list(encoder.get_feature_names_out()) == [*mixed.columns, "UseMixIntensity"]


def test_intensity_regressor_adds_log_area_back() -> None:
    X = pd.DataFrame({"PropertyGFATotal_log": np.log1p([1e4, 2e4, 4e4, 8e4]), "x": [1.0, 2.0, 3.0, 4.0]})
    y = X["PropertyGFATotal_log"] + 0.5 * X["x"]
    model = IntensityRegressor(LinearRegression(), monotone=False).fit(X, y)
    np.testing.assert_allclose(model.predict(X), y)
    np.testing.assert_allclose(model.estimator_.coef_, [0.0, 0.5], atol=1e-9)
    assert clone(model).get_params()["area_feature"] == "PropertyGFATotal_log"


def test_intensity_regressor_refuses_to_drop_constraints_silently() -> None:
    X = pd.DataFrame({"PropertyGFATotal_log": np.log1p([1e4, 2e4, 4e4, 8e4]), "x": [1.0, 2.0, 3.0, 4.0]})
    with pytest.raises(TypeError, match="no monotone constraints known for LinearRegression"):
        IntensityRegressor(LinearRegression()).fit(X, X["PropertyGFATotal_log"])


def test_constraints_follow_the_column_names() -> None:
    X = pd.DataFrame(
        {
            "PropertyGFATotal_log": np.log1p([1e4, 2e4, 4e4, 8e4]),
            "ENERGYSTARScore": [90.0, 10.0, 50.0, 70.0],
            "x": [1.0, 2.0, 3.0, 4.0],
        }
    )
    model = IntensityRegressor(ExtraTreesRegressor(n_estimators=2)).fit(X, X["PropertyGFATotal_log"])
    assert list(model.estimator_.monotonic_cst) == [1, -1, 0]
