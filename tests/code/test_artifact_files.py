"""The files training and fetching write: readable like any file the user writes, never half-written, and
the temporaries a killed run leaves are cleaned by the next; the command line names a path it cannot write."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from building_energy.cli import main
from building_energy.data.io import ARCHIVED_FILE_NAME, fetch_data
from building_energy.files import write_bytes_atomically
from building_energy.models.artifacts import (
    ARTIFACT_FILES,
    PLOTS_SUBDIR,
    REPORT_FILES,
    remove_stale_temporaries,
    save_artifacts,
)
from building_energy.models.compare_pipelines import REPORT_JOBLIB, REPORT_JSON
from building_energy.tracking.plots import write_evaluation_plots

# What a training writes, in miniature: the artifact writer checks the keys only, the plots read these fields.
ARTIFACT = {"model": "a model", "encoder": None, "best_params": {"svr": {"C": 1.0}}, "metadata": {"v": 1}}
METRICS: dict[str, Any] = {
    "test": {"mape": 0.4, "mape_by_property_type": {"Hotel": 0.3, "Office": 0.5}},
    "cv": {"svr": {"folds": [-0.5, -0.6]}, "lightgbm": {"folds": [-0.4, -0.45]}},
}


@pytest.fixture(params=[0o027, 0o002], ids=["umask027", "umask002"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    """A known umask for the test, the process's own restored after it."""
    previous = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _plain_write_mode(directory: Path) -> int:
    """The mode ``open(path, "wb")`` gives a new file in ``directory`` under the current umask (and ACLs)."""
    probe = directory / "plain-write-probe"
    with probe.open("wb") as handle:
        handle.write(b"x")
    mode = _mode(probe)
    probe.unlink()
    return mode


def test_saved_artifacts_get_the_mode_of_a_plain_write(tmp_path: Path, umask: int) -> None:
    save_artifacts(tmp_path, ARTIFACT, METRICS)
    expected = _plain_write_mode(tmp_path)
    assert expected == 0o666 & ~umask
    assert {name: oct(_mode(tmp_path / name)) for name in ARTIFACT_FILES} == dict.fromkeys(
        ARTIFACT_FILES, oct(expected)
    )


def test_replacing_a_file_gives_the_new_one_the_mode_of_a_plain_write(tmp_path: Path, umask: int) -> None:
    target = tmp_path / REPORT_JSON
    target.write_bytes(b"{}")
    target.chmod(0o600)
    write_bytes_atomically(target, b'{"new": true}')
    assert target.read_bytes() == b'{"new": true}'
    assert _mode(target) == _plain_write_mode(tmp_path)


def test_plots_get_the_mode_of_a_plain_write(tmp_path: Path, umask: int) -> None:
    paths = write_evaluation_plots(METRICS, tmp_path)
    assert paths
    expected = _plain_write_mode(tmp_path / PLOTS_SUBDIR)
    assert {path.name: oct(_mode(path)) for path in paths} == {path.name: oct(expected) for path in paths}


def test_fetched_data_gets_the_mode_of_a_plain_write(tmp_path: Path, umask: int) -> None:
    payload = b"OSEBuildingID,DataYear\n1,2016\n"
    shared = tmp_path / "shared"
    shared.mkdir()
    archive = shared / ARCHIVED_FILE_NAME
    archive.write_bytes(payload)
    archive.chmod(0o600)  # the archive's own mode is not what a copy should get
    archived = hashlib.sha256(payload).hexdigest()
    raw = tmp_path / "raw"

    copied = fetch_data(raw / "buildings.csv", shared, url="file:///nowhere", expected_sha256=archived)
    # No archived copy: downloaded, here from a local file:// URL so the test needs no network.
    downloaded = fetch_data(raw / "portal.csv", tmp_path / "no-shared", url=archive.as_uri(), expected_sha256=archived)

    expected = _plain_write_mode(raw)
    assert (copied.read_bytes(), downloaded.read_bytes()) == (payload, payload)
    assert (oct(_mode(copied)), oct(_mode(downloaded))) == (oct(expected), oct(expected))
    assert sorted(p.name for p in raw.iterdir()) == ["buildings.csv", "portal.csv"]


def test_a_plot_replaced_is_a_new_file_never_the_old_one_rewritten(tmp_path: Path) -> None:
    folder = tmp_path / PLOTS_SUBDIR
    folder.mkdir()
    old = folder / "cv_folds.png"
    old.write_bytes(b"the previous plot")
    # A second name for the previous file, as a reader holding it open has: the new plot must not write into it.
    held = tmp_path / "held-by-a-reader.png"
    os.link(old, held)

    paths = write_evaluation_plots(METRICS, tmp_path)

    assert old in paths
    assert held.read_bytes() == b"the previous plot"
    assert old.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert not old.samefile(held)


def test_report_names_cleaned_are_those_the_comparison_writes() -> None:
    assert set(REPORT_FILES) == {REPORT_JSON, REPORT_JOBLIB}


