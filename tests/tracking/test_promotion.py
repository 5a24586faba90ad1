"""Champion or challenger: the promotion rule, concurrent promotions, a real worse training through the CLI,
rollback, no store."""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import logging
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.entities import Run
from mlflow.exceptions import MlflowException

from building_energy.cli import main
from building_energy.config import get_config
from building_energy.loopback import free_port
from building_energy.models.artifacts import ModelLoadError, load_artifact
from building_energy.models.train import TrainingResult
from building_energy.tracking.record import TrainingRecord
from building_energy.tracking.registry import (
    CV_SCORE_METRIC,
    PromotionDecision,
    decide_promotion,
    load_registered_model,
    promote_if_not_worse,
    promote_version,
)
from building_energy.tracking.runs import track_training
from building_energy.tracking.store import TrackingError, client, ensure_experiment
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


@dataclass
class Registry:
    """A real registry (SQLite in the test's folder) with a registered model per target."""

    uri: str
    client: MlflowClient
    experiment: str

    def register(self, cv_score: float, target: str = "energy") -> str:
        """A version whose run records ``cv_score``, as a training's does."""
        run = self.client.create_run(self.experiment, tags={"target": target})
        self.client.log_metric(run.info.run_id, CV_SCORE_METRIC, cv_score)
        self.client.set_terminated(run.info.run_id)
        source = f"{run.info.artifact_uri}/model"
        return str(self.client.create_model_version(TRACKING.model_name(target), source, run.info.run_id).version)

    def champion(self, target: str = "energy") -> str:
        name = TRACKING.model_name(target)
        return str(self.client.get_model_version_by_alias(name, TRACKING.champion_alias).version)

    def status(self, version: str) -> str:
        return str(self.client.get_model_version(TRACKING.registered_model, version).tags["status"])


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    uri = sqlite_uri(tmp_path)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.create_experiment("promotion", artifact_location=(tmp_path / "artifacts").as_uri())
    for target in ("energy", "ghg"):
        client.create_registered_model(TRACKING.model_name(target))
    return Registry(uri, client, experiment)


def test_the_champion_alias_follows_the_rule_in_a_real_registry(registry: Registry) -> None:
    config = get_config()
    client, register, champion = registry.client, registry.register, registry.champion

    first = register(-0.40, "energy")
    assert promote_if_not_worse(client, first, -0.40, config, "energy").promote
    slightly_worse = register(-0.40 - TRACKING.promotion_tolerance / 2, "energy")
    assert promote_if_not_worse(
        client, slightly_worse, -0.40 - TRACKING.promotion_tolerance / 2, config, "energy"
    ).promote
    assert champion() == slightly_worse
    demoted = client.get_model_version(TRACKING.registered_model, first)
    assert demoted.tags["status"] == "challenger"
    assert demoted.tags["promotion_reason"] == f"replaced as {TRACKING.champion_alias} by version {slightly_worse}"
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


