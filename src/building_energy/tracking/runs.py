"""One MLflow run per training: what was trained, how well, from what, and the model itself."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata as package_metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from building_energy.config import Settings, get_config
from building_energy.data.columns import BUILDING_ID, MODEL_INPUTS, NUMERIC_INPUTS, PREDICTION_REQUIRED
from building_energy.data.io import sha256_file
from building_energy.models.artifacts import (
    BEST_PARAMS_FILE,
    CHECKSUM_FILE,
    METRICS_FILE,
    MODEL_FILE,
    ModelIntegrityError,
    recorded_checksum,
)
from building_energy.models.compare_pipelines import report_unit
from building_energy.models.metadata import recorded_target
from building_energy.models.predict import (
    ERROR_COLUMN,
    GHG_COLUMNS,
    LOWER_COLUMN,
    PREDICTION_COLUMN,
    UPPER_COLUMN,
)
from building_energy.models.train import TrainingResult
from building_energy.tracking.registry import (
    CV_SCORE_METRIC,
    MODEL_SHA_TAG,
    RUN_ARTIFACTS_DIR,
    STATUS_TAG,
    PromotionDecision,
    cv_score,
    promote_if_not_worse,
)
from building_energy.tracking.store import (
    check_sqlite_access,
    client,
    ensure_experiment,
    resolve_tracking_uri,
    using_store,
)

if TYPE_CHECKING:
    from mlflow.models import ModelSignature

logger = logging.getLogger(__name__)

LOGGED_MODEL_NAME = "model"
PLOTS_DIR = "plots"
REPORTED_METRICS = ("mape", "r2", "rmse", "mae", "median_ape", "r2_log")
REPRODUCIBLE_TAG = "reproducible"
WITHIN_TOLERANCE_TAG = "within_prototype_tolerance"
PROTOTYPE_MAE_RATIO_METRIC = "prototype_mae_ratio"
# The package is not on any index: the logged model carries its source (``code/building_energy``, which
# MLflow puts on sys.path before unpickling), so it needs only what that code imports when it is unpickled
# and run. Pinned rather than inferred: MLflow infers them in a slow subprocess.
_PACKAGE_DIR = Path(__file__).resolve().parents[1]
_MODEL_REQUIREMENTS = (
    # ``ScoredBuildings`` is MLflow's PythonModel.
    "mlflow",
    "scikit-learn",
    "scipy",
    "xgboost-cpu",
    "lightgbm",
    "pandas",
    "numpy",
    "joblib",
    "cloudpickle",
    "threadpoolctl",
    "pandera",
    "pydantic",
    "pydantic-settings",
    "pyyaml",
)
_INPUT_EXAMPLE_ROWS = 5


@dataclass(frozen=True)
class TrackedRun:
    run_id: str
    experiment_id: str
    tracking_uri: str
    registered_model: str
    model_version: str
    decision: PromotionDecision


def run_params(result: TrainingResult) -> dict[str, Any]:
    """The settings a run is reproduced from, and each base learner's tuned hyper-parameters."""
    metadata = result.metadata
    params: dict[str, Any] = {
        key: metadata[key]
        for key in (
            "random_state",
            "cv_folds",
            "test_size",
            "use_energy_star",
            "profile",
            "target",
            "n_train",
            "n_test",
        )
    }
    for learner, best in sorted(result.best_params.items()):
        params.update({f"{learner}.{name}": value for name, value in sorted(best.items())})
    return params


def run_metrics(result: TrainingResult) -> list[tuple[str, float, int]]:
    """(key, value, step): train/test metrics, each learner's CV mean and its folds as steps, the CV summary."""
    metrics = result.metrics
    rows = [
        (f"{split}_{key}", float(metrics[split][key]), 0) for split in ("train", "test") for key in REPORTED_METRICS
    ]
    for learner, cv in sorted(metrics["cv"].items()):
        rows.append((f"cv_{learner}_mean_neg_mae_log", float(cv["mean_neg_mae_log"]), 0))
        rows.extend((f"cv_{learner}_neg_mae_log", float(score), fold) for fold, score in enumerate(cv["folds"]))
    rows.append((CV_SCORE_METRIC, cv_score(metrics), 0))
    rows.append(("training_seconds", float(result.metadata["training_seconds"]), 0))
    return rows


PREDICTIONS_SHA_TAG = "predictions_sha256"


