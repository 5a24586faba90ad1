"""Batch: a CSV in the City's format in, one prediction (or the reason there is none) per row out."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import streamlit as st

from building_energy.config import get_config
from building_energy.dashboard import analysis, shared
from building_energy.data.columns import PREDICTION_REQUIRED
from building_energy.data.schema import DataValidationError
from building_energy.models.predict import AbsentColumnsError

logger = logging.getLogger(__name__)

# The last file uploaded here. Streamlit forgets an uploader's file once a page without it runs, and cannot
# put a file back into one, so coming back from another page shows this file (and its cached result) instead.
LAST_UPLOAD = "last_upload"


def _forget_upload() -> None:
    st.session_state.pop(LAST_UPLOAD, None)


limit_mb = get_config().dashboard.max_upload_mb
loaded = shared.require_model()

st.title("Score a file of buildings")
st.caption(
    f"Upload a CSV in the City's benchmarking format (any export; at least the columns "
    f"{', '.join(f'`{c}`' for c in PREDICTION_REQUIRED)}), up to {limit_mb} MB. Each row gets a prediction or "
    "the reason it has none, exactly as `building-energy predict` writes them."
)
remembered: shared.RememberedUpload | None = st.session_state.get(LAST_UPLOAD)
back_from_another_page = "upload" not in st.session_state
if back_from_another_page and remembered is not None:
    st.session_state["allow_absent"] = remembered.allow_absent
upload = st.file_uploader("Buildings CSV", type=["csv"], max_upload_size=limit_mb, key="upload")
allow_absent = st.checkbox(
    "Score even if the file has no column for some field the model reads (it then counts as unknown in every row)",
    key="allow_absent",
)
source: shared.RememberedUpload | None = None
if upload is not None:
    source = shared.RememberedUpload(upload.name, upload.getvalue(), allow_absent, in_uploader=True)
elif remembered is not None and (back_from_another_page or not remembered.in_uploader):
    source = replace(remembered, allow_absent=allow_absent, in_uploader=False)
    st.info(f"Showing `{source.name}`, uploaded before you left this page. Upload a file to replace it.")
    st.button("Forget this file", key="forget_upload", on_click=_forget_upload)
# Otherwise the user took the file out of the uploader: it is forgotten.
st.session_state[LAST_UPLOAD] = source

if source is not None:
    result: analysis.BatchResult | None = None
    try:
        result = shared.scored_upload(
            loaded, shared.model_key(loaded), source.data, source.name, limit_mb * 1024 * 1024, source.allow_absent
        )
    except AbsentColumnsError as error:
        st.error(f"This file cannot be scored: {error} (tick the box above).")
    except DataValidationError as error:
        st.error(f"This file cannot be scored: {error}")
    except Exception as error:  # an uploaded file is untrusted input: report it, never show a traceback
        logger.exception("scoring %s failed", source.name)
        st.error(f"This file cannot be scored: {type(error).__name__}: {error}")
    if result is not None:
        failed = result.failed
        scored = len(result.predictions) - len(failed)
        st.success(f"{scored} of {len(result.predictions)} rows scored, {len(failed)} could not be.")
        st.download_button(
            "Download the predictions (CSV)",
            data=result.csv,
            file_name=f"{Path(source.name).stem}-predictions.csv",
            mime="text/csv",
            key="download",
            on_click="ignore",  # a download needs no rerun (it would redraw the page for nothing)
        )
        st.dataframe(result.predictions, hide_index=True)
        if len(failed):
            st.subheader("Rows that could not be scored")
            st.dataframe(failed, hide_index=True)
