"""`building-energy ui`: a real MLflow server on loopback serving the store the training wrote."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from mlflow import MlflowClient

from building_energy.cli import main
from building_energy.config import get_config
from building_energy.loopback import answers, free_port, stop_process, wait_until_ready
from building_energy.tracking.record import TrainingRecord
from tests.tracking.helpers import TRAINING_FIXTURE_TIMEOUT

TRACKING = get_config().tracking
STARTUP_LIMIT_SECONDS = 240


@pytest.mark.slow
@pytest.mark.integration
@TRAINING_FIXTURE_TIMEOUT
def test_the_ui_lists_the_recorded_run_and_its_champion(recorded: TrainingRecord, tmp_path: Path) -> None:
    assert recorded.tracked is not None
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "ui.log"
    command = [str(Path(sys.executable).parent / "building-energy"), "ui", "--port", str(port)]
    env = {**os.environ, "MLFLOW_TRACKING_URI": recorded.tracked.tracking_uri}
    with log.open("wb") as sink:
        # Its own session: the server's workers are stopped together with it.
        process = subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_until_ready(
                process,
                lambda: answers(f"{url}/health"),
                STARTUP_LIMIT_SECONDS,
                what="the UI",
                details=lambda: log.read_text()[-3000:],
                poll=1,
            )
            page = httpx.get(url, timeout=30)
            assert page.status_code == 200
            assert "MLflow" in page.text
            server = MlflowClient(tracking_uri=url, registry_uri=url)
            experiment = server.get_experiment_by_name(TRACKING.experiment)
            assert experiment is not None
            runs = server.search_runs([experiment.experiment_id])
            run = next(r for r in runs if r.info.run_id == recorded.tracked.run_id)
            assert run.info.run_name == TRACKING.run_name
            assert "test_mae" in run.data.metrics
            champion = server.get_model_version_by_alias(TRACKING.registered_model, TRACKING.champion_alias)
            assert champion.run_id == recorded.tracked.run_id
            artifact_names = {Path(a.path).name for a in server.list_artifacts(run.info.run_id, "artifacts")}
            assert "model.joblib" in artifact_names

            # SIGTERM to the command alone, as a service manager sends it: the server goes with it.
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)
            deadline = time.monotonic() + 60
            while answers(f"{url}/health") and time.monotonic() < deadline:
                time.sleep(0.5)
            assert not answers(f"{url}/health"), "the MLflow server outlived `building-energy ui`"
        finally:
            stop_process(process, signal.SIGTERM, timeout=30, group=True)


def test_ui_refuses_a_remote_tracking_server(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    assert main(["ui"]) == 2
    assert "serves its own UI" in capsys.readouterr().err


def test_ui_refuses_a_local_store_that_does_not_exist_instead_of_creating_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    database = tmp_path / "mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{database}")
    assert main(["ui"]) == 2
    assert f"no MLflow store at {database}; run from the repository root" in capsys.readouterr().err
    assert not database.exists()
