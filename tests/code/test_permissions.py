"""Files and folders the user may not write: refused before any work, named, and left as they were.

Root ignores permissions, and CI runs as root: the command then runs as ``nobody``, its privileges dropped
after its imports (the interpreter's own files may sit where ``nobody`` cannot read them).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from building_energy.data.io import ARCHIVED_FILE_NAME
from building_energy.models.artifacts import ARTIFACT_FILES
from building_energy.models.train import TrainingResult

pytestmark = pytest.mark.integration

NOBODY = 65534
COMMAND = f"""
import os, sys
from building_energy.cli import main
# Imported while the interpreter may still read them: what each command under test loads lazily.
import building_energy.data.io, building_energy.models.bench, building_energy.models.predict
import building_energy.models.train, building_energy.models.loading, building_energy.models.tuning
import building_energy.models.explain, building_energy.tracking.record
# The standard library's, which the configuration's resources.files() imports on its first call.
import importlib.readers
if os.geteuid() == 0:
    os.setgroups([])
    os.setgid({NOBODY})
    os.setuid({NOBODY})
sys.exit(main(sys.argv[1:]))
"""


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", COMMAND, *argv], capture_output=True, text=True, timeout=600, check=False
    )


def _read_only(path: Path, content: str) -> Path:
    path.write_text(content)
    path.chmod(0o444)
    return path


def _readable_data(folder: Path, data_path: Path) -> Path:
    data = folder / "buildings.csv"
    shutil.copy(data_path, data)
    data.chmod(0o644)
    return data


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def scoring_inputs(trained: TrainingResult, data_path: Path, shared_folder: Path) -> tuple[Path, Path]:
    """A copy of the session model and 20 buildings, readable by anyone."""
    model = shared_folder / "model" / "model.joblib"
    model.parent.mkdir(mode=0o755)
    for name in ("model.joblib", "model.joblib.sha256"):
        shutil.copy(trained.model_path.parent / name, model.parent / name)
        (model.parent / name).chmod(0o644)
    buildings = shared_folder / "in.csv"
    pd.read_csv(data_path, dtype=str, keep_default_na=False).head(20).to_csv(buildings, index=False)
    buildings.chmod(0o644)
    return model, buildings


def test_predict_refuses_to_replace_a_read_only_predictions_file(
    scoring_inputs: tuple[Path, Path], shared_folder: Path
) -> None:
    model, buildings = scoring_inputs
    output = _read_only(shared_folder / "out.csv", "earlier predictions\n")

    result = _run("predict", "--model", str(model), "--input", str(buildings), "--output", str(output))

    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines()[-1] == f"error: {output}: the file is read-only; not replaced"
    assert output.read_text() == "earlier predictions\n"
    assert oct(output.stat().st_mode & 0o777) == oct(0o444)


def test_predict_into_a_read_only_folder_names_the_folder_not_a_temporary(
    scoring_inputs: tuple[Path, Path], shared_folder: Path
) -> None:
    model, buildings = scoring_inputs
    folder = shared_folder / "read-only"
    folder.mkdir(mode=0o555)

    result = _run("predict", "--model", str(model), "--input", str(buildings), "--output", str(folder / "out.csv"))

    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines()[-1] == f"error: {folder}: Permission denied"
    assert list(folder.iterdir()) == []


def test_bench_refuses_an_output_folder_it_cannot_write_before_it_runs(shared_folder: Path, data_path: Path) -> None:
    folder = shared_folder / "read-only"
    folder.mkdir(mode=0o555)
    data = _readable_data(shared_folder, data_path)

    argv = ["bench", "--data", str(data), "--profile", "tiny", "--seeds", "42", "--folds", "2"]
    result = _run(*argv, "--output", str(folder / "folds.csv"))

    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines()[-1] == f"error: {folder}: Permission denied"
    assert "seed 42 fold" not in result.stderr  # refused before the first fold, not after the last


def test_train_refuses_a_read_only_model_folder_before_fitting_and_keeps_the_model_there(
    trained: TrainingResult, shared_folder: Path, data_path: Path
) -> None:
    output = shared_folder / "artifacts"
    output.mkdir()
    lock = output / ".train.lock"  # every training leaves its lock behind, and opening it succeeds
    lock.touch()
    for path in [lock, *(output / name for name in ARTIFACT_FILES)]:
        if path != lock:
            shutil.copy(trained.model_path.parent / path.name, path)
        if os.geteuid() == 0:
            os.chown(path, NOBODY, NOBODY)  # the user's own files: only the folder is read-only
    output.chmod(0o555)
    before = {name: _digest(output / name) for name in ARTIFACT_FILES}

    result = _run("train", "--data", str(_readable_data(shared_folder, data_path)), "--output", str(output))

    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines()[-1] == f"error: {output}: Permission denied"
    assert "training on" not in result.stderr  # refused before the data was even split
    assert {name: _digest(output / name) for name in ARTIFACT_FILES} == before


def test_fetch_data_refuses_to_replace_a_read_only_data_file(shared_folder: Path, data_path: Path) -> None:
    archive = shared_folder / "shared"
    archive.mkdir(mode=0o755)
    shutil.copy(data_path, archive / ARCHIVED_FILE_NAME)
    (archive / ARCHIVED_FILE_NAME).chmod(0o644)
    destination = _read_only(shared_folder / "data.csv", "a file the user protected\n")

    result = _run("fetch-data", "--destination", str(destination), "--shared", str(archive))

    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines()[-1] == f"error: {destination}: the file is read-only; not replaced"
    assert destination.read_text() == "a file the user protected\n"


def test_tune_refuses_a_configuration_destination_it_cannot_write_before_the_study(
    shared_folder: Path, data_path: Path
) -> None:
    folder = shared_folder / "read-only"
    folder.mkdir(mode=0o555)
    journal = shared_folder / "journal.log"

    argv = ["tune", "--learner", "stack", "--trials", "1", "--storage", str(journal), "--data", str(data_path)]
    result = _run(*argv, "--write-config", str(folder / "tuned.yaml"))

    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines()[-1] == f"error: {folder}: Permission denied"
    assert not journal.exists()  # no study was opened
