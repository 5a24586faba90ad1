"""The ENERGY STAR intensity encoder and the use-type flags."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from building_energy.features.energy_star import EnergyStarIntensity, ScorableUseType, score_log_ratio
from building_energy.features.use_flags import UseTypeFlags, flag_name


def _scored(n_per_type: int = 40, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Two use types with different baselines; intensity falls with the score through EPA's ratio."""
    rng = np.random.default_rng(seed)
    use = np.repeat(["OFFICE", "HOTEL"], n_per_type)
    score = rng.integers(1, 101, size=use.size).astype(float)
    area = rng.uniform(2e4, 2e5, size=use.size)
    baseline = np.where(use == "OFFICE", 4.0, 5.0)
    intensity = baseline + 0.8 * score_log_ratio(score, 4.0) + rng.normal(0, 0.01, size=use.size)
    frame = pd.DataFrame({"LargestPropertyUseType": use, "ENERGYSTARScore": score, "PropertyGFATotal": area})
    return frame, np.log1p(area) + intensity


def test_the_score_maps_to_a_falling_log_ratio() -> None:
    ratios = score_log_ratio(np.array([1.0, 25.0, 50.0, 75.0, 100.0]), 4.0)
    assert (np.diff(ratios) < 0).all()
    assert np.isnan(score_log_ratio(np.array([np.nan]), 4.0)).all()


def test_the_encoder_recovers_the_baselines_and_the_slope() -> None:
    frame, y = _scored()
    encoder = EnergyStarIntensity(smoothing=0.0).fit(frame, y)
    assert encoder.slope_ == pytest.approx(0.8, abs=0.02)
    assert encoder.baselines_["HOTEL"] - encoder.baselines_["OFFICE"] == pytest.approx(1.0, abs=0.02)
    out = encoder.transform(frame)
    intensity = y - np.log1p(frame["PropertyGFATotal"])
    np.testing.assert_allclose(out["EnergyStarIntensity"], intensity, atol=0.05)


def test_unscored_buildings_and_unknown_types_get_a_defined_answer() -> None:
    frame, y = _scored()
    encoder = EnergyStarIntensity().fit(frame, y)
    new = pd.DataFrame(
        {"LargestPropertyUseType": ["OFFICE", "MUSEUM"], "ENERGYSTARScore": [np.nan, 50.0], "PropertyGFATotal": 1e5}
    )
    out = encoder.transform(new)["EnergyStarIntensity"]
    assert np.isnan(out.iloc[0])
    assert out.iloc[1] == pytest.approx(encoder.prior_ + encoder.slope_ * score_log_ratio(np.array([50.0]), 4.0)[0])


def test_data_where_a_better_score_means_more_energy_gives_a_flat_relation() -> None:
    frame, y = _scored()
    ratio = score_log_ratio(frame["ENERGYSTARScore"].to_numpy(), 4.0)
    backwards = y - 1.6 * ratio  # the fitted slope would be -0.8
    encoder = EnergyStarIntensity().fit(frame, backwards)
    assert encoder.slope_ == 0.0
    better = frame.assign(ENERGYSTARScore=np.minimum(frame["ENERGYSTARScore"] + 20, 100))
    assert (encoder.transform(better)["EnergyStarIntensity"] <= encoder.transform(frame)["EnergyStarIntensity"]).all()


def test_fit_transform_never_shows_a_row_its_own_energy() -> None:
    frame, y = _scored()
    encoder = EnergyStarIntensity(smoothing=0.0, cv=5)
    honest = encoder.fit_transform(frame, y)["EnergyStarIntensity"].to_numpy()
    spiked = y.copy()
    spiked[0] += 10.0  # one building's energy changes; its own encoding must not follow
    moved = EnergyStarIntensity(smoothing=0.0, cv=5).fit_transform(frame, spiked)["EnergyStarIntensity"].to_numpy()
    assert moved[0] == pytest.approx(honest[0])
    assert not np.allclose(moved[1:], honest[1:])


def test_encoder_follows_the_estimator_contract() -> None:
    frame, y = _scored()
    before = frame.copy()
    fitted = EnergyStarIntensity(gamma_shape=3.0).fit(frame, y)
    pd.testing.assert_frame_equal(frame, before)
    assert list(fitted.get_feature_names_out()) == [*frame.columns, "EnergyStarIntensity"]
    with pytest.raises(NotFittedError):
        clone(fitted).transform(frame)
    assert clone(fitted).get_params()["gamma_shape"] == 3.0


