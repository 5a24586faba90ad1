"""Engineered features."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from building_energy.features.engineer import add_building_age, add_geographical_features, haversine_distance


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
