"""End to end: `building-energy dashboard` serves the app on loopback and a headless Chromium renders it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from building_energy.loopback import answers, free_port, stop_process, wait_until_ready
from building_energy.models.train import TrainingResult
from tests.browser import CHROMIUM, Chromium

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parents[2]
REPORTS = REPO_ROOT / "reports"
SCREENSHOT = REPORTS / "dashboard.png"
APP_TITLE = "Seattle building energy"
# Generous: a busy 2-core runner loads the model and the data before the first page can render.
SERVER_START_SECONDS = 300.0
RENDER_SECONDS = 600.0

_RENDERED_CHARTS = """
Array.from(document.querySelectorAll('[data-testid="stVegaLiteChart"]'))
  .filter(chart => Array.from(chart.querySelectorAll('canvas, svg'))
                        .some(drawn => drawn.getBoundingClientRect().height > 50))
  .length
"""
_FORM_FIELDS = 'document.querySelectorAll(\'[data-testid="stForm"] [data-testid="stNumberInput"]\').length'
# Streamlit shows its status widget ("Running...") while the script runs.
_IDLE = "document.querySelector('[data-testid=\"stStatusWidget\"]') === null"
_SUBMIT = "document.querySelector('[data-testid=\"stFormSubmitButton\"] button')"
_METRICS = "Array.from(document.querySelectorAll('[data-testid=\"stMetricValue\"]')).map(m => m.innerText).join('|')"
_HEADING = "document.querySelector('h1') ? document.querySelector('h1').innerText : ''"


@pytest.fixture
def dashboard_url(trained: TrainingResult, data_path: Path, tmp_path: Path) -> Iterator[str]:
    """``building-energy dashboard`` on a free loopback port, with the session model; stopped afterwards."""
    port = free_port()
    log = tmp_path / "dashboard.log"
    env = {**os.environ, "BE_PATHS__DATA": str(data_path)}
    command = [sys.executable, "-m", "building_energy.cli", "dashboard", "--model", str(trained.model_path)]
    command += ["--address", "127.0.0.1", "--port", str(port)]
    with log.open("wb") as output:
        server = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_until_ready(
            server,
            lambda: answers(f"http://127.0.0.1:{port}/_stcore/health", body=b"ok"),
            SERVER_START_SECONDS,
            what="the dashboard",
            details=log.read_text,
            poll=1,
        )
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(server, signal.SIGTERM, timeout=60, group=True)  # the CLI and the streamlit it started


def test_dashboard_renders_in_chromium(dashboard_url: str, tmp_path: Path) -> None:
    if not CHROMIUM.is_file():  # CI installs it (.ci/run): a missing browser is a failure, not a skip
        pytest.fail(f"{CHROMIUM} is missing: `apt-get install -y chromium`")
    with Chromium(tmp_path / "chromium-profile", window=(1400, 2400)) as browser:
        browser.open(f"{dashboard_url}/model")
        assert browser.wait_for(_HEADING, RENDER_SECONDS) == "The model"
        assert browser.wait_for(f"{_RENDERED_CHARTS} >= 4 && {_IDLE} && {_RENDERED_CHARTS}", RENDER_SECONDS) == 4
        assert APP_TITLE in browser.evaluate("document.title")
        dom = browser.dom()
        assert 'data-testid="stException"' not in dom and "Page not found" not in dom
        for page in ("Predict", "Batch", "Model", "Data"):  # the navigation lists every page
            assert f">{page}<" in dom
        time.sleep(1)  # let the charts' fade-in finish before the picture
        browser.screenshot(SCREENSHOT)

        browser.open(f"{dashboard_url}/data")
        assert browser.wait_for(_HEADING, RENDER_SECONDS) == "The City's buildings"
        assert browser.wait_for(f"{_RENDERED_CHARTS} >= 4 && {_IDLE}", RENDER_SECONDS)
        dom = browser.dom()
        assert 'data-testid="stException"' not in dom and "Page not found" not in dom
        browser.screenshot(REPORTS / "dashboard-data.png")

        browser.open(f"{dashboard_url}/")  # the root opens Predict at its own address
        assert browser.wait_for(_HEADING, RENDER_SECONDS) == "Predict one building"
        assert browser.wait_for("location.pathname", RENDER_SECONDS) == "/predict"
        browser.open(f"{dashboard_url}/predict")  # a link to it works: once Streamlit's "Page not found"
        assert browser.wait_for(_HEADING, RENDER_SECONDS) == "Predict one building"
        assert browser.wait_for(f"{_FORM_FIELDS} >= 10 && {_IDLE}", RENDER_SECONDS)
        assert "Page not found" not in browser.dom()
        browser.evaluate(f"{_SUBMIT}.click()")  # the form's defaults: a typical building
        # The record sent to the model is the result's last element: once it is there the run has finished.
        browser.wait_for("document.body.innerText.includes('The record sent to the model')", RENDER_SECONDS)
        shown = browser.wait_for(f"{_IDLE} && {_METRICS}", RENDER_SECONDS)
        assert re.search(r"^[\d,]+ kBtu\|", shown), shown  # the predicted kBtu comes first
        assert 'data-testid="stException"' not in browser.dom()
        browser.screenshot(REPORTS / "dashboard-predict.png")
    assert SCREENSHOT.read_bytes().startswith(b"\x89PNG")
