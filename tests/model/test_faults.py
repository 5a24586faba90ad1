"""Faults: trainings killed or run twice at once, and model files that were altered, never cost a loadable model."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import joblib
import pandas as pd
import pytest

from building_energy.cli import main
from building_energy.config import get_config
from building_energy.models.artifacts import (
    ARTIFACT_FILES,
    CHECKSUM_FILE,
    METRICS_FILE,
    MODEL_FILE,
    ModelIntegrityError,
    load_artifact,
    training_lock,
)
from building_energy.models.compare_pipelines import REPORT_JOBLIB, REPORT_JSON
from building_energy.models.train import TrainingResult, train_model

pytestmark = [pytest.mark.slow, pytest.mark.integration]

CLI = str(Path(sys.executable).parent / "building-energy")
# Generous bounds for a loaded CI machine; every wait below ends as soon as its condition holds.
PROCESS_TIMEOUT = 900.0
LOCK_WAIT = 300.0
# Seeded, so a failure names the kill points that caused it and CI can replay them.
KILL_SEED = 20161
KILLS = 3


@pytest.fixture
def artifacts(trained: TrainingResult, tmp_path: Path) -> Path:
    """A copy of the session model's artifacts directory: the 'previous' model every fault must leave alone."""
    target = tmp_path / "artifacts"
    shutil.copytree(trained.model_path.parent, target)
    return target


@pytest.fixture(scope="module")
def small_data(data_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 1,200 real rows: a real training, in a fraction of the time of the whole file."""
    frame = pd.read_csv(data_path, dtype=str, keep_default_na=False).head(1200)
    path = tmp_path_factory.mktemp("small") / "buildings.csv"
    frame.to_csv(path, index=False)
    return path


def _environment(tmp_path: Path) -> dict[str, str]:
    """Should a training get as far as tracking, it tracks into the test's own MLflow store."""
    (tmp_path / "mlflow").mkdir(exist_ok=True)
    return {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}"}


def _train_command(data: Path, output: Path) -> list[str]:
    return [CLI, "train", "--profile", "fast", "--data", str(data), "--output", str(output)]


def _start_training(data: Path, output: Path, tmp_path: Path, log_name: str) -> subprocess.Popen[bytes]:
    with (tmp_path / log_name).open("wb") as log:
        return subprocess.Popen(
            _train_command(data, output),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
            env=_environment(tmp_path),
        )


def _snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file() and p.name != ".train.lock"}


