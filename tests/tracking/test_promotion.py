"""Champion or challenger: the promotion rule, a real worse training through the CLI, rollback, no store."""

from __future__ import annotations

import contextlib
import io
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient

from building_energy.cli import main
from building_energy.config import get_config
from building_energy.models.artifacts import load_artifact
from building_energy.models.train import TrainingResult
from building_energy.tracking.registry import CV_SCORE_METRIC, decide_promotion, promote_if_not_worse
from building_energy.tracking.runs import track_training
from tests.tracking.helpers import TRAINING_FIXTURE_TIMEOUT, TRAINING_OUTPUTS, copy_of, sqlite_uri

TRACKING = get_config().tracking


def test_the_first_version_is_promoted() -> None:
    decision = decide_promotion(-0.5, None, 0.01)
    assert decision.promote
    assert "first version" in decision.reason


@pytest.mark.parametrize(
    ("candidate", "champion", "promote"),
    [(-0.40, -0.40, True), (-0.405, -0.40, True), (-0.35, -0.40, True), (-0.42, -0.40, False)],
)
def test_a_version_is_promoted_unless_worse_beyond_the_tolerance(
    candidate: float, champion: float, promote: bool
) -> None:
    decision = decide_promotion(candidate, champion, 0.01, champion_version="1")
    assert decision.promote is promote
    assert "champion version 1" in decision.reason
    assert decision.status == ("champion" if promote else "challenger")


def test_the_champion_alias_follows_the_rule_in_a_real_registry(tmp_path: Path) -> None:
    config = get_config()
    uri = sqlite_uri(tmp_path)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.create_experiment("promotion", artifact_location=(tmp_path / "artifacts").as_uri())
    for target in ("energy", "ghg"):
        client.create_registered_model(TRACKING.model_name(target))

    def register(cv_score: float, target: str) -> str:
        run = client.create_run(experiment, tags={"target": target})
        client.log_metric(run.info.run_id, CV_SCORE_METRIC, cv_score)
        client.set_terminated(run.info.run_id)
        source = f"{run.info.artifact_uri}/model"
        return str(client.create_model_version(TRACKING.model_name(target), source, run.info.run_id).version)

    def champion(target: str = "energy") -> str:
        return str(client.get_model_version_by_alias(TRACKING.model_name(target), TRACKING.champion_alias).version)

    first = register(-0.40, "energy")
    assert promote_if_not_worse(client, first, -0.40, config, "energy").promote
    slightly_worse = register(-0.40 - TRACKING.promotion_tolerance / 2, "energy")
    assert promote_if_not_worse(
        client, slightly_worse, -0.40 - TRACKING.promotion_tolerance / 2, config, "energy"
    ).promote
    assert champion() == slightly_worse
    demoted = client.get_model_version(TRACKING.registered_model, first)
    assert demoted.tags["status"] == "challenger"
    assert client.get_run(demoted.run_id).data.tags["status"] == "challenger"  # the runs table agrees
    # A GHG model has a registered model and a champion of its own: it never replaces the energy champion.
    ghg = register(-0.10, "ghg")
    decision = promote_if_not_worse(client, ghg, -0.10, config, "ghg")
    assert decision.promote and decision.reason == "first version: no champion yet"
    assert champion("ghg") == ghg and TRACKING.model_name("ghg") == f"{TRACKING.registered_model}-ghg"
    assert champion() == slightly_worse
    much_worse = register(-0.60, "energy")
    decision = promote_if_not_worse(client, much_worse, -0.60, config, "energy")
    assert not decision.promote
    version = client.get_model_version(TRACKING.registered_model, much_worse)
    assert version.tags["status"] == "challenger"
    assert version.tags["promotion_reason"] == decision.reason
    assert champion() == slightly_worse


@dataclass
class CliTraining:
    code: int
    stdout: str
    output: Path
    uri: str


def _train_tiny(data_path: Path, output: Path, uri: str) -> CliTraining:
    buffer = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(buffer):
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        code = main(["train", "--data", str(data_path), "--output", str(output), "--profile", "tiny"])
    return CliTraining(code, buffer.getvalue(), output, uri)


