"""Building the training schema must not change what scoring requires."""

from __future__ import annotations

import pandas as pd

from building_energy.data.schema import raw_buildings_schema, row_errors


def test_a_training_schema_leaves_the_prediction_schema_as_declared() -> None:
    raw_buildings_schema(for_training=True)
    prediction = raw_buildings_schema(for_training=False)
    assert not prediction.columns["OSEBuildingID"].required
    assert prediction.columns["OSEBuildingID"].nullable
    assert not prediction.columns["Neighborhood"].required
    row = pd.DataFrame({"PrimaryPropertyType": ["Hotel"], "PropertyGFATotal": [88434.0], "YearBuilt": [1927.0]})
    assert row_errors(row) == {}
