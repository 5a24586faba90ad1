"""The use-mix encoding (use intensities added up by floor area) and the intensity learner."""

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


def test_encoding_weights_use_intensities_by_floor_area(mixed: pd.DataFrame) -> None:
    y = _log_energy(mixed, [1.0, 2.0, 5.0, 1.0, 5.0, 3.0])
    encoder = UseMixEncoder(shrinkage=0.0).fit(mixed, y)
    out = encoder.transform(mixed)
    office, data_centre = encoder.means_["OFFICE"], encoder.means_["DATA CENTER"]
    assert data_centre > office
    # Energy adds up over the uses in kBtu, so the mix's log intensity is not the mean of the logs.
    mix = np.log(0.6 * np.exp(office) + 0.4 * np.exp(data_centre))
    assert out["UseMixIntensity"].iloc[1] == pytest.approx(mix)
    assert out["UseMixIntensity"].iloc[0] == pytest.approx(office)


def test_a_use_met_only_beside_others_gets_its_own_intensity() -> None:
    """Offices at 50 kBtu/sq ft with 0-40% of their area in a data centre at 500: the fit recovers both."""
    rng = np.random.default_rng(0)
    n = 60
    total = rng.uniform(2e4, 2e5, n)
    data_centre_share = rng.uniform(0.0, 0.4, n)
    buildings = pd.DataFrame(
        {
            "PropertyGFATotal": total,
            "LargestPropertyUseType": "OFFICE",
            "LargestPropertyUseTypeGFA": total * (1 - data_centre_share),
            "SecondLargestPropertyUseType": "DATA CENTER",
            "SecondLargestPropertyUseTypeGFA": total * data_centre_share,
            "ThirdLargestPropertyUseType": np.nan,
            "ThirdLargestPropertyUseTypeGFA": np.nan,
        }
    )
    energy = total * (50 * (1 - data_centre_share) + 500 * data_centre_share)
    encoder = UseMixEncoder(shrinkage=0.0).fit(buildings, np.log1p(energy))
    np.testing.assert_allclose(np.exp(encoder.means_[["OFFICE", "DATA CENTER"]]), [50, 500], rtol=1e-3)
    many = UseMixEncoder(shrinkage=1e4).fit(buildings, np.log1p(energy))
    assert np.ptp(many.means_[["OFFICE", "DATA CENTER"]]) < 0.01, "strong shrinkage pulls both to the average"


def test_use_areas_adding_up_to_more_than_the_total_are_scaled_down(mixed: pd.DataFrame) -> None:
    encoder = UseMixEncoder(shrinkage=0.0).fit(mixed, _log_energy(mixed, [1.0, 2.0, 5.0, 1.0, 5.0, 3.0]))
    office_with_data_centre = mixed.iloc[[1]]  # 60 + 40 of 100 sq ft
    doubled_uses = office_with_data_centre.assign(LargestPropertyUseTypeGFA=120.0, SecondLargestPropertyUseTypeGFA=80.0)
    scaled_down = encoder.transform(doubled_uses)["UseMixIntensity"]
    np.testing.assert_allclose(scaled_down, encoder.transform(office_with_data_centre)["UseMixIntensity"])


def test_unseen_use_types_fall_back_to_the_average(mixed: pd.DataFrame) -> None:
    encoder = UseMixEncoder().fit(mixed, _log_energy(mixed, [1.0, 2.0, 5.0, 1.0, 5.0, 3.0]))
    unseen = mixed.head(1).assign(LargestPropertyUseType="LIGHTHOUSE")
    assert encoder.transform(unseen)["UseMixIntensity"].iloc[0] == pytest.approx(encoder.prior_)


def test_training_rows_never_see_their_own_target(mixed: pd.DataFrame) -> None:
    y = _log_energy(mixed, [1.0, 2.0, 5.0, 1.0, 5.0, 3.0])
    encoder = UseMixEncoder(shrinkage=0.0, cv=3)
    cross_fitted = encoder.fit_transform(mixed, y)["UseMixIntensity"]
    in_sample = encoder.transform(mixed)["UseMixIntensity"]
    assert not np.allclose(cross_fitted, in_sample)


def test_a_row_whose_uses_leave_area_uncovered_never_sees_its_own_target(mixed: pd.DataFrame) -> None:
    # The museum lists uses on half its floor area; the rest is filled with the average intensity, which
    # must be the other folds' average too.
    partly_listed = mixed.assign(LargestPropertyUseTypeGFA=[100.0, 60.0, 200.0, 100.0, 100.0, 50.0])
    y = _log_energy(partly_listed, [1.0, 2.0, 5.0, 1.0, 5.0, 3.0])
    spiked = y.copy()
    spiked[5] += 10.0
    honest = UseMixEncoder(cv=3).fit_transform(partly_listed, y)["UseMixIntensity"].to_numpy()
    moved = UseMixEncoder(cv=3).fit_transform(partly_listed, spiked)["UseMixIntensity"].to_numpy()
    assert moved[5] == pytest.approx(honest[5])
    assert not np.allclose(moved[:5], honest[:5])


def test_use_mix_follows_the_estimator_contract(mixed: pd.DataFrame) -> None:
    y = _log_energy(mixed, [1.0, 2.0, 5.0, 1.0, 5.0, 3.0])
    before = mixed.copy()
    encoder = UseMixEncoder(shrinkage=2.0)
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
