"""Data: the City's non-residential buildings on a map of Seattle, coloured by energy intensity, with distributions."""

from __future__ import annotations

import altair as alt
import numpy as np
import streamlit as st

from building_energy.dashboard import analysis, shared
from building_energy.dashboard.analysis import EUI_COLUMN

data_path = shared.buildings_path()
buildings = shared.require_buildings(data_path)
types = analysis.category_choices(buildings["PrimaryPropertyType"])
neighborhoods = analysis.category_choices(buildings["Neighborhood"])
view = analysis.data_view(buildings, types, neighborhoods)

st.title("The City's buildings")
st.caption(
    f"{len(view)} non-residential buildings with a positive site energy use in `{data_path}`. "
    "Energy intensity (EUI) is site energy use / total floor area, in kBtu per sq ft."
)
left, right = st.columns(2)
chosen_types = left.multiselect("Property types", list(types.values()), placeholder="all", key="types")
chosen_places = right.multiselect("Neighborhoods", list(neighborhoods.values()), placeholder="all", key="places")
shown = analysis.filter_view(view, chosen_types, chosen_places)
if shown.empty:
    st.info("No building matches these filters.")
    st.stop()

columns = st.columns(3)
columns[0].metric("Buildings", f"{len(shown):,}")
columns[1].metric("Median EUI", f"{shown[EUI_COLUMN].median():,.1f} kBtu/sq ft")
columns[2].metric("Total site energy", f"{shown['site_energy_kbtu'].sum() / 1e9:,.2f} billion kBtu")

# No basemap: tiles would come from the internet. The buildings themselves draw the city's outline.
eui_scale = alt.Scale(type="log", scheme="inferno", reverse=True)
located = shown.dropna(subset=["Latitude", "Longitude"])
city_map = (
    alt.Chart(located)
    .mark_circle(size=30, opacity=0.75)
    .encode(
        longitude="Longitude:Q",
        latitude="Latitude:Q",
        color=alt.Color(f"{EUI_COLUMN}:Q", scale=eui_scale, title="EUI (kBtu/sq ft)"),
        tooltip=[
            "PropertyName",
            "property_type",
            "neighborhood",
            alt.Tooltip(f"{EUI_COLUMN}:Q", format=",.1f", title="EUI"),
            alt.Tooltip("site_energy_kbtu:Q", format=",.0f", title="kBtu"),
        ],
    )
    .project(type="mercator")
    .properties(height=620)
)
st.subheader("Energy intensity on the map")
st.altair_chart(city_map, width="stretch")

st.subheader("Distributions")
dist_left, dist_right = st.columns(2)
with dist_left:
    histogram = (
        alt.Chart(shown.assign(log10_eui=np.log10(shown[EUI_COLUMN])))
        .mark_bar()
        .encode(
            x=alt.X("log10_eui:Q", bin=alt.Bin(maxbins=40), title="log10 EUI (kBtu/sq ft)"),
            y=alt.Y("count():Q", title="buildings"),
        )
    )
    st.altair_chart(histogram, width="stretch")
    years = (
        alt.Chart(shown)
        .mark_bar()
        .encode(
            x=alt.X("YearBuilt:Q", bin=alt.Bin(step=10), title="year built", axis=alt.Axis(format="d")),
            y=alt.Y("count():Q", title="buildings"),
        )
    )
    st.altair_chart(years, width="stretch")
with dist_right:
    by_median = shown.groupby("property_type")[EUI_COLUMN].median().sort_values().index.tolist()
    by_type = (
        alt.Chart(shown)
        .mark_boxplot(extent="min-max")
        .encode(
            x=alt.X(f"{EUI_COLUMN}:Q", scale=alt.Scale(type="log"), title="EUI (kBtu/sq ft)"),
            y=alt.Y("property_type:N", title=None, sort=by_median, axis=alt.Axis(labelLimit=300)),
        )
    )
    st.altair_chart(by_type, width="stretch")

with st.expander("The buildings shown"):
    st.dataframe(shown, hide_index=True)