def run_tags(result: TrainingResult, model_sha256: str) -> dict[str, str]:
    """Provenance: code, data, libraries and the model artifact's checksum."""
    metadata = result.metadata
    tags = {
        "git_commit": str(metadata["git_commit"]),
        "data_sha256": str(metadata["data_sha256"]),
        "data_path": str(metadata["data_path"]),
        "trained_at": str(metadata["trained_at"]),
        "profile": str(metadata["profile"]),
        "target": str(metadata["target"]),
        MODEL_SHA_TAG: model_sha256,
        # What the model computes, which the file's checksum does not pin down (see train.predictions_sha256).
        PREDICTIONS_SHA_TAG: str(metadata.get(PREDICTIONS_SHA_TAG, "unknown")),
    }
    tags.update({f"version.{package}": str(version) for package, version in metadata["versions"].items()})
    return tags


def comparison_tags(comparison: Mapping[str, Any] | None) -> dict[str, str]:
    """Whether the retrain reproduced the model and the prototype check passed: ``true``, ``false``, ``unknown``."""

    def flag(value: object) -> str:
        return str(value).lower() if isinstance(value, bool) else "unknown"

    if comparison is None:
        return {REPRODUCIBLE_TAG: "unknown", WITHIN_TOLERANCE_TAG: "unknown"}
    return {
        REPRODUCIBLE_TAG: flag(comparison.get("reproducibility", {}).get("identical_predictions")),
        WITHIN_TOLERANCE_TAG: flag(comparison.get("within_tolerance")),
    }


def comparison_metrics(comparison: Mapping[str, Any] | None) -> dict[str, float]:
    """The package's test MAE over the notebook prototype's, when the comparison measured it."""
    ratio = None if comparison is None else comparison.get("mae_ratio")
    return {} if ratio is None else {PROTOTYPE_MAE_RATIO_METRIC: float(ratio)}


def promotion_veto(comparison: Mapping[str, Any] | None) -> str | None:
    """Why a version may not become the champion whatever its CV score, or ``None`` when nothing forbids it.

    A champion must be a model its training run reproduces bit for bit: one that does not (or that nobody
    checked) may be served, but only after someone looked at it and promoted it by hand.
    """
    if comparison is None:
        return "reproducibility unknown: the comparison with the notebook prototype did not run"
    repro = comparison.get("reproducibility", {})
    identical = repro.get("identical_predictions")
    if identical is True:
        return None
    if identical is False:
        return (
            "not reproducible: refitted with the same seeds, its test predictions differ by up to "
            f"{repro.get('max_abs_diff_kbtu', float('nan')):.6g} {report_unit(comparison)}"
        )
    return "reproducibility unknown: the comparison report has no reproducibility verdict"


def verified_model_sha256(model_path: Path) -> str:
    """The SHA-256 of ``model_path``, checked against its sidecar: a run never records an altered file."""
    recorded = recorded_checksum(model_path)
    actual = sha256_file(model_path)
    if recorded != actual:
        raise ModelIntegrityError(f"{model_path}: SHA-256 {actual} does not match the recorded {recorded}; not tracked")
    return actual


def model_requirements(result: TrainingResult) -> list[str]:
    """The libraries the logged model needs, at the versions it was trained with (else the installed ones)."""
    versions = dict(result.metadata["versions"])
    for package in _MODEL_REQUIREMENTS:
        if package not in versions:
            try:
                versions[package] = package_metadata.version(package)
            except package_metadata.PackageNotFoundError:
                continue
    return [f"{package}=={versions[package]}" for package in _MODEL_REQUIREMENTS if package in versions]


def model_signature(target: str = "energy") -> ModelSignature:
    """The columns the pipeline reads, typed, only ``PREDICTION_REQUIRED`` required; out, ``predict_frame``'s
    table for ``target``.

    Stated rather than inferred from the test rows: a column that happens to be filled in every test row
    would come out required, and MLflow would refuse the buildings the API scores without it.
    """
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, DataType, Schema

    def spec(column: str) -> ColSpec:
        kind = DataType.double if column in NUMERIC_INPUTS or column == BUILDING_ID else DataType.string
        return ColSpec(kind, column, required=column in PREDICTION_REQUIRED)

    # The building's id is in every frame the pipeline was fitted on (``prepare_xy``); it is never read.
    inputs = Schema([spec(column) for column in (BUILDING_ID, *MODEL_INPUTS)])
    names = GHG_COLUMNS if target == "ghg" else {}
    # Blank where a row has no id, or no estimate (the error says why): nothing but the error is always there.
    outputs = Schema(
        [
            ColSpec(DataType.long, BUILDING_ID, required=False),
            *(
                ColSpec(DataType.double, names.get(column, column), required=False)
                for column in (PREDICTION_COLUMN, LOWER_COLUMN, UPPER_COLUMN)
            ),
            ColSpec(DataType.string, ERROR_COLUMN),
        ]
    )
    return ModelSignature(inputs=inputs, outputs=outputs)