def test_a_promotion_waits_for_the_lock_then_compares_with_the_champion_it_finds(
    registry: Registry, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Two trainings finishing together: the one that finishes second compares with the first one's result."""
    config = get_config()
    first = registry.register(-0.50)
    promote_if_not_worse(registry.client, first, -0.50, config)
    candidate, better = registry.register(-0.45), registry.register(-0.40)
    assert TRACKING.promotion_tolerance < 0.05  # the premise: `better` beats the candidate beyond the tolerance
    outcome: list[PromotionDecision | BaseException] = []
    progressed = threading.Event()

    class WaitingForTheLock(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "waiting for another promotion" in record.getMessage():
                progressed.set()

    def promote() -> None:
        try:
            outcome.append(promote_if_not_worse(MlflowClient(registry.uri, registry.uri), candidate, -0.45, config))
        except BaseException as error:  # reported by the test thread, not lost in this one
            outcome.append(error)
        finally:
            progressed.set()

    logger = logging.getLogger("building_energy.tracking.registry")
    handler = WaitingForTheLock()
    logger.addHandler(handler)
    try:
        with (
            caplog.at_level(logging.INFO, logger=logger.name),
            (tmp_path / "mlflow.db.promotion.lock").open("a") as held,
        ):
            fcntl.flock(held, fcntl.LOCK_EX)  # the other training's promotion, in progress
            promoting = threading.Thread(target=promote, daemon=True)
            promoting.start()
            progressed.wait()
            # Deterministic: the promotion either reports it is blocked on the lock or has finished without it.
            assert not outcome, f"the promotion went ahead while another held the lock: {outcome}"
            registry.client.set_registered_model_alias(TRACKING.registered_model, TRACKING.champion_alias, better)
            fcntl.flock(held, fcntl.LOCK_UN)
            promoting.join()
    finally:
        logger.removeHandler(handler)
    (decision,) = outcome
    assert isinstance(decision, PromotionDecision), decision
    assert not decision.promote
    assert f"vs champion version {better}'s" in decision.reason
    assert registry.champion() == better
    assert registry.status(candidate) == "challenger"


class OvertakenClient(MlflowClient):
    """A real client on which another training's promotion lands while this one reads the champion's score.

    The interleaving a tracking server allows (no lock spans hosts), made deterministic.
    """

    def __init__(self, uri: str, overtaker: str) -> None:
        super().__init__(tracking_uri=uri, registry_uri=uri)
        self.overtaker: str | None = overtaker

    def get_run(self, run_id: str) -> Run:
        run = super().get_run(run_id)
        if self.overtaker is not None:
            overtaker, self.overtaker = self.overtaker, None
            self.set_registered_model_alias(TRACKING.registered_model, TRACKING.champion_alias, overtaker)
        return run


def test_a_champion_that_moves_during_the_comparison_is_compared_with_again(
    registry: Registry, caplog: pytest.LogCaptureFixture
) -> None:
    config = get_config()
    first = registry.register(-0.50)
    promote_if_not_worse(registry.client, first, -0.50, config)
    candidate, better = registry.register(-0.45), registry.register(-0.40)
    with caplog.at_level(logging.INFO, logger="building_energy.tracking.registry"):
        decision = promote_if_not_worse(OvertakenClient(registry.uri, better), candidate, -0.45, config)
    assert not decision.promote  # better than `first`, which it was compared with first, but not than `better`
    assert f"vs champion version {better}'s" in decision.reason
    assert registry.champion() == better
    assert registry.status(candidate) == "challenger"
    assert f"champion moved from version {first} to {better} while version {candidate} was compared" in caplog.text


def test_promote_refuses_a_store_that_does_not_exist(tmp_path: Path) -> None:
    uri = sqlite_uri(tmp_path)
    with pytest.raises(TrackingError, match=r"no MLflow store at .*mlflow\.db; train a model"):
        promote_version(1, tracking_uri=uri)
    assert list(tmp_path.iterdir()) == []  # not even an empty store left behind


@contextlib.contextmanager
def write_locked(uri: str) -> Iterator[None]:
    """Another process's write transaction on the store, as a training or the UI holds one: reads go on, every
    write fails once SQLite's busy timeout (MLflow's: 20 s) runs out. A failed write root cannot bypass."""
    database = uri.removeprefix("sqlite:///")
    connection = sqlite3.connect(database, isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")
        yield
    finally:
        connection.close()


@pytest.mark.slow
def test_promote_on_a_store_that_refuses_writes_says_so_in_one_line(
    registry: Registry, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """The version is read, then setting the alias fails: one line naming the store and the cause, exit 2, and
    none of MLflow's tracebacks of the statement."""
    version = registry.register(-0.5)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", registry.uri)
    with write_locked(registry.uri):
        assert main(["promote", "--version", version]) == 2
    error = capfd.readouterr().err
    assert error == (
        f"error: the MLflow store at {registry.uri} could not be written: OperationalError: database is locked\n"
    ), error
    with pytest.raises(MlflowException, match="not found"):
        registry.champion()  # nothing moved


@contextlib.contextmanager
def refusing_writes(uri: str, table: str, when: str = "1") -> Iterator[None]:
    """Triggers in the real store that abort every insert and update of ``table`` where ``when`` holds: the
    store fails one kind of write and takes the others, as a server may refuse one request of several."""
    database = uri.removeprefix("sqlite:///")
    triggers = [f"refuse_{table}_{event.lower()}" for event in ("INSERT", "UPDATE")]
    connection = sqlite3.connect(database, isolation_level=None)
    try:
        for trigger, event in zip(triggers, ("INSERT", "UPDATE"), strict=True):
            connection.execute(
                f"CREATE TRIGGER {trigger} BEFORE {event} ON {table} WHEN {when} "
                "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
            )
        yield
    finally:
        for trigger in triggers:
            connection.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        connection.close()


@pytest.fixture
def champion_and_next(
    registry: Registry, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> tuple[str, str]:
    """Two versions, the first made champion by `building-energy promote` on the registry's store."""
    first, second = registry.register(-0.5), registry.register(-0.4)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", registry.uri)
    assert main(["promote", "--version", first]) == 0
    capfd.readouterr()
    return first, second


def test_a_hand_promotion_whose_tags_cannot_be_written_moves_the_alias_back(
    registry: Registry, champion_and_next: tuple[str, str], capfd: pytest.CaptureFixture[str]
) -> None:
    first, second = champion_and_next
    with refusing_writes(registry.uri, "model_version_tags"):
        assert main(["promote", "--version", second]) == 2
    assert capfd.readouterr().err == (
        f"error: the MLflow store at {registry.uri} could not be written: IntegrityError: refused by the test; "
        f"building-energy@champion is back on version {first} (version {second} not promoted)\n"
    )
    assert registry.champion() == first  # the alias, and the tags that say so, agree
    assert registry.status(first) == "champion"
    assert "status" not in registry.client.get_model_version(TRACKING.registered_model, second).tags


def test_a_promotion_that_cannot_move_the_alias_back_says_where_it_was_left(
    registry: Registry, champion_and_next: tuple[str, str], capfd: pytest.CaptureFixture[str]
) -> None:
    first, second = champion_and_next
    with (
        refusing_writes(registry.uri, "model_version_tags"),
        refusing_writes(registry.uri, "registered_model_aliases", when=f"NEW.version = {first}"),
    ):
        assert main(["promote", "--version", second]) == 2
    assert capfd.readouterr().err == (
        f"error: the MLflow store at {registry.uri} could not be written: IntegrityError: refused by the test; "
        f"moving building-energy@champion back to version {first} failed too (IntegrityError: refused by the "
        f"test): building-energy@champion is left on version {second}, whose status tags are stale\n"
    )
    assert registry.champion() == second


def test_a_first_promotion_whose_tags_cannot_be_written_leaves_no_champion(registry: Registry) -> None:
    version = registry.register(-0.5)
    with (
        refusing_writes(registry.uri, "model_version_tags"),
        pytest.raises(TrackingError, match="refused by the test; building-energy@champion is back on no version"),
    ):
        promote_if_not_worse(registry.client, version, -0.5, get_config())
    with pytest.raises(MlflowException, match="not found"):
        registry.champion()


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
    shipped: TrainingResult,
    recorded: TrainingRecord,
    held_out_inputs: pd.DataFrame,
    data_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> CliTraining:
    """A store whose champion is the shipped model, then `building-energy train --profile tiny` into it."""
    folder = tmp_path_factory.mktemp("promotion")
    uri = sqlite_uri(folder / "store")
    # With its real comparison: a version not known to be reproducible is never made champion.
    champion = track_training(
        copy_of(shipped, folder / "champion"), held_out_inputs, tracking_uri=uri, comparison=recorded.comparison
    )
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


@pytest.mark.slow
@pytest.mark.integration
@TRAINING_FIXTURE_TIMEOUT
def test_a_store_that_refuses_writes_never_takes_training_down_and_the_warning_says_why(
    data_path: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """MLflow's first line of this failure is SQLAlchemy's note "raised as a result of Query-invoked
    autoflush"; the warning carries the driver's cause instead, and MLflow's own log of it no traceback."""
    uri = sqlite_uri(tmp_path / "store")
    ensure_experiment(client(uri), uri)  # the run is the first write
    with write_locked(uri):
        result = _train_tiny(data_path, tmp_path / "artifacts", uri)
    captured = capfd.readouterr()
    assert result.code == 0
    assert f"warning: MLflow tracking to {uri} failed (OperationalError: database is locked); " in result.stdout
    assert "Traceback" not in captured.err
    assert load_artifact(result.output / "model.joblib")["metadata"]["profile"] == "tiny"


def test_a_store_that_cannot_be_read_is_not_reported_as_a_missing_version(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A corrupt database or a dead server is the store's fault: saying the version does not exist would send
    the user looking for the wrong thing (and a corrupt file gave a traceback)."""
    corrupt = tmp_path / "mlflow.db"
    corrupt.write_bytes(b"this is not an SQLite database " * 100)
    dead_server = f"http://127.0.0.1:{free_port()}"
    for store in (f"sqlite:///{corrupt}", dead_server):
        monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
        assert main(["promote", "--version", "1"]) == 2
        error = capsys.readouterr().err
        assert error.startswith(f"error: the MLflow store at {store} could not be read: "), error
        assert "has no version" not in error and "Traceback" not in error
        assert len(error.strip().splitlines()) == 1
        with pytest.raises(ModelLoadError, match=r"models:/building-energy@champion: the MLflow store at .* could not"):
            load_registered_model("models:/building-energy@champion")