def test_flags_mark_every_listed_frequent_use() -> None:
    frame = pd.DataFrame(
        {
            "ListOfAllPropertyUseTypes": [
                "Office, Data Center",
                "Office, Parking",
                "Restaurant, Office",
                "Data Center",
                np.nan,
                "Fitness Center/Health Club/Gym, Office",
            ]
        }
    )
    flags = UseTypeFlags(min_count=2).fit(frame)
    assert flags.use_types_ == ["DATA CENTER", "OFFICE"]
    out = flags.transform(frame)
    assert out["HasUse_DATA_CENTER"].tolist() == [1.0, 0.0, 0.0, 1.0, 0.0, 0.0]
    assert out["HasUse_OFFICE"].tolist() == [1.0, 1.0, 1.0, 0.0, 0.0, 1.0]
    assert list(out.columns) == list(flags.get_feature_names_out())
    assert "ListOfAllPropertyUseTypes" in out  # later steps still read the listing


def test_flag_names_are_safe_for_every_learner() -> None:
    assert flag_name("Fitness Center/Health Club/Gym") == "HasUse_FITNESS_CENTER_HEALTH_CLUB_GYM"
    assert flag_name("Other - Lodging/Residential") == "HasUse_OTHER_LODGING_RESIDENTIAL"


def test_scorable_use_types_match_whatever_the_spelling() -> None:
    # The frame as CleanBuildings leaves it: categories already normalised.
    use_types = ["OFFICE", "SUPERMARKET/GROCERY STORE", "SELF-STORAGE FACILITY", np.nan]
    frame = pd.DataFrame({"LargestPropertyUseType": use_types})
    before = frame.copy()
    flags = ScorableUseType(use_types=["office ", "Supermarket / Grocery Store"])
    out = flags.fit(frame).transform(frame)
    assert out["ScorableUseType"].tolist() == [1.0, 1.0, 0.0, 0.0]
    pd.testing.assert_frame_equal(frame, before)
    assert list(flags.get_feature_names_out()) == [*frame.columns, "ScorableUseType"]
    assert clone(flags).get_params() == flags.get_params()
    with pytest.raises(NotFittedError):
        ScorableUseType(use_types=["Office"]).transform(frame)


def _respelled() -> pd.DataFrame:
    """One use type in three spellings that share a flag name, and a second use type in one."""
    return pd.DataFrame(
        {
            "ListOfAllPropertyUseTypes": [
                "Office, Retail Store",
                "Retail-Store",
                "Office",
                "retail  store, Office",
                "Office, Retail-Store",
                np.nan,
            ]
        }
    )


def test_spellings_of_one_use_type_are_one_flag() -> None:
    frame = _respelled()
    # No spelling is listed three times, the use type is: it is counted once per building, by its flag name.
    flags = UseTypeFlags(min_count=3).fit(frame)
    assert flags.use_types_ == ["OFFICE", "RETAIL-STORE"]  # the most listed spelling names the use type
    out = flags.transform(frame)
    assert list(out.columns) == ["ListOfAllPropertyUseTypes", "HasUse_OFFICE", "HasUse_RETAIL_STORE"]
    assert list(flags.get_feature_names_out()) == list(out.columns)
    assert out["HasUse_RETAIL_STORE"].tolist() == [1.0, 1.0, 0.0, 1.0, 1.0, 0.0]
    assert out["HasUse_OFFICE"].tolist() == [1.0, 0.0, 1.0, 1.0, 1.0, 0.0]


def test_respelled_flags_survive_clone_and_pandas_output() -> None:
    frame = _respelled()
    fitted = UseTypeFlags(min_count=1).fit(frame)
    expected = fitted.transform(frame)
    pandas_out = clone(fitted).set_output(transform="pandas").fit_transform(frame)
    pd.testing.assert_frame_equal(pandas_out, expected)
    assert pandas_out.columns.is_unique


def test_a_model_fitted_with_one_flag_per_spelling_still_gives_one_column_per_flag() -> None:
    # What a model fitted before spellings were merged holds: its transform must still name each flag once.
    frame = _respelled()
    fitted = UseTypeFlags(min_count=1).fit(frame)
    fitted.use_types_ = ["OFFICE", "RETAIL  STORE", "RETAIL STORE", "RETAIL-STORE"]
    out = fitted.set_output(transform="pandas").transform(frame)
    assert list(out.columns) == ["ListOfAllPropertyUseTypes", "HasUse_OFFICE", "HasUse_RETAIL_STORE"]
    assert out["HasUse_RETAIL_STORE"].tolist() == [1.0, 1.0, 0.0, 1.0, 1.0, 0.0]