def _sha256(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


def _holds_flock(pid: int, path: Path) -> bool:
    """Whether process ``pid`` holds a flock on ``path``, read from the kernel's table (/proc/locks)."""
    if not path.exists():
        return False
    inode = f":{path.stat().st_ino}"
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        if "FLOCK" in fields and str(pid) in fields and any(f.endswith(inode) for f in fields):
            return True
    return False


def _wait_for(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Every process a test starts is gone when it ends, whatever the outcome."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=60)


def _assert_intact_or_replaced(directory: Path, before: dict[str, bytes]) -> None:
    """The directory holds a loadable model (checksum verified) and no file under an artifact name is partial."""
    after = _snapshot(directory)
    artifact = load_artifact(directory / MODEL_FILE)
    assert artifact["metadata"]["model_sha256"] == _sha256(after[MODEL_FILE])
    json.loads(after[METRICS_FILE])
    joblib.load(directory / "best_params.joblib")
    # Leftover temporaries are dot-files that no reader opens (and the next training deletes). A killed CLI
    # training that got past publishing its model may also have written the comparison: whole, if at all.
    named_before = {name for name in before if not name.startswith(".")}
    named_after = {name for name in after if not name.startswith(".")}
    assert named_before <= named_after <= named_before | {REPORT_JSON, REPORT_JOBLIB}
    if REPORT_JSON in named_after:
        json.loads(after[REPORT_JSON])
    if REPORT_JOBLIB in named_after:
        joblib.load(directory / REPORT_JOBLIB)
    assert set(ARTIFACT_FILES) <= set(after)


def test_second_training_refuses_clearly_while_another_holds_the_directory(
    artifacts: Path, data_path: Path, tmp_path: Path
) -> None:
    before = _snapshot(artifacts)
    # The lock a training takes, held here for as long as the second one runs: no race with a real one's end.
    with training_lock(artifacts):
        second = subprocess.run(
            _train_command(data_path, artifacts),
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=_environment(tmp_path),
            timeout=PROCESS_TIMEOUT,
            check=False,
        )
    assert second.returncode == 2, second.stderr
    assert f"another training is writing {artifacts}" in second.stderr
    assert "Traceback" not in second.stderr
    assert _snapshot(artifacts) == before


def test_a_training_killed_while_it_holds_the_directory_leaves_the_previous_model(
    artifacts: Path, data_path: Path, tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    before = _snapshot(artifacts)
    first = _start_training(data_path, artifacts, tmp_path, "first.log")
    processes.append(first)
    _wait_for(
        lambda: _holds_flock(first.pid, artifacts / ".train.lock") or first.poll() is not None,
        LOCK_WAIT,
        "the training to lock the artifacts directory",
    )
    # Killed just after taking the lock, a whole training on the whole file is far from done.
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=60)
    assert first.returncode == -signal.SIGKILL, (tmp_path / "first.log").read_text()
    assert _snapshot(artifacts) == before
    load_artifact(artifacts / MODEL_FILE)


def test_training_killed_at_random_points_then_the_next_one_succeeds(
    artifacts: Path, small_data: Path, tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    before = _snapshot(artifacts)
    rng = random.Random(KILL_SEED)
    for attempt in range(KILLS):
        # From "still importing" to "well into the grid search", or now and then past the end of it.
        delay = rng.uniform(0.5, 25.0)
        process = _start_training(small_data, artifacts, tmp_path, f"killed-{attempt}.log")
        processes.append(process)
        try:
            process.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
        _assert_intact_or_replaced(artifacts, before)

    # The next training, in process (the CLI would add the comparison and tracking runs): two folds, same code.
    result = train_model(
        data_path=small_data,
        output_dir=artifacts,
        profile="fast",
        config=get_config().model_copy(update={"cv_folds": 2}),
    )

    assert result.model_path == artifacts / MODEL_FILE
    after = _snapshot(artifacts)
    artifact = load_artifact(artifacts / MODEL_FILE)
    assert artifact["metadata"]["data_path"] == str(small_data)
    assert json.loads(after[METRICS_FILE])["model_sha256"] == _sha256(after[MODEL_FILE])
    assert after[CHECKSUM_FILE].decode() == f"{_sha256(after[MODEL_FILE])}  {MODEL_FILE}\n"
    assert not [name for name in after if name.endswith(".tmp")]


# A child that replaces the artifacts and SIGKILLs itself just before its n-th rename: every state a crash
# inside ``save_artifacts`` can leave, reached by a real kill rather than by guessing a delay.
_KILLED_SAVE = """
import os, signal, sys
from pathlib import Path
from building_energy.models.artifacts import save_artifacts

directory, kill_before = Path(sys.argv[1]), int(sys.argv[2])
renames = 0

def kill_at_rename(event, args):
    global renames
    if event == "os.rename":
        renames += 1
        if renames == kill_before:
            os.kill(os.getpid(), signal.SIGKILL)

artifact = {"model": "replacement", "encoder": None, "best_params": {"x": {"n": 1}}, "metadata": {"v": 2}}
sys.addaudithook(kill_at_rename)
save_artifacts(directory, artifact, {"test": {"mape": 0.5}})
"""


def test_save_killed_before_each_rename_leaves_a_loadable_model(artifacts: Path, tmp_path: Path) -> None:
    before = _snapshot(artifacts)
    complete = tmp_path / "complete"
    shutil.copytree(artifacts, complete)
    done = subprocess.run([sys.executable, "-c", _KILLED_SAVE, str(complete), "0"], timeout=120, check=False)
    assert done.returncode == 0
    new = _snapshot(complete)
    assert new[MODEL_FILE] != before[MODEL_FILE]

    renames = 1
    while True:
        directory = tmp_path / f"killed-{renames}"
        shutil.copytree(artifacts, directory)
        child = subprocess.run(
            [sys.executable, "-c", _KILLED_SAVE, str(directory), str(renames)], timeout=120, check=False
        )
        if child.returncode == 0:
            break
        assert child.returncode == -signal.SIGKILL
        after = _snapshot(directory)
        for name in (MODEL_FILE, METRICS_FILE, "best_params.joblib"):
            assert after[name] in (before[name], new[name]), name
        loaded = load_artifact(directory / MODEL_FILE)
        assert loaded["model"] == "replacement" or after[MODEL_FILE] == before[MODEL_FILE]
        leftovers = [name for name in after if name.endswith(".tmp")]
        assert leftovers, "a kill just before a rename leaves that write's temporary file"
        with training_lock(directory):
            pass
        assert not [name for name in _snapshot(directory) if name.endswith(".tmp")]
        renames += 1
    # Every rename of a save was a kill point: best_params, metrics, sidecar (both digests), model, sidecar.
    assert renames == 6


# Unpickling this creates ``marker``: the proof that a file was (or was not) unpickled.
class _Tripwire:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.marker), "w"))