def log_registered_model(result: TrainingResult, inputs: pd.DataFrame, registered_model: str) -> Any:
    """Log ``result``'s verified model file as an MLflow ``python_function`` model (``ScoredBuildings``) with
    the package's code, and register a version."""
    import mlflow

    from building_energy.tracking.pyfunc import CHECKSUM_ARTIFACT, MODEL_ARTIFACT, ScoredBuildings

    return mlflow.pyfunc.log_model(
        name=LOGGED_MODEL_NAME,
        python_model=ScoredBuildings(),
        # The file itself, checksum beside it, rather than a re-pickled pipeline: MLflow's consumers load the
        # same verified bytes as `predict --model`.
        artifacts={
            MODEL_ARTIFACT: str(result.model_path),
            CHECKSUM_ARTIFACT: str(result.model_path.with_name(CHECKSUM_FILE)),
        },
        signature=model_signature(recorded_target(result.metadata)),
        input_example=inputs.head(_INPUT_EXAMPLE_ROWS),
        registered_model_name=registered_model,
        # ScoredBuildings and the pickled pipeline refer to building_energy's code by module: a serving
        # environment built from the requirements alone has no such package, so its source travels along.
        code_paths=[str(_PACKAGE_DIR)],
        pip_requirements=model_requirements(result),
    )


def track_training(
    result: TrainingResult,
    inputs: pd.DataFrame,
    *,
    config: Settings | None = None,
    tracking_uri: str | None = None,
    extra_files: Sequence[Path] = (),
    plots: Sequence[Path] = (),
    comparison: Mapping[str, Any] | None = None,
) -> TrackedRun:
    """Record ``result`` as a run of config ``tracking.experiment``, register its model, decide promotion.

    ``inputs`` are raw model inputs (the test rows) for the input example. ``comparison`` is what
    ``compare_on_split`` returned for this model, ``None`` when it did not run: the run records its verdicts,
    and a version that is not known to be reproducible stays a challenger (``promotion_veto``). Raises on
    any store failure: the caller decides whether that matters (``record_training`` says it does not).
    """
    import mlflow

    config = config or get_config()
    uri = resolve_tracking_uri(config, tracking_uri)
    output_dir = result.model_path.parent
    model_sha256 = verified_model_sha256(result.model_path)
    check_sqlite_access(uri, "create")
    with using_store(uri, config):
        mlflow_client = client(uri)
        experiment_id = ensure_experiment(mlflow_client, uri, config)
        with mlflow.start_run(experiment_id=experiment_id, run_name=config.tracking.run_name) as run:
            run_id = run.info.run_id
            mlflow.log_params(run_params(result))
            provenance = run_tags(result, model_sha256)
            mlflow.set_tags(provenance)
            for key, value, step in run_metrics(result):
                mlflow.log_metric(key, value, step=step)
            mlflow.set_tags(comparison_tags(comparison))
            mlflow.log_metrics(comparison_metrics(comparison))
            for name in (MODEL_FILE, CHECKSUM_FILE, BEST_PARAMS_FILE, METRICS_FILE):
                mlflow.log_artifact(str(output_dir / name), artifact_path=RUN_ARTIFACTS_DIR)
            for path in extra_files:
                mlflow.log_artifact(str(path), artifact_path=RUN_ARTIFACTS_DIR)
            for path in plots:
                mlflow.log_artifact(str(path), artifact_path=PLOTS_DIR)
            target = str(result.metadata["target"])
            name = config.tracking.model_name(target)
            info = log_registered_model(result, inputs, name)
            version = str(info.registered_model_version)
            # Provenance on the version too, so the registry alone answers "which code, data and model".
            for key in ("git_commit", "data_sha256", MODEL_SHA_TAG, PREDICTIONS_SHA_TAG):
                mlflow_client.set_model_version_tag(name, version, key, provenance[key])
            decision = promote_if_not_worse(
                mlflow_client, version, cv_score(result.metrics), config, target, veto=promotion_veto(comparison)
            )
            mlflow.set_tag(STATUS_TAG, decision.status)
            mlflow.set_tag("registered_version", version)
    logger.info("tracked run %s in %s: %s version %s", run_id, uri, name, version)
    return TrackedRun(run_id, experiment_id, uri, name, version, decision)
