"""Driving the real app file with ``streamlit.testing.v1.AppTest``, as ``streamlit run`` would run it."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from building_energy.config import get_config
from building_energy.dashboard import APP_FILE

PAGES = {
    "Predict": "views/predict.py",
    "Batch": "views/batch.py",
    "Model": "views/model.py",
    "Data": "views/data.py",
}
# A script run loads the model and the data the first time; on a busy 2-core runner that is slow, not stuck.
APP_TIMEOUT = 600.0


def configure(monkeypatch: pytest.MonkeyPatch, **settings: str) -> None:
    """Set ``BE_*`` variables and make the next ``get_config()`` (the app's) read them."""
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    get_config.cache_clear()


def open_page(page: str) -> AppTest:
    """Run the app, then switch to ``page`` (one of ``PAGES``; Predict is the default page)."""
    app = AppTest.from_file(str(APP_FILE), default_timeout=APP_TIMEOUT).run()
    if page != "Predict":
        app.switch_page(PAGES[page]).run()
    return app


def texts(elements: object) -> list[str]:
    """The values of a sequence of AppTest elements (``app.error``, ``app.caption``...) as strings."""
    return [str(element.value) for element in elements]  # type: ignore[attr-defined]


def metric(app: AppTest, label: str, exact: bool = False) -> str:
    """The displayed value of the metric labelled ``label`` (or whose label starts with it)."""
    found = [m.value for m in app.metric if (m.label == label if exact else m.label.startswith(label))]
    assert found, f"no metric {label!r} among {[m.label for m in app.metric]}"
    return str(found[0])
