"""Batch: a CSV in the City's format in, one prediction (or the reason there is none) per row out."""

from __future__ import annotations

import logging
from pathlib import Path

import streamlit as st

from building_energy.config import get_config
from building_energy.dashboard import analysis, shared
from building_energy.data.columns import PREDICTION_REQUIRED
from building_energy.data.schema import DataValidationError
from building_energy.models.predict import AbsentColumnsError

logger = logging.getLogger(__name__)

limit_mb = get_config().dashboard.max_upload_mb
loaded = shared.require_model()

st.title("Score a file of buildings")
st.caption(
    f"Upload a CSV in the City's benchmarking format (any export; at least the columns "
    f"{', '.join(f'`{c}`' for c in PREDICTION_REQUIRED)}), up to {limit_mb} MB. Each row gets a prediction or "
    "the reason it has none, exactly as `building-energy predict` writes them."
)
upload = st.file_uploader("Buildings CSV", type=["csv"], max_upload_size=limit_mb, key="upload")
allow_absent = st.checkbox(
    "Score even if the file has no column for some field the model reads (it then counts as unknown in every row)",
    key="allow_absent",
)
if upload is not None:
    result: analysis.BatchResult | None = None
    try:
        result = shared.scored_upload(
            loaded, shared.model_key(loaded), upload.getvalue(), upload.name, limit_mb * 1024 * 1024, allow_absent
        )
    except AbsentColumnsError as error:
        st.error(f"This file cannot be scored: {error} (tick the box above).")
    except DataValidationError as error:
        st.error(f"This file cannot be scored: {error}")
    except Exception as error:  # an uploaded file is untrusted input: report it, never show a traceback
        logger.exception("scoring %s failed", upload.name)
        st.error(f"This file cannot be scored: {type(error).__name__}: {error}")
    if result is not None:
        failed = result.failed
        scored = len(result.predictions) - len(failed)
        st.success(f"{scored} of {len(result.predictions)} rows scored, {len(failed)} could not be.")
        st.download_button(
            "Download the predictions (CSV)",
            data=result.csv,
            file_name=f"{Path(upload.name).stem}-predictions.csv",
            mime="text/csv",
            key="download",
            on_click="ignore",  # a download needs no rerun (it would redraw the page for nothing)
        )
        st.dataframe(result.predictions, hide_index=True)
        if len(failed):
            st.subheader("Rows that could not be scored")
            st.dataframe(failed, hide_index=True)
