"""Engineered features."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.pipeline import make_pipeline

from building_energy.config import get_config
from building_energy.data.columns import MODEL_INPUTS, TARGET_KBTU
from building_energy.features.energy_star import SCORABLE_COLUMN
from building_energy.features.engineer import add_building_age, add_geographical_features, haversine_distance
from building_energy.models.explain import LOCATION, USE_TYPES, input_field
from building_energy.models.pipeline import make_preprocessor


def test_haversine_matches_a_known_distance() -> None:
    # Space Needle to Pike Place Market: about 1.6 km.
    distance = haversine_distance(47.6205, -122.3493, 47.6097, -122.3422)
    assert distance == pytest.approx(1.32, abs=0.05)
    assert haversine_distance(47.6, -122.3, 47.6, -122.3) == pytest.approx(0.0)


def test_building_age_is_never_negative() -> None:
    frame = pd.DataFrame({"YearBuilt": [1900.0, 2016.0, 2020.0, np.nan]})
    aged = add_building_age(frame, 2016)
    assert aged["BuildingAge"].tolist()[:3] == [116.0, 0.0, 0.0]
    assert np.isnan(aged["BuildingAge"].iloc[3])
    assert "BuildingAge" not in frame


def test_geographical_features_do_not_mutate_input() -> None:
    frame = pd.DataFrame({"Latitude": [47.6097, 47.7], "Longitude": [-122.3422, -122.3]})
    before = frame.copy()
    out = add_geographical_features(frame, 47.6097, -122.3422)
    pd.testing.assert_frame_equal(frame, before)
    assert out["DistanceToDowntownKm"].iloc[0] == pytest.approx(0.0)
    assert out["DistanceToDowntownKm"].iloc[1] > 9


@pytest.mark.parametrize("use_energy_star", [True, False])
def test_every_model_feature_is_explained_as_a_city_field(clean_buildings: pd.DataFrame, use_energy_star: bool) -> None:
    """An explanation names what a user can change: a City field or a documented group of them, never an
    engineered column such as ``ScorableUseType``."""
    buildings = clean_buildings.head(300)
    steps = make_preprocessor(get_config(), use_energy_star=use_energy_star)
    features = make_pipeline(*(step for _, step in steps)).fit(buildings, np.log1p(buildings[TARGET_KBTU]))
    fields = {input_field(name) for name in features.get_feature_names_out()}
    assert fields <= {*MODEL_INPUTS, LOCATION, USE_TYPES}, fields - {*MODEL_INPUTS, LOCATION, USE_TYPES}
    assert input_field(SCORABLE_COLUMN) == USE_TYPES
