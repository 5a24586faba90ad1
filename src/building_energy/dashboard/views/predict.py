"""Predict: one building, typed in or started from an existing one, scored like ``building-energy predict``."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd
import streamlit as st

from building_energy.config import get_config
from building_energy.dashboard import analysis, shared
from building_energy.models.loading import LoadedModel
from building_energy.models.predict import ERROR_COLUMN, predict_frame

logger = logging.getLogger(__name__)

CATEGORY_FIELDS = {
    "PrimaryPropertyType": "Property type",
    "LargestPropertyUseType": "Largest use",
    "BuildingType": "Building type",
    "Neighborhood": "Neighborhood",
}
AREA_FIELDS = {
    "PropertyGFATotal": "Total floor area (sq ft)",
    "PropertyGFABuilding(s)": "Building floor area (sq ft)",
    "PropertyGFAParking": "Parking floor area (sq ft)",
    "LargestPropertyUseTypeGFA": "Largest use floor area (sq ft, optional)",
}
BUILDING_FIELDS = {
    "YearBuilt": ("Year built", "%.0f", 1.0),
    "NumberofFloors": ("Floors", "%.0f", 1.0),
    "NumberofBuildings": ("Buildings on the property", "%.0f", 1.0),
    "ENERGYSTARScore": ("ENERGY STAR score (optional, 1-100)", "%.0f", 1.0),
    "Latitude": ("Latitude (optional)", "%.5f", 0.001),
    "Longitude": ("Longitude (optional)", "%.5f", 0.001),
}
# Fields left empty for a new building: the model treats them as unknown.
OPTIONAL_FIELDS = ("LargestPropertyUseTypeGFA", "ENERGYSTARScore", "Latitude", "Longitude")
# The form as it was at its last Predict press. Streamlit forgets a widget's value once a page without it
# runs, so coming back from another page refills the form (and its result) from here.
LAST_SUBMITTED = "last_submitted"


def _number_default(
    column: str, base: pd.Series | None, training: pd.DataFrame, kept: dict[str, Any] | None
) -> float | None:
    if kept is not None:
        return kept[column]
    if base is not None:
        value = base.get(column)
        return None if value is None or pd.isna(value) else float(value)
    if column in OPTIONAL_FIELDS:
        return None
    if column == "PropertyGFAParking":
        return 0.0
    if column == "PropertyGFABuilding(s)":
        column = "PropertyGFATotal"  # a new building: all of its median floor area is building
    return float(training[column].median())


def _category_default(
    column: str, base: pd.Series | None, training: pd.DataFrame, choices: dict[str, str], kept: dict[str, Any] | None
) -> int | None:
    if kept is not None:
        value = kept[column]
    elif base is not None:
        value = analysis.display_category(base.get(column), choices)
    else:
        value = analysis.most_common(training[column], choices)
    options = list(choices.values())
    return options.index(value) if value in options else None


def _show_result(loaded: LoadedModel, row: pd.DataFrame, output: pd.DataFrame, training: pd.DataFrame) -> None:
    error = str(output[ERROR_COLUMN].iloc[0])
    if error:
        st.error(f"This building cannot be scored: {error}")
        return
    unit = shared.unit(loaded.metadata)
    predicted = analysis.predicted_value(output)
    area = float(row["PropertyGFATotal"].iloc[0])
    property_type = str(row["PrimaryPropertyType"].iloc[0])
    peers = analysis.similar_buildings(training, property_type, analysis.target_column(loaded.metadata))

    st.subheader("Prediction")
    columns = st.columns(4)
    delta = f"{predicted / peers.median_target - 1:+.0%} vs similar" if peers else None
    columns[0].metric("Predicted", analysis.amount_text(predicted, unit), delta=delta, delta_color="off")
    columns[1].metric("Predicted per sq ft", analysis.per_sqft_text(predicted / area, unit))
    if peers:
        help_text = f"Median of the {peers.count} '{property_type}' buildings the model was trained on."
        columns[2].metric(
            f"Median of {peers.count} similar", analysis.amount_text(peers.median_target, unit), help=help_text
        )
        columns[3].metric(
            "Median per sq ft of similar", analysis.per_sqft_text(peers.median_per_sqft, unit), help=help_text
        )
    else:
        columns[2].caption(f"No '{property_type}' building in the training data to compare with.")

    interval = analysis.prediction_interval(output)
    if interval:
        level = get_config().intervals.level
        st.metric(
            "Likely range",
            analysis.range_text(*interval, unit),
            help=f"The model's {level:.0%} prediction interval (conformal, from its out-of-fold errors).",
        )
    try:
        drivers = analysis.top_drivers(loaded, row, get_config().dashboard.top_drivers)
    except Exception as failure:  # an explanation is a bonus: its failure must not hide the prediction
        logger.warning("explain() failed: %s", failure)
        drivers = None
        st.caption(f"The drivers of this prediction are unavailable: {failure}")
    if drivers is not None:
        st.markdown("**Top drivers of this prediction**")
        labels = {
            "factor": st.column_config.NumberColumn("factor on the estimate", format="×%.3f"),
            # The factor of a field left empty is the effect of its being unknown, not of a value.
            "unknown": st.column_config.CheckboxColumn("not given"),
        }
        st.dataframe(drivers, hide_index=True, column_config=labels)
    with st.expander("The record sent to the model"):
        st.dataframe(row.T.rename(columns={0: "value"}).astype(str))


config = get_config()
loaded = shared.require_model()
buildings = shared.require_buildings(
    analysis.training_data_path(loaded.metadata, config), analysis.target_column(loaded.metadata)
)
training = analysis.training_rows(buildings, loaded.metadata)
choices = {column: analysis.category_choices(buildings[column]) for column in CATEGORY_FIELDS}

st.title("Predict one building")
st.caption(
    "Enter what the City knows about a building, or start from one it already lists. The prediction is "
    "computed only when you press **Predict**, by the same code as `building-energy predict`."
)
labels = analysis.building_labels(buildings)
last = st.session_state.get(LAST_SUBMITTED)
prefill = st.selectbox(
    "Start from an existing building (optional)",
    options=list(labels),
    index=list(labels).index(last["prefill"]) if last and last["prefill"] in labels else None,
    format_func=labels.__getitem__,
    placeholder="Type a name or an OSEBuildingID…",
    key="prefill",
)
base = analysis.building_by_id(buildings, prefill) if prefill is not None else None
# Widget keys carry the chosen building, so picking another one refills the form with its values.
suffix = "new" if prefill is None else str(prefill)
kept = last["values"] if last and last["suffix"] == suffix else None

values: dict[str, Any] = {}
with st.form("building"):
    left, middle, right = st.columns(3)
    with left:
        for column, label in CATEGORY_FIELDS.items():
            values[column] = st.selectbox(
                label,
                options=list(choices[column].values()),
                index=_category_default(column, base, training, choices[column], kept),
                placeholder="unknown",
                key=f"{column}@{suffix}",
            )
    with middle:
        for column, label in AREA_FIELDS.items():
            values[column] = st.number_input(
                label,
                min_value=0.0,
                value=_number_default(column, base, training, kept),
                step=1000.0,
                format="%.0f",
                key=f"{column}@{suffix}",
            )
    with right:
        for column, (label, number_format, step) in BUILDING_FIELDS.items():
            values[column] = st.number_input(
                label,
                value=_number_default(column, base, training, kept),
                step=step,
                format=number_format,
                key=f"{column}@{suffix}",
            )
    submitted = st.form_submit_button("Predict", type="primary", key="predict")

if submitted:
    row = analysis.building_row(values, base)
    try:
        output = predict_frame(loaded, row)
    except Exception as failure:  # e.g. a model pickled by an older version of the package: say so, no traceback
        logger.exception("the model failed on %s", row.to_dict("records"))
        st.error(f"The model could not score this building ({type(failure).__name__}: {failure}).")
        st.stop()
    # Kept for the session (and for tests): the record and exactly what predict_frame returned for it.
    st.session_state["prediction"] = {"row": row, "output": output, "model": shared.model_key(loaded)}
    st.session_state[LAST_SUBMITTED] = {"prefill": prefill, "suffix": suffix, "values": dict(values)}
    _show_result(loaded, row, output, training)
else:
    # Back from another page: the last result, if it is for the building the form shows and the same model.
    shown = st.session_state.get("prediction")
    row = analysis.building_row(values, base)
    if shown and shown.get("model") == shared.model_key(loaded) and shown["row"].equals(row):
        _show_result(loaded, shown["row"], shown["output"], training)
