"""Entry point of ``streamlit run`` (``building-energy dashboard``): the page frame and the navigation."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

APP_TITLE = "Seattle building energy"
VIEWS = Path(__file__).with_name("views")

PREDICT = st.Page(VIEWS / "predict.py", title="Predict", icon=":material/calculate:", url_path="predict")


def _open_predict() -> None:
    # The root opens Predict at its own address: the menu marks it, and /predict is a link that works.
    st.switch_page(PREDICT)


st.set_page_config(page_title=APP_TITLE, page_icon=":material/bolt:", layout="wide")
page = st.navigation(
    [
        st.Page(_open_predict, title="Start", url_path="start", default=True, visibility="hidden"),
        PREDICT,
        st.Page(VIEWS / "batch.py", title="Batch", icon=":material/table_view:", url_path="batch"),
        st.Page(VIEWS / "model.py", title="Model", icon=":material/insights:", url_path="model"),
        st.Page(VIEWS / "data.py", title="Data", icon=":material/map:", url_path="data"),
    ]
)
st.sidebar.caption(f"{APP_TITLE}: predicted annual site energy of Seattle's non-residential buildings.")
page.run()
