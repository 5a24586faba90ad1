"""Model: what was recorded at training, and how the model does on its own test split."""

from __future__ import annotations

import logging

import altair as alt
import pandas as pd
import streamlit as st

from building_energy.config import get_config
from building_energy.dashboard import analysis, shared
from building_energy.data.schema import DataValidationError

logger = logging.getLogger(__name__)

HEADLINE_METRICS = {"mape": "MAPE", "median_ape": "Median APE", "r2": "R²", "r2_log": "R² (log)"}

config = get_config()
loaded = shared.require_model()
metadata = loaded.metadata
unit = shared.unit(metadata)
versions = metadata.get("versions", {})

st.title("The model")
sha256 = str(metadata.get("model_sha256", ""))
about = {
    "Model version": metadata.get("model_version") or (f"sha256:{sha256[:12]}" if sha256 else "unknown"),
    "Trained at": metadata.get("trained_at", "unknown"),
    "Source": f"`{loaded.source}`",
    "Package version": versions.get("building-energy", "unknown"),
    "Git commit": f"`{metadata.get('git_commit', 'unknown')}`",
    "Profile": metadata.get("profile", "unknown"),
    "Target": f"{analysis.target_name(metadata)} ({unit})",
    "Uses the ENERGY STAR score": metadata.get("use_energy_star", "unknown"),
    "Training / test buildings": f"{metadata.get('n_train', '?')} / {metadata.get('n_test', '?')}",
}
st.markdown("\n".join(["| This model | |", "| --- | --- |", *(f"| {k} | {v} |" for k, v in about.items())]))

metrics = metadata.get("metrics", {})
test_metrics = metrics.get("test", {})
st.subheader("Test metrics (recorded at training)")
shown = [k for k in HEADLINE_METRICS if isinstance(test_metrics.get(k), int | float)]
for column, key in zip(st.columns(max(len(shown), 1)), shown, strict=False):
    column.metric(HEADLINE_METRICS[key], f"{test_metrics[key]:.3f}")
table = analysis.scalar_metrics(metrics)
if not table.empty:
    with st.expander("Every recorded metric, train and test"):
        st.dataframe(table)

data_path = str(analysis.training_data_path(metadata, config))
shared.require_buildings(analysis.training_data_path(metadata, config), analysis.target_column(metadata))
key = shared.model_key(loaded)
try:
    scored = shared.holdout(loaded, key, data_path)[2]
except DataValidationError as error:  # the data file no longer holds the recorded test buildings
    st.error(f"The test split cannot be rebuilt from `{data_path}`: {error}")
    st.stop()
except Exception as error:  # e.g. a model pickled by an older version of the package: say so, no traceback
    logger.exception("the model failed on its test split")
    st.error(f"The model could not score its test buildings ({type(error).__name__}: {error}).")
    st.stop()

st.subheader("Predicted vs actual, test buildings")
st.caption(f"{len(scored)} buildings recomputed from `{data_path}`; log axes, the line is a perfect prediction.")
low = float(scored[["actual", "predicted"]].min().min())
high = float(scored[["actual", "predicted"]].max().max())
log_scale = alt.Scale(type="log", domain=[low, high])
points = (
    alt.Chart(scored)
    .mark_circle(opacity=0.6)
    .encode(
        x=alt.X("actual:Q", scale=log_scale, title=f"actual ({unit})"),
        y=alt.Y("predicted:Q", scale=log_scale, title=f"predicted ({unit})"),
        color=alt.Color("PrimaryPropertyType:N", legend=None),
        tooltip=[
            "OSEBuildingID",
            "PrimaryPropertyType",
            alt.Tooltip("actual", format=",.0f"),
            alt.Tooltip("predicted", format=",.0f"),
        ],
    )
)
diagonal = (
    alt.Chart(pd.DataFrame({"actual": [low, high], "predicted": [low, high]}))
    .mark_line(color="gray")
    .encode(x="actual:Q", y="predicted:Q")
)
st.altair_chart(points + diagonal, width="stretch")

st.subheader("Residuals by property type")
st.caption("log10(predicted / actual): 0 is exact, +0.3 is twice the actual, −0.3 half.")
order = scored.groupby("PrimaryPropertyType")["log10_ratio"].median().sort_values().index.tolist()
residuals = (
    alt.Chart(scored)
    .mark_boxplot(extent="min-max")
    .encode(
        x=alt.X("log10_ratio:Q", title="log10(predicted / actual)"),
        y=alt.Y("PrimaryPropertyType:N", sort=order, title=None, axis=alt.Axis(labelLimit=300)),
    )
)
st.altair_chart(residuals, width="stretch")

left, right = st.columns(2)
with left:
    st.subheader("Feature importance")
    repeats = config.dashboard.importance_repeats
    importances = shared.importance(loaded, key, data_path, repeats, config.random_state)
    st.caption(f"Rise of the test MAE of log({unit}) when one input is shuffled ({repeats} shuffles each).")
    bars = (
        alt.Chart(importances)
        .mark_bar()
        .encode(
            x=alt.X("importance:Q", title="MAE rise (log scale)"),
            y=alt.Y("feature:N", sort="-x", title=None, axis=alt.Axis(labelLimit=300)),
            tooltip=["feature", alt.Tooltip("importance", format=".4f"), alt.Tooltip("std", format=".4f")],
        )
    )
    st.altair_chart(bars, width="stretch")
with right:
    st.subheader("Effect of the ENERGY STAR score")
    if metadata.get("use_energy_star") is False:
        st.info("This model was trained without the ENERGY STAR score: the score does not change its predictions.")
    effect = shared.energy_star(loaded, key, data_path, tuple(config.dashboard.energy_star_grid))
    st.caption("Median over the test buildings of the prediction with the score set, over the prediction without it.")
    line = (
        alt.Chart(effect)
        .mark_line(point=True)
        .encode(
            x=alt.X("ENERGYSTARScore:Q", title="ENERGY STAR score"),
            y=alt.Y(
                "relative_to_unknown:Q", title="prediction / prediction without score", scale=alt.Scale(zero=False)
            ),
            tooltip=["ENERGYSTARScore", alt.Tooltip("relative_to_unknown", format=".3f")],
        )
    )
    st.altair_chart(line, width="stretch")
