"""A training recorded in a real MLflow store: the run's content, the registered version, loading it back."""

from __future__ import annotations

import ast
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
from importlib import metadata as package_metadata
from pathlib import Path
from urllib.parse import urlparse

import httpx
import mlflow
import numpy as np
import pandas as pd
import pytest
import sklearn
from mlflow import MlflowClient

import building_energy
from building_energy.cli import main
from building_energy.config import get_config
from building_energy.data.columns import BUILDING_ID, MODEL_INPUTS, PREDICTION_REQUIRED, TARGET_KBTU
from building_energy.loopback import answers, free_port, stop_process, wait_until_ready
from building_energy.models.artifacts import ModelIntegrityError, ModelLoadError
from building_energy.models.compare_pipelines import recorded_split
from building_energy.models.loading import load_model
from building_energy.models.predict import (
    ERROR_COLUMN,
    LOWER_COLUMN,
    PREDICTION_COLUMN,
    UPPER_COLUMN,
    predict_frame,
)
from building_energy.models.train import TrainingResult, predictions_sha256, prepare_xy
from building_energy.preprocessing.preprocessor import remove_outliers
from building_energy.tracking.record import TrainingRecord
from building_energy.tracking.runs import track_training
from building_energy.tracking.store import using_store
from tests.tracking.helpers import TRAINING_FIXTURE_TIMEOUT, TRAINING_OUTPUTS, copy_of, sqlite_uri

pytestmark = [pytest.mark.slow, pytest.mark.integration, TRAINING_FIXTURE_TIMEOUT]

TRACKING = get_config().tracking
CHAMPION_URI = f"models:/{TRACKING.registered_model}@{TRACKING.champion_alias}"


def _client(recorded: TrainingRecord) -> MlflowClient:
    assert recorded.tracked is not None
    return MlflowClient(tracking_uri=recorded.tracked.tracking_uri, registry_uri=recorded.tracked.tracking_uri)


def test_the_run_records_params_metrics_tags_and_artifacts(recorded: TrainingRecord, shipped: TrainingResult) -> None:
    assert recorded.tracked is not None
    client = _client(recorded)
    run = client.get_run(recorded.tracked.run_id)
    assert run.info.run_name == TRACKING.run_name
    assert client.get_experiment(run.info.experiment_id).name == TRACKING.experiment

    params = run.data.params
    for key in ("random_state", "cv_folds", "use_energy_star", "profile"):
        assert params[key] == str(shipped.metadata[key])
    for learner, best in shipped.best_params.items():
        for name, value in best.items():
            assert params[f"{learner}.{name}"] == str(value)

    metrics = run.data.metrics
    for split in ("train", "test"):
        for key in ("mape", "r2", "rmse", "mae", "median_ape", "r2_log"):
            assert metrics[f"{split}_{key}"] == pytest.approx(shipped.metrics[split][key])
    for learner, cv in shipped.metrics["cv"].items():
        history = sorted(client.get_metric_history(run.info.run_id, f"cv_{learner}_neg_mae_log"), key=lambda m: m.step)
        assert [m.value for m in history] == pytest.approx(cv["folds"])
        assert metrics[f"cv_{learner}_mean_neg_mae_log"] == pytest.approx(cv["mean_neg_mae_log"])

    tags = run.data.tags
    assert tags["git_commit"] == shipped.metadata["git_commit"]
    assert tags["data_sha256"] == shipped.metadata["data_sha256"]
    assert tags["version.scikit-learn"] == sklearn.__version__
    assert tags["model_sha256"] == hashlib.sha256(shipped.model_path.read_bytes()).hexdigest()
    # Recomputed from the data: the rows the model trained on (the City's outliers left out) and its test rows.
    train_rows, test_rows = recorded_split(shipped.metadata, Path(shipped.metadata["data_path"]), get_config())
    X_train, X_test = (prepare_xy(rows, TARGET_KBTU)[0] for rows in (remove_outliers(train_rows), test_rows))
    model = load_model(shipped.model_path).model
    assert tags["predictions_sha256"] == predictions_sha256(model, X_train, X_test)
    # The registry alone says which code, data and model a version is.
    version = client.get_model_version(TRACKING.registered_model, recorded.tracked.model_version)
    for key in ("git_commit", "data_sha256", "model_sha256", "predictions_sha256"):
        assert version.tags[key] == tags[key]

    logged = {Path(a.path).name for a in client.list_artifacts(run.info.run_id, "artifacts")}
    assert logged >= TRAINING_OUTPUTS
    plots = [Path(a.path).name for a in client.list_artifacts(run.info.run_id, "plots")]
    assert sorted(plots) == sorted(p.name for p in recorded.plots)
    assert len(plots) == 3