@pytest.fixture(scope="module")
def worse_training(
    trained: TrainingResult, held_out_inputs: pd.DataFrame, data_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> CliTraining:
    """A store whose champion is the session's `fast` model, then `building-energy train --profile tiny` into it."""
    folder = tmp_path_factory.mktemp("promotion")
    uri = sqlite_uri(folder / "store")
    champion = track_training(copy_of(trained, folder / "champion"), held_out_inputs, tracking_uri=uri)
    assert champion.model_version == "1"
    return _train_tiny(data_path, folder / "tiny", uri)


@pytest.mark.slow
@pytest.mark.integration
@TRAINING_FIXTURE_TIMEOUT
def test_a_worse_training_stays_challenger_and_the_cli_says_why(worse_training: CliTraining) -> None:
    assert worse_training.code == 0
    client = MlflowClient(tracking_uri=worse_training.uri, registry_uri=worse_training.uri)
    champion = client.get_model_version_by_alias(TRACKING.registered_model, TRACKING.champion_alias)
    challenger = client.get_model_version(TRACKING.registered_model, "2")
    champion_error = -client.get_run(champion.run_id).data.metrics[CV_SCORE_METRIC]
    challenger_error = -client.get_run(challenger.run_id).data.metrics[CV_SCORE_METRIC]
    # The premise: the under-fitted profile really is worse than the champion by more than the tolerance.
    assert challenger_error > champion_error + TRACKING.promotion_tolerance
    assert str(champion.version) == "1"
    assert challenger.tags["status"] == "challenger"
    assert f"{TRACKING.registered_model} version 2: challenger (worse by" in worse_training.stdout
    assert f"{challenger_error:.4f} vs champion version 1's {champion_error:.4f}" in worse_training.stdout


@pytest.mark.slow
@pytest.mark.integration
@TRAINING_FIXTURE_TIMEOUT
def test_promote_rolls_the_champion_to_any_version(
    worse_training: CliTraining, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", worse_training.uri)
    client = MlflowClient(tracking_uri=worse_training.uri, registry_uri=worse_training.uri)

    def champion() -> str:
        return str(client.get_model_version_by_alias(TRACKING.registered_model, TRACKING.champion_alias).version)

    try:
        assert main(["promote", "--version", "2"]) == 0
        assert champion() == "2"
        assert "is version 2 (was 1)" in capsys.readouterr().out
        for number, status in (("1", "challenger"), ("2", "champion")):
            version = client.get_model_version(TRACKING.registered_model, number)
            assert version.tags["status"] == client.get_run(version.run_id).data.tags["status"] == status
        assert main(["promote", "--version", "7"]) == 2
        assert "has no version 7" in capsys.readouterr().err
        assert champion() == "2"
    finally:
        assert main(["promote", "--version", "1"]) == 0
    assert champion() == "1"


@pytest.mark.slow
@pytest.mark.integration
@TRAINING_FIXTURE_TIMEOUT
def test_compare_command_reports_on_any_saved_model(
    worse_training: CliTraining,
    data_path: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model = worse_training.output / "model.joblib"
    code = main(["compare", "--model", str(model), "--data", str(data_path), "--output", str(tmp_path)])
    report = json.loads((tmp_path / "compare_report.json").read_text())
    assert set(report) >= {"notebook_metrics", "refactor_metrics", "relative_diff", "reproducibility"}
    assert (tmp_path / "compare_report.joblib").is_file()
    assert report["refactor_metrics"]["mae"] == pytest.approx(
        load_artifact(model)["metadata"]["metrics"]["test"]["mae"]
    )
    # The deliberately under-fitted profile is far behind the prototype: the command fails, and says so.
    assert report["mae_ratio"] > 1 + report["mae_tolerance"] and not report["within_tolerance"]
    assert report["reproducibility"]["identical_predictions"]
    assert code == 1
    assert "notebook" in capsys.readouterr().out

    # Without --output the report goes beside the model it is about, never over another model's.
    beside = worse_training.output / "compare_report.json"
    beside.unlink()
    assert main(["compare", "--model", str(model), "--data", str(data_path)]) == 1
    assert json.loads(beside.read_text())["model_source"] == str(model)
    # A registry model has no folder of its own.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", worse_training.uri)
    assert main(["compare", "--model", f"models:/{TRACKING.registered_model}/2", "--data", str(data_path)]) == 2
    assert "say where the report goes (--output)" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.integration
@TRAINING_FIXTURE_TIMEOUT
def test_an_unreachable_store_never_takes_training_down(
    data_path: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    dead = "http://127.0.0.1:9"  # the discard port: nothing listens on loopback
    with caplog.at_level(logging.WARNING, logger="building_energy.tracking"):
        result = _train_tiny(data_path, tmp_path / "artifacts", dead)
    assert result.code == 0
    assert f"warning: MLflow tracking to {dead} failed" in result.stdout
    assert any(r.levelno == logging.WARNING and dead in r.getMessage() for r in caplog.records)
    written = {p.relative_to(result.output).as_posix() for p in result.output.rglob("*") if p.is_file()}
    assert written >= TRAINING_OUTPUTS
    assert load_artifact(result.output / "model.joblib")["metadata"]["profile"] == "tiny"
