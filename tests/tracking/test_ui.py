"""`building-energy ui`: a real MLflow server on loopback serving the store the training wrote."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from mlflow import MlflowClient

from building_energy.cli import main
from building_energy.config import get_config
from building_energy.loopback import LOOPBACK, answers, free_port, stop_process, wait_until_ready
from building_energy.tracking.record import TrainingRecord
from tests.tracking.helpers import TRAINING_FIXTURE_TIMEOUT

TRACKING = get_config().tracking
STARTUP_LIMIT_SECONDS = 240
UI = [str(Path(sys.executable).parent / "building-energy"), "ui"]


def _stat(pid: str) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (state first), or ``None`` once it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None


def live_processes(sessions: set[int]) -> dict[int, str]:
    """Each process (zombies aside) in one of ``sessions``, and its command line."""
    found = {}
    for entry in Path("/proc").iterdir():
        fields = _stat(entry.name) if entry.name.isdigit() else None
        if fields is not None and fields[0] != "Z" and int(fields[3]) in sessions:
            found[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    return found


def children(pid: int) -> set[int]:
    """The processes whose parent is ``pid``."""
    return {
        int(entry.name)
        for entry in Path("/proc").iterdir()
        if entry.name.isdigit() and (fields := _stat(entry.name)) is not None and int(fields[1]) == pid
    }


def kill_sessions(sessions: set[int]) -> None:
    """Clean up after a failed test: what a broken `ui` left behind must not outlive the test."""
    for pid in live_processes(sessions):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture
def empty_store(tmp_path: Path) -> str:
    """A real MLflow store with no run yet: enough for the UI to start."""
    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    (tmp_path / "store").mkdir()
    MlflowClient(tracking_uri=uri).search_experiments()
    return uri


@pytest.fixture
def held_port() -> Iterator[int]:
    """A loopback port another server listens on, for the test's duration."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind((LOOPBACK, 0))
        holder.listen()
        yield int(holder.getsockname()[1])


def start_ui(port: int, store: str, log: Path) -> subprocess.Popen[bytes]:
    """`building-energy ui` on ``port`` in a session of its own, its output in ``log``."""
    with log.open("wb") as sink:
        return subprocess.Popen(
            [*UI, "--host", LOOPBACK, "--port", str(port)],
            env={**os.environ, "MLFLOW_TRACKING_URI": store},
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_for_ui(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    """Until the UI at ``url`` answers its health check; its log's end in the error if it never does."""
    wait_until_ready(
        process,
        lambda: answers(f"{url}/health"),
        STARTUP_LIMIT_SECONDS,
        what="the UI",
        details=lambda: log.read_text()[-3000:],
        poll=1,
    )


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
            wait_for_ui(process, url, log)
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


@pytest.mark.slow
@pytest.mark.integration
def test_ui_on_a_port_in_use_exits_2_naming_it_and_starts_nothing(
    empty_store: str, held_port: int, tmp_path: Path
) -> None:
    log = tmp_path / "ui.log"
    process = start_ui(held_port, empty_store, log)
    try:
        process.wait(timeout=STARTUP_LIMIT_SECONDS)
        output = log.read_text()
        assert process.returncode == 2, output
        errors = [line for line in output.splitlines() if line.startswith("error: ")]
        assert errors == [
            f"error: cannot listen on {LOOPBACK}:{held_port}: the port is already in use; "
            "stop what listens there or choose another --port"
        ], output
        assert live_processes({process.pid}) == {}, "processes of the UI outlived it"
    finally:
        kill_sessions({process.pid})


@pytest.mark.slow
@pytest.mark.integration
def test_ui_whose_port_is_taken_after_the_check_exits_1_and_leaves_no_process(empty_store: str, tmp_path: Path) -> None:
    """The server itself cannot bind (another process took the port while it started): `mlflow server` exits
    0 then, with its job runner left running; the command fails in one line and stops all of it."""
    log, port = tmp_path / "ui.log", free_port()
    process = start_ui(port, empty_store, log)
    sessions = {process.pid}
    try:
        # The command logs its address once the port passed its check, then starts the server.
        wait_until_ready(process, lambda: f"at http://{LOOPBACK}:{port}" in log.read_text(), 60, "the UI command")
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
            holder.bind((LOOPBACK, port))
            holder.listen()
            deadline = time.monotonic() + STARTUP_LIMIT_SECONDS
            while process.poll() is None and time.monotonic() < deadline:
                sessions |= children(process.pid)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=0.5)
            assert sessions != {process.pid}, "the server was never started"
            output = log.read_text()
            assert process.returncode == 1, output
            errors = [line for line in output.splitlines() if line.startswith("error: ")]
            assert len(errors) == 1, output
            assert f"{LOOPBACK}:{port}" in errors[0]
            assert live_processes(sessions) == {}, "processes of the MLflow server outlived `building-energy ui`"
    finally:
        stop_process(process, signal.SIGTERM, timeout=30, group=True)
        kill_sessions(sessions)


@pytest.mark.slow
@pytest.mark.integration
def test_sigterm_stops_the_ui_and_every_process_of_its_server(empty_store: str, tmp_path: Path) -> None:
    log, port = tmp_path / "ui.log", free_port()
    url = f"http://{LOOPBACK}:{port}"
    process = start_ui(port, empty_store, log)
    sessions = {process.pid}
    try:
        wait_for_ui(process, url, log)
        server = children(process.pid)
        assert server, "no server process under `building-energy ui`"
        sessions |= server
        # MLflow's job runner (huey consumers) and uvicorn are the server's children, in its session.
        assert len(live_processes(sessions)) > 2

        process.send_signal(signal.SIGTERM)  # to the command alone, as a service manager sends it
        assert process.wait(timeout=120) == 0, log.read_text()[-3000:]
        assert live_processes(sessions) == {}, "processes of the MLflow server outlived `building-energy ui`"
        assert not answers(f"{url}/health")
    finally:
        stop_process(process, signal.SIGTERM, timeout=30, group=True)
        kill_sessions(sessions)