def test_the_first_version_is_the_champion(recorded: TrainingRecord) -> None:
    assert recorded.tracked is not None
    version = _client(recorded).get_model_version_by_alias(TRACKING.registered_model, TRACKING.champion_alias)
    assert str(version.version) == recorded.tracked.model_version
    assert version.run_id == recorded.tracked.run_id
    assert version.tags["status"] == "champion"
    assert recorded.tracked.decision.promote


def test_the_run_records_the_comparison_with_the_prototype(recorded: TrainingRecord) -> None:
    assert recorded.tracked is not None and recorded.comparison is not None
    run = _client(recorded).get_run(recorded.tracked.run_id)
    # The shipped model is reproducible (test_compare checks it independently): the run says so.
    assert recorded.comparison["reproducibility"]["identical_predictions"]
    assert run.data.tags["reproducible"] == "true"
    assert run.data.tags["within_prototype_tolerance"] == str(recorded.comparison["within_tolerance"]).lower()
    assert run.data.metrics["prototype_mae_ratio"] == pytest.approx(recorded.comparison["mae_ratio"])


def _comparison(identical: bool, mae_ratio: float) -> dict[str, object]:
    """What ``compare_on_split`` reports, reduced to the verdicts tracking reads."""
    return {
        "mae_ratio": mae_ratio,
        "within_tolerance": mae_ratio <= 1 + get_config().compare.mae_tolerance,
        "reproducibility": {"identical_predictions": identical, "max_abs_diff_kbtu": 0.0 if identical else 12.5},
    }


def test_a_version_that_is_not_reproducible_is_not_promoted(
    trained: TrainingResult, held_out_inputs: pd.DataFrame, tmp_path: Path
) -> None:
    uri = sqlite_uri(tmp_path / "store")
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    first = track_training(
        copy_of(trained, tmp_path / "first"), held_out_inputs, tracking_uri=uri, comparison=_comparison(True, 0.97)
    )
    assert first.decision.promote
    # The same model again: its CV score ties the champion's, so only the failed refit can keep it out.
    second = track_training(
        copy_of(trained, tmp_path / "second"), held_out_inputs, tracking_uri=uri, comparison=_comparison(False, 0.97)
    )
    assert not second.decision.promote
    assert re.match(r"not reproducible: .* differ by up to 12\.5 kBtu; not promoted", second.decision.reason)
    champion = client.get_model_version_by_alias(TRACKING.registered_model, TRACKING.champion_alias)
    assert str(champion.version) == first.model_version
    version = client.get_model_version(TRACKING.registered_model, second.model_version)
    assert version.tags["status"] == "challenger"
    assert version.tags["promotion_reason"] == second.decision.reason
    run = client.get_run(second.run_id)
    assert run.data.tags["reproducible"] == "false" and run.data.tags["status"] == "challenger"
    assert run.data.metrics["prototype_mae_ratio"] == pytest.approx(0.97)


def test_mlflow_scores_the_registered_model_as_predict_does(
    recorded: TrainingRecord, shipped: TrainingResult, sample_buildings: pd.DataFrame
) -> None:
    """``mlflow.pyfunc`` gives ``predict_frame``'s table: the same estimates, their intervals, and the rows the
    package refuses refused with the reason (once they got a number)."""
    assert recorded.tracked is not None
    with using_store(recorded.tracked.tracking_uri):
        pyfunc = mlflow.pyfunc.load_model(CHAMPION_URI)
    buildings = sample_buildings.head(20).copy()
    buildings.loc[buildings.index[3], "PropertyGFATotal"] = 0.0
    buildings.loc[buildings.index[7], "BuildingType"] = "Multifamily LR (1-4)"
    scored = pyfunc.predict(buildings)
    expected = predict_frame(load_model(shipped.model_path), buildings)
    pd.testing.assert_frame_equal(scored, expected)
    assert list(scored.columns) == [BUILDING_ID, PREDICTION_COLUMN, LOWER_COLUMN, UPPER_COLUMN, ERROR_COLUMN]
    refused = scored[scored[ERROR_COLUMN] != ""]
    assert list(refused.index) == [buildings.index[3], buildings.index[7]]
    assert "PropertyGFATotal" in refused[ERROR_COLUMN].iloc[0] and "BuildingType" in refused[ERROR_COLUMN].iloc[1]
    assert refused[PREDICTION_COLUMN].isna().all()
    scored_rows = scored.drop(refused.index)
    assert (scored_rows[LOWER_COLUMN] < scored_rows[PREDICTION_COLUMN]).all()
    assert (scored_rows[PREDICTION_COLUMN] < scored_rows[UPPER_COLUMN]).all()
    outputs = pyfunc.metadata.get_output_schema()
    assert outputs.input_names() == list(scored.columns)