def _tampered(original: bytes, marker: Path) -> bytes:
    """A live pickle padded to the original's length: same size, different SHA-256."""
    payload = pickle.dumps(_Tripwire(marker))
    assert len(payload) < len(original)
    return payload + b"\0" * (len(original) - len(payload))


def test_the_tripwire_fires_when_unpickled(tmp_path: Path) -> None:
    """The control: the tampered payload really would run code if anything unpickled it."""
    marker = tmp_path / "unpickled"
    handle = pickle.loads(_tampered(b"\0" * 4096, marker))  # noqa: S301 (a payload the test built, to prove it is live)
    handle.close()
    assert marker.exists()


def _predict_args(model: Path, data_path: Path, tmp_path: Path) -> tuple[list[str], Path]:
    source = tmp_path / "in.csv"
    pd.read_csv(data_path, dtype=str, keep_default_na=False).head(5).to_csv(source, index=False)
    output = tmp_path / "out.csv"
    return ["predict", "--model", str(model), "--input", str(source), "--output", str(output)], output


def test_cli_refuses_a_same_length_pickle_without_unpickling_it(
    artifacts: Path, data_path: Path, tmp_path: Path
) -> None:
    model = artifacts / MODEL_FILE
    marker = tmp_path / "unpickled"
    model.write_bytes(_tampered(model.read_bytes(), marker))
    args, output = _predict_args(model, data_path, tmp_path)

    result = subprocess.run(
        [CLI, *args], capture_output=True, text=True, cwd=tmp_path, timeout=PROCESS_TIMEOUT, check=False
    )

    assert result.returncode == 2
    assert "does not match the recorded" in result.stderr
    assert "altered or truncated" in result.stderr
    assert "Traceback" not in result.stderr
    assert not output.exists()
    assert not marker.exists()
    with pytest.raises(ModelIntegrityError, match="altered or truncated"):
        load_artifact(model)
    assert not marker.exists()


def test_cli_refuses_a_truncated_model(
    artifacts: Path, data_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = artifacts / MODEL_FILE
    model.write_bytes(model.read_bytes()[: model.stat().st_size // 2])
    args, output = _predict_args(model, data_path, tmp_path)

    assert main(args) == 2
    assert "altered or truncated" in capsys.readouterr().err
    assert not output.exists()
