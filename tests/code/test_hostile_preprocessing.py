"""Property-based tests: cleaning and feature engineering survive any value a City record can hold."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from building_energy.data.columns import (
    BUILDING_ID,
    CATEGORICAL_INPUTS,
    MODEL_INPUTS,
    MULTIFAMILY_BUILDING_TYPES,
    TARGET_KBTU,
    TARGET_LOG,
)
from building_energy.features.engineer import BuildingFeatures
from building_energy.preprocessing.preprocessor import preprocess_df
from building_energy.preprocessing.transformers import CleanBuildings
from tests.hostile import fuzz, hostile_rows


@pytest.fixture(scope="module")
def fitted_steps(clean_buildings: pd.DataFrame) -> tuple[CleanBuildings, BuildingFeatures]:
    clean = CleanBuildings().fit(clean_buildings)
    features = BuildingFeatures().fit(clean.transform(clean_buildings))
    return clean, features


def _numeric(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.select_dtypes(include="number")


@fuzz(100)
@given(data=st.data())
def test_clean_buildings_types_every_cell_and_never_lets_inf_through(
    fitted_steps: tuple[CleanBuildings, BuildingFeatures], sample_buildings: pd.DataFrame, data: st.DataObject
) -> None:
    clean, _ = fitted_steps
    frame = hostile_rows(data, sample_buildings, wrong_types=True)

    out = clean.transform(frame)

    assert list(out.columns) == clean.output_columns_
    assert out.index.equals(frame.index)
    numeric = out[[c for c in out.columns if c not in (*CATEGORICAL_INPUTS, "ListOfAllPropertyUseTypes")]]
    assert (numeric.dtypes == "float64").all()
    assert not np.isinf(numeric.to_numpy()).any()
    for column in CATEGORICAL_INPUTS:
        for value in out[column]:
            assert (isinstance(value, float) and np.isnan(value)) or (
                isinstance(value, str) and value == value.strip().upper() and value != ""
            ), f"{column}: {value!r}"


@fuzz(100)
@given(data=st.data())
def test_engineered_features_are_finite_or_missing(
    fitted_steps: tuple[CleanBuildings, BuildingFeatures], sample_buildings: pd.DataFrame, data: st.DataObject
) -> None:
    clean, features = fitted_steps
    frame = hostile_rows(data, sample_buildings, wrong_types=True)

    out = features.transform(clean.transform(frame))

    assert len(out) == len(frame)
    assert list(out.columns) == features.output_columns_
    numeric = _numeric(out)
    assert not np.isinf(numeric.to_numpy(dtype=float)).any(), numeric.columns[np.isinf(numeric).any()].tolist()


@fuzz(100)
@given(data=st.data())
def test_preprocess_df_keeps_only_usable_training_rows(raw_buildings: pd.DataFrame, data: st.DataObject) -> None:
    base = raw_buildings.sample(200, random_state=0).reset_index(drop=True)
    columns = (BUILDING_ID, "BuildingType", TARGET_KBTU, "PropertyGFATotal", *MODEL_INPUTS)
    frame = hostile_rows(data, base, max_rows=6, columns=columns)
    for required in (BUILDING_ID, "BuildingType", TARGET_KBTU, "PropertyGFATotal"):
        if required not in frame:
            frame[required] = base[required].iloc[: len(frame)].to_numpy()

    clean = preprocess_df(frame)

    target = clean[TARGET_KBTU].astype(float)
    assert (np.isfinite(target) & (target > 0)).all()
    assert np.isfinite(clean[TARGET_LOG]).all()
    assert not np.isinf(clean["PropertyGFATotal_log"]).any()
    assert not clean[BUILDING_ID].dropna().duplicated().any()
    building_type = clean["BuildingType"].astype("string").str.strip().str.upper()
    assert not building_type.isin([t.upper() for t in MULTIFAMILY_BUILDING_TYPES]).any()