# A child that writes one kind of file the way the package does and SIGKILLs itself just before its first
# rename: the temporary a killed run really leaves, by its real name.
_KILLED_WRITE = """
import os, signal, sys
from pathlib import Path

directory, kind = Path(sys.argv[1]), sys.argv[2]

def kill_at_rename(event, args):
    if event == "os.rename":
        os.kill(os.getpid(), signal.SIGKILL)

if kind == "artifacts":
    from building_energy.models.artifacts import save_artifacts
    artifact = {"model": "m", "encoder": None, "best_params": {}, "metadata": {}}
    sys.addaudithook(kill_at_rename)
    save_artifacts(directory, artifact, {})
elif kind == "plots":
    from building_energy.tracking.plots import write_evaluation_plots
    metrics = {"test": {"mape": 0.4, "mape_by_property_type": {"Hotel": 0.3}}, "cv": {"svr": {"folds": [-0.5]}}}
    sys.addaudithook(kill_at_rename)
    write_evaluation_plots(metrics, directory)
else:  # a comparison report, written as compare_on_split writes it
    from building_energy.files import write_bytes_atomically
    sys.addaudithook(kill_at_rename)
    write_bytes_atomically(directory / kind, b"report")
"""


@pytest.mark.integration
def test_temporaries_of_killed_writes_are_removed_and_every_other_file_kept(tmp_path: Path) -> None:
    folder = tmp_path / "artifacts"
    save_artifacts(folder, ARTIFACT, METRICS)
    write_evaluation_plots(METRICS, folder)
    write_bytes_atomically(folder / REPORT_JSON, b"{}")
    # Files that are not the package's temporaries, whatever they look like, are never deleted.
    for name in (".train.lock", "notes.txt", ".notes.txt.abcd1234.tmp", ".cv_folds.png.abcd1234.tmp"):
        (folder / name).write_text("keep")
    (folder / PLOTS_SUBDIR / ".legend.svg.abcd1234.tmp").write_text("keep")
    kept = {path: path.read_bytes() for path in folder.rglob("*") if path.is_file()}

    for kind in ("artifacts", "plots", REPORT_JSON, REPORT_JOBLIB):
        child = subprocess.run(
            [sys.executable, "-c", _KILLED_WRITE, str(folder), kind], capture_output=True, timeout=300, check=False
        )
        assert child.returncode == -signal.SIGKILL, (kind, child.stderr.decode())
    leftovers = {path for path in folder.rglob("*") if path.is_file()} - set(kept)
    names = sorted(path.relative_to(folder).as_posix() for path in leftovers)
    expected = [
        r"\.best_params\.joblib\.\w+\.tmp",
        r"\.compare_report\.joblib\.\w+\.tmp",
        r"\.compare_report\.json\.\w+\.tmp",
        rf"{PLOTS_SUBDIR}/\.test_mape_by_property_type\.png\.\w+\.tmp",
    ]
    assert len(names) == len(expected), names
    for name, pattern in zip(names, expected, strict=True):
        assert re.fullmatch(pattern, name), names

    removed = remove_stale_temporaries(folder)

    assert sorted(removed) == sorted(leftovers)
    assert {path: path.read_bytes() for path in folder.rglob("*") if path.is_file()} == kept


def test_removing_temporaries_from_a_folder_without_plots_or_reports(tmp_path: Path) -> None:
    save_artifacts(tmp_path, ARTIFACT, METRICS)
    assert remove_stale_temporaries(tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(ARTIFACT_FILES)


def _blocked_output(tmp_path: Path) -> Path:
    """An output folder no one can create, root included: its parent is a regular file."""
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder should be")
    return blocker / "artifacts"


def _error_lines(captured: str) -> list[str]:
    return [line for line in captured.splitlines() if line.startswith("error:")]


def test_train_into_an_output_that_cannot_be_created_exits_2_naming_it(
    data_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A few hundred real rows: the command reads and splits them, then fails on creating the output folder.
    data = tmp_path / "buildings.csv"
    pd.read_csv(data_path, dtype=str, keep_default_na=False).head(400).to_csv(data, index=False)
    output = _blocked_output(tmp_path)

    code = main(["train", "--data", str(data), "--output", str(output), "--profile", "fast"])

    assert code == 2
    assert _error_lines(capsys.readouterr().err) == [f"error: {output}: Not a directory"]


def test_fetch_data_into_a_folder_that_cannot_be_created_exits_2_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Neither a copy in place nor an archived one: the download's folder is created first, and cannot be.
    destination = _blocked_output(tmp_path) / "buildings.csv"
    argv = ["fetch-data", "--destination", str(destination), "--shared", str(tmp_path / "no-shared")]

    assert main(argv) == 2
    assert _error_lines(capsys.readouterr().err) == [f"error: {destination.parent}: Not a directory"]