def test_mlflows_own_model_server_answers_with_intervals_and_refusals(
    recorded: TrainingRecord, shipped: TrainingResult, sample_buildings: pd.DataFrame, tmp_path: Path
) -> None:
    """`mlflow models serve` of the champion, as a team serving from the registry would run it, on loopback."""
    assert recorded.tracked is not None
    port, log = free_port(), tmp_path / "mlflow-serve.log"
    # Its server is the uvicorn of this environment, which it finds on PATH.
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": recorded.tracked.tracking_uri, "PATH": path}
    command = [sys.executable, "-m", "mlflow", "models", "serve", "-m", CHAMPION_URI, "--env-manager", "local"]
    with log.open("wb") as output:
        server = subprocess.Popen(
            [*command, "-h", "127.0.0.1", "-p", str(port)],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    buildings = sample_buildings.head(5)[[BUILDING_ID, *MODEL_INPUTS]].copy()
    buildings.loc[buildings.index[1], "PropertyGFATotal"] = 0.0
    try:
        wait_until_ready(server, lambda: answers(f"{url}/ping"), 300, "mlflow models serve", log.read_text, poll=1)
        body = {"dataframe_split": json.loads(buildings.to_json(orient="split"))}
        response = httpx.post(f"{url}/invocations", json=body, timeout=120)
    finally:
        stop_process(server, signal.SIGTERM, timeout=60, group=True)
    assert response.status_code == 200, response.text
    served = pd.DataFrame(response.json()["predictions"])
    expected = predict_frame(load_model(shipped.model_path), buildings)
    assert list(served.columns) == list(expected.columns)
    assert served[BUILDING_ID].tolist() == expected[BUILDING_ID].tolist()
    assert served[ERROR_COLUMN].tolist() == expected[ERROR_COLUMN].tolist()
    assert "PropertyGFATotal" in served[ERROR_COLUMN].iloc[1]
    for column in (PREDICTION_COLUMN, LOWER_COLUMN, UPPER_COLUMN):  # through JSON: equal to the last bits
        np.testing.assert_allclose(served[column].to_numpy(float), expected[column].to_numpy(float), rtol=1e-12)


def test_the_logged_model_scores_buildings_with_only_the_required_columns(
    recorded: TrainingRecord, shipped: TrainingResult, sample_buildings: pd.DataFrame
) -> None:
    assert recorded.tracked is not None
    loaded = load_model(shipped.model_path)
    with using_store(recorded.tracked.tracking_uri):
        pyfunc = mlflow.pyfunc.load_model(CHAMPION_URI)
    schema = pyfunc.metadata.get_input_schema()
    assert schema.input_names() == [BUILDING_ID, *MODEL_INPUTS]
    assert sorted(c.name for c in schema.inputs if c.required) == sorted(PREDICTION_REQUIRED)
    for frame in (sample_buildings[list(PREDICTION_REQUIRED)], sample_buildings[[BUILDING_ID, *MODEL_INPUTS]]):
        expected = predict_frame(loaded, frame, allow_absent_columns=True)
        pd.testing.assert_frame_equal(pyfunc.predict(frame), expected)
        assert (expected[ERROR_COLUMN] == "").all()


# Run in a fresh interpreter that cannot import the project's own building_energy: the logged model must bring it.
_LOAD_WITHOUT_THE_PACKAGE = """
import importlib.util, json, sys
import pandas as pd
sys.path = [entry for entry in sys.path if entry != sys.argv[1]]
assert importlib.util.find_spec("building_energy") is None, "the premise: no building_energy outside the model"
import mlflow
model = mlflow.pyfunc.load_model(sys.argv[2])
scored = model.predict(pd.read_pickle(sys.argv[3]))
modules = [m.__file__ for name, m in sys.modules.items() if name.split(".")[0] == "building_energy"]
print(json.dumps({"predictions": scored[sys.argv[4]].tolist(), "modules": modules}))
"""


def _imported_distributions(files: list[str]) -> set[frozenset[str]]:
    """For each third-party module imported by ``files``, the distributions that provide it (normalised names):
    pinning any one of them installs it (``mlflow`` comes with mlflow, mlflow-skinny and mlflow-tracing)."""
    providers = package_metadata.packages_distributions()
    names: set[str] = set()
    for file in files:
        for node in ast.walk(ast.parse(Path(file).read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    third_party = names - set(sys.stdlib_module_names) - {"building_energy", "__future__"}
    return {
        frozenset(re.sub(r"[-_.]+", "-", dist).lower() for dist in providers.get(name, [name])) for name in third_party
    }


def test_the_logged_model_brings_its_code_and_pins_what_that_code_imports(
    recorded: TrainingRecord, shipped: TrainingResult, sample_buildings: pd.DataFrame, tmp_path: Path
) -> None:
    assert recorded.tracked is not None
    with using_store(recorded.tracked.tracking_uri):
        folder = Path(mlflow.artifacts.download_artifacts(CHAMPION_URI, dst_path=str(tmp_path / "model")))
    requirements = (folder / "requirements.txt").read_text().splitlines()
    # Not on any index: a serving environment could not install it, or would install someone else's.
    assert not [line for line in requirements if re.match(r"building[-_.]?energy", line, re.IGNORECASE)]
    assert (folder / "code" / "building_energy" / "models" / "pipeline.py").is_file()

    buildings = tmp_path / "buildings.pkl"
    sample_buildings.head(20).to_pickle(buildings)
    source = str(Path(building_energy.__file__).resolve().parents[1])
    loaded = subprocess.run(
        [sys.executable, "-c", _LOAD_WITHOUT_THE_PACKAGE, source, str(folder), str(buildings), PREDICTION_COLUMN],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
        timeout=600,
    )
    answer = json.loads(loaded.stdout.strip().splitlines()[-1])
    expected = load_model(shipped.model_path).predict(sample_buildings.head(20))
    assert np.array_equal(np.asarray(answer["predictions"]), expected)
    assert answer["modules"] and all(Path(m).is_relative_to(folder / "code") for m in answer["modules"])
    pinned = {re.sub(r"[-_.]+", "-", line.split("==")[0]).lower() for line in requirements}
    assert [providers for providers in _imported_distributions(answer["modules"]) if not providers & pinned] == []


def test_load_model_resolves_the_champion_uri_to_the_verified_artifact(
    recorded: TrainingRecord, shipped: TrainingResult, sample_buildings: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert recorded.tracked is not None
    monkeypatch.setenv("MLFLOW_TRACKING_URI", recorded.tracked.tracking_uri)
    by_path = load_model(shipped.model_path)
    by_uri = load_model(CHAMPION_URI)
    assert by_uri.source == CHAMPION_URI
    assert np.array_equal(by_uri.predict(sample_buildings), by_path.predict(sample_buildings))
    registry = by_uri.metadata.pop("registry")
    assert by_uri.metadata == by_path.metadata
    assert registry["run_id"] == recorded.tracked.run_id
    assert str(registry["version"]) == recorded.tracked.model_version
    pinned = load_model(f"models:/{TRACKING.registered_model}/{recorded.tracked.model_version}")
    assert np.array_equal(pinned.predict(sample_buildings), by_path.predict(sample_buildings))


def test_predict_command_takes_a_models_uri(
    recorded: TrainingRecord,
    shipped: TrainingResult,
    data_path: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert recorded.tracked is not None
    monkeypatch.setenv("MLFLOW_TRACKING_URI", recorded.tracked.tracking_uri)
    source = tmp_path / "in.csv"
    pd.read_csv(data_path, dtype=str, keep_default_na=False).head(25).to_csv(source, index=False)
    by_uri, by_path = tmp_path / "uri.csv", tmp_path / "path.csv"
    assert main(["predict", "--model", CHAMPION_URI, "--input", str(source), "--output", str(by_uri)]) == 0
    assert main(["predict", "--model", str(shipped.model_path), "--input", str(source), "--output", str(by_path)]) == 0
    assert by_uri.read_bytes() == by_path.read_bytes()


def test_an_altered_artifact_in_the_store_is_refused(recorded: TrainingRecord, monkeypatch: pytest.MonkeyPatch) -> None:
    assert recorded.tracked is not None
    monkeypatch.setenv("MLFLOW_TRACKING_URI", recorded.tracked.tracking_uri)
    run = _client(recorded).get_run(recorded.tracked.run_id)
    stored = Path(urlparse(run.info.artifact_uri).path) / "artifacts" / "model.joblib"
    original = stored.read_bytes()
    try:
        stored.write_bytes(original[:-64] + bytes(64))
        with pytest.raises(ModelIntegrityError, match=r"models:/.*does not match the recorded"):
            load_model(CHAMPION_URI)
    finally:
        stored.write_bytes(original)
    assert load_model(CHAMPION_URI).metadata["registry"]["run_id"] == recorded.tracked.run_id


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        (f"models:/{TRACKING.registered_model}@no-such-alias", "not found in the registry"),
        (f"models:/{TRACKING.registered_model}/999", "not found in the registry"),
        ("models:/", "not a registry URI"),
    ],
)
def test_unknown_registry_entries_are_clear_errors(
    recorded: TrainingRecord, monkeypatch: pytest.MonkeyPatch, uri: str, message: str
) -> None:
    assert recorded.tracked is not None
    monkeypatch.setenv("MLFLOW_TRACKING_URI", recorded.tracked.tracking_uri)
    with pytest.raises(ModelLoadError, match=message):
        load_model(uri)


def test_a_missing_store_is_an_error_and_stays_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    database = tmp_path / "mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{database}")
    with pytest.raises(ModelLoadError, match="no MLflow store"):
        load_model(CHAMPION_URI)
    assert not database.exists()
