"""Which store tracking uses, where its artifacts go, that a scoped store leaves no global trace and keeps
its registrations, and that a deleted experiment comes back."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Literal

import mlflow
import pytest
from mlflow.entities import LifecycleStage
from sklearn.dummy import DummyRegressor

from building_energy.config import get_config
from building_energy.tracking.store import (
    TrackingError,
    bounded_http,
    check_sqlite_access,
    client,
    ensure_experiment,
    local_artifact_location,
    resolve_tracking_uri,
    sqlite_path,
    using_store,
)
from tests.tracking.helpers import sqlite_uri


def test_default_store_is_the_projects_sqlite_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    config = get_config()
    assert resolve_tracking_uri(config) == config.tracking.uri == "sqlite:///mlflow.db"
    assert sqlite_path(config.tracking.uri) == Path("mlflow.db")


def test_environment_then_argument_override_the_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    assert resolve_tracking_uri(get_config()) == "http://127.0.0.1:5999"
    assert resolve_tracking_uri(get_config(), "sqlite:////x/y.db") == "sqlite:////x/y.db"


def test_artifacts_live_beside_the_database(tmp_path: Path) -> None:
    config = get_config()
    location = local_artifact_location(f"sqlite:///{tmp_path}/sub/mlflow.db", config)
    assert location == (tmp_path / "sub" / config.tracking.artifact_location).as_uri()
    assert local_artifact_location("http://127.0.0.1:5000", config) is None


def test_scoped_store_restores_the_global_uri_and_http_bounds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    outer = f"sqlite:///{tmp_path}/outer.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", outer)
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    inner = f"sqlite:///{tmp_path}/inner.db"
    with using_store(inner):
        assert mlflow.get_tracking_uri() == mlflow.get_registry_uri() == inner
        assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == str(get_config().tracking.http_max_retries)
    assert os.environ["MLFLOW_TRACKING_URI"] == outer
    assert mlflow.get_tracking_uri() == mlflow.get_registry_uri() == outer
    assert "MLFLOW_HTTP_REQUEST_MAX_RETRIES" not in os.environ
    assert "MLFLOW_REGISTRY_URI" not in os.environ


def test_a_model_registered_in_a_scoped_store_lands_there_whatever_the_registry_variable_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", elsewhere)
    uri = sqlite_uri(tmp_path)
    model = DummyRegressor().fit([[0.0], [1.0]], [0.0, 1.0])
    with using_store(uri):
        experiment = ensure_experiment(client(uri), uri)
        with mlflow.start_run(experiment_id=experiment) as run:
            # What `track_training` does: `log_model` registers through MLflow's global registry.
            info = mlflow.sklearn.log_model(
                sk_model=model,
                name="model",
                registered_model_name="scoped-probe",
                pip_requirements=["scikit-learn"],
                serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE,
            )
    assert str(info.registered_model_version) == "1"
    registered = client(uri).get_model_version("scoped-probe", "1")
    assert registered.run_id == run.info.run_id
    assert not (tmp_path / "elsewhere.db").exists()  # the other registry was never even opened
    assert os.environ["MLFLOW_REGISTRY_URI"] == mlflow.get_registry_uri() == elsewhere


def test_a_deleted_experiment_is_restored_and_takes_runs_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    uri = sqlite_uri(tmp_path)
    mlflow_client = client(uri)
    experiment = ensure_experiment(mlflow_client, uri)
    mlflow_client.delete_experiment(experiment)
    with caplog.at_level(logging.WARNING, logger="building_energy.tracking.store"):
        assert ensure_experiment(mlflow_client, uri) == experiment
    assert mlflow_client.get_experiment(experiment).lifecycle_stage == LifecycleStage.ACTIVE
    assert f"(id {experiment}) in {uri} was deleted; restoring it" in caplog.text
    run = mlflow_client.create_run(experiment)  # refused while the experiment was deleted
    assert run.info.experiment_id == experiment


def test_http_bounds_never_override_the_users_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "77")
    # The other bound, left unset, is set: the user's choice is kept by design, not because nothing is set.
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", raising=False)
    with bounded_http():
        assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "77"
        assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == str(get_config().tracking.http_max_retries)
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "77"
    assert "MLFLOW_HTTP_REQUEST_MAX_RETRIES" not in os.environ


def test_a_store_that_cannot_be_created_is_refused_before_mlflow_opens_it(tmp_path: Path) -> None:
    """A path under a regular file cannot be a folder, whoever asks: MLflow would fail on it only later."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    database = blocker / "sub" / "mlflow.db"
    with pytest.raises(TrackingError, match=rf"^MLflow store {re.escape(str(database))}: Not a directory$"):
        check_sqlite_access(f"sqlite:///{database}", "create")
    # A new store where its folders can be made passes, and a missing one is left to the readers to report.
    check_sqlite_access(f"sqlite:///{tmp_path}/new/sub/mlflow.db", "create")
    check_sqlite_access(f"sqlite:///{tmp_path}/missing.db", "write")
    check_sqlite_access("http://127.0.0.1:9", "create")  # a server answers for itself
    assert sorted(p.name for p in tmp_path.iterdir()) == ["not-a-folder"]  # the check creates nothing


def _checked_as_nobody(uri: str, access: Literal["read", "write", "create"]) -> str:
    """What ``check_sqlite_access`` says in a child process whose effective user is ``nobody`` (root ignores
    permissions): ``ok``, or the error's message."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: no return, no pytest
        try:
            os.close(read_end)
            os.setegid(65534)
            os.seteuid(65534)
            try:
                check_sqlite_access(uri, access)
                answer = "ok"
            except TrackingError as error:
                answer = str(error)
            os.write(write_end, answer.encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        answer = pipe.read().decode()
    os.waitpid(pid, 0)
    return answer


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root to act as another user")
def test_a_store_another_user_cannot_read_or_write_is_refused_naming_the_file(shared_folder: Path) -> None:
    """As ``nobody`` (the files are root's): MLflow would retry each of these for about 100 s."""
    readable = shared_folder / "readable"  # 755: nobody may read its files but not add any
    readable.mkdir(mode=0o755)
    database = readable / "mlflow.db"
    database.write_bytes(b"")
    uri = f"sqlite:///{database}"
    database.chmod(0o644)
    assert _checked_as_nobody(uri, "read") == "ok"
    assert _checked_as_nobody(uri, "write") == f"MLflow store {database}: permission denied (the file is read-only)"
    database.chmod(0o600)
    assert _checked_as_nobody(uri, "read") == f"MLflow store {database}: permission denied (the file is not readable)"
    writable = shared_folder / "writable"
    writable.mkdir()
    writable.chmod(0o777)
    assert _checked_as_nobody(f"sqlite:///{writable}/new/mlflow.db", "create") == "ok"
    shared = writable / "mlflow.db"
    shared.write_bytes(b"")
    shared.chmod(0o666)
    assert _checked_as_nobody(f"sqlite:///{shared}", "write") == "ok"
    writable.chmod(0o755)  # the file may be written, its journal beside it not
    assert _checked_as_nobody(f"sqlite:///{shared}", "write") == (
        f"MLflow store {shared}: permission denied (its folder is read-only; SQLite writes a journal there)"
    )
    assert _checked_as_nobody(f"sqlite:///{writable}/new/mlflow.db", "create") == (
        f"MLflow store {writable}/new/mlflow.db cannot be created: permission denied in {writable}"
    )
    writable.chmod(0o700)  # cannot even be searched
    assert _checked_as_nobody(f"sqlite:///{shared}", "read") == f"MLflow store {shared}: Permission denied"
