"""Training: clean buildings -> tuned base learners -> the stacked pipeline -> saved, evaluated artifacts."""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from building_energy.config import Settings, get_config
from building_energy.data.columns import BUILDING_ID, MODEL_INPUTS, TARGET_GHG, TARGET_KBTU
from building_energy.data.io import sha256_file
from building_energy.data.schema import DataValidationError
from building_energy.files import check_writable
from building_energy.models.artifacts import ARTIFACT_FILES, save_artifacts, training_lock
from building_energy.models.evaluate import evaluate_predictions
from building_energy.models.metadata import git_commit, library_versions
from building_energy.models.pipeline import (
    LEARNERS,
    build_learner_pipeline,
    build_stacking_pipeline,
    check_learner_params,
)
from building_energy.models.search import SearchResult, grid_search
from building_energy.preprocessing.preprocessor import preprocess_data, remove_outliers

logger = logging.getLogger(__name__)

# Below this the grid search's folds, the stack's folds inside them and the target encoders' folds inside
# those leave too few buildings per fold (scikit-learn stops on n_splits > n_samples, naming no file).
MIN_TRAINING_BUILDINGS = 100

TARGET_COLUMNS = {"energy": TARGET_KBTU, "ghg": TARGET_GHG}


@dataclass
class TrainingResult:
    model_path: Path
    metrics: dict[str, Any]
    best_params: dict[str, dict[str, Any]]
    metadata: dict[str, Any]
    searches: dict[str, SearchResult]


def prepare_xy(buildings: pd.DataFrame, target: str = TARGET_KBTU) -> tuple[pd.DataFrame, pd.Series]:
    """The model's inputs (never a meter reading) and the target in its natural unit."""
    present = [c for c in (BUILDING_ID, *MODEL_INPUTS) if c in buildings.columns]
    return buildings[present].copy(), buildings[target].astype(float)


def check_enough_buildings(
    model_input: pd.DataFrame, data_path: Path, config: Settings, where: str = "after cleaning and the test split"
) -> None:
    """Refuse to fit the training procedure on ``model_input``, ``data_path``'s buildings ``where``, when they
    are fewer than ``MIN_TRAINING_BUILDINGS``: one line naming the file, not scikit-learn's error from deep in a
    nested fold. ``train``, each of ``bench``'s folds and ``tune``'s studies fit on such rows."""
    if len(model_input) < MIN_TRAINING_BUILDINGS:
        raise DataValidationError(
            f"{data_path}: {len(model_input)} buildings to train on {where}; at least "
            f"{MIN_TRAINING_BUILDINGS} are needed (training nests {config.cv_folds}-fold cross-validations)"
        )


def split_buildings(clean_buildings: pd.DataFrame, config: Settings) -> tuple[pd.DataFrame, pd.DataFrame]:
    train, test = train_test_split(clean_buildings, test_size=config.test_size, random_state=config.random_state)
    return train, test


def tune_learners(
    train_buildings: pd.DataFrame, config: Settings, profile: str, use_energy_star: bool, target: str
) -> dict[str, SearchResult]:
    """One grid search per base learner, each over the whole pipeline."""
    X, y = prepare_xy(train_buildings, target)
    grids = config.grids(profile)
    return {
        name: grid_search(
            build_learner_pipeline(config, name, use_energy_star),
            grids[name],
            X,
            y,
            cv_folds=config.cv_folds,
            random_state=config.random_state,
            n_jobs=config.n_jobs,
            description=f"grid search {name}",
        )
        for name in LEARNERS
    }


def fit_stack(
    model_input: pd.DataFrame, config: Settings, profile: str, use_energy_star: bool, target_column: str
) -> tuple[Any, dict[str, SearchResult]]:
    """Tune every base learner on ``model_input`` and fit the stack of the tuned four on it."""
    searches = tune_learners(model_input, config, profile, use_energy_star, target_column)
    best_params = {name: result.best_params for name, result in searches.items()}
    model = build_stacking_pipeline(config, best_params, use_energy_star)
    X_train, y_train = prepare_xy(model_input, target_column)
    logger.info("fitting the stack of %s", ", ".join(LEARNERS))
    model.fit(X_train, y_train)
    return model, searches


def predictions_sha256(model: Any, *frames: pd.DataFrame) -> str:
    """SHA-256 of ``model``'s predictions on ``frames`` (float64, in order): the same for the same data, code and
    config, so it tells two models apart by what they compute. The model file's own checksum cannot: pickling
    a fitted pipeline is not byte-stable (and the file also holds the training date)."""
    return hash_predictions(*(model.predict(frame) for frame in frames))


def hash_predictions(*predictions: Any) -> str:
    """``predictions_sha256`` of predictions already made."""
    joined = np.concatenate([np.asarray(predicted, dtype="<f8") for predicted in predictions])
    return hashlib.sha256(joined.tobytes()).hexdigest()


def train_model(
    data_path: Path | None = None,
    output_dir: Path | None = None,
    profile: str = "full",
    use_energy_star: bool | None = None,
    target: str | None = None,
    config: Settings | None = None,
) -> TrainingResult:
    """Train, evaluate and save the stacked pipeline; nothing is written unless every step succeeded."""
    config = config or get_config()
    data_path = Path(data_path or config.paths.data)
    use_energy_star = config.use_energy_star if use_energy_star is None else use_energy_star
    target_name = target or config.target
    # A GHG model lives beside the energy model, never in its place.
    default_output = config.paths.artifacts if target_name == "energy" else config.paths.artifacts / target_name
    output_dir = Path(output_dir or default_output)
    target_column = TARGET_COLUMNS[target_name]
    config.grids(profile)  # fail on an unknown profile or parameter before any work
    check_learner_params(config)
    for name in ARTIFACT_FILES:  # not after minutes of fitting
        check_writable(output_dir / name)

    started = time.perf_counter()
    # Hashed before it is read, and again before saving: the checksum recorded is that of the bytes trained on.
    data_sha256 = sha256_file(data_path)
    clean_buildings = preprocess_data(data_path, target=target_column)
    train_rows, test_rows = split_buildings(clean_buildings, config)
    model_input = remove_outliers(train_rows)
    check_enough_buildings(model_input, data_path, config)
    logger.info("training on %d rows, testing on %d", len(model_input), len(test_rows))

    with training_lock(output_dir):
        model, searches = fit_stack(model_input, config, profile, use_energy_star, target_column)
        best_params = {name: result.best_params for name, result in searches.items()}
        X_train, y_train = prepare_xy(model_input, target_column)
        X_test, y_test = prepare_xy(test_rows, target_column)
        # Predicted once: the metrics and the predictions' checksum both read them.
        predicted_train, predicted_test = model.predict(X_train), model.predict(X_test)
        metrics = {
            "train": evaluate_predictions(predicted_train, X_train, y_train),
            "test": evaluate_predictions(predicted_test, X_test, y_test),
        }
        metrics["cv"] = {
            name: {"mean_neg_mae_log": r.best_score, "folds": r.fold_scores} for name, r in searches.items()
        }
        fitted = model.regressor_
        metadata = {
            "versions": library_versions(),
            "data_path": str(data_path),
            "data_sha256": data_sha256,
            "git_commit": git_commit(Path(__file__).parent),
            "profile": profile,
            "target": target_name,
            "use_energy_star": use_energy_star,
            "random_state": config.random_state,
            "cv_folds": config.cv_folds,
            "test_size": config.test_size,
            "n_train": len(model_input),
            "n_test": len(test_rows),
            "test_ids": [int(i) for i in test_rows[BUILDING_ID]],
            "input_features": list(fitted[:1].get_feature_names_out()),
            "feature_names": list(fitted[:-1].get_feature_names_out()),
            "metrics": metrics,
            "predictions_sha256": hash_predictions(predicted_train, predicted_test),
            "training_seconds": round(time.perf_counter() - started, 2),
            "trained_at": pd.Timestamp.now(tz="UTC").isoformat(),
        }
        if sha256_file(data_path) != data_sha256:
            raise DataValidationError(
                f"{data_path} changed while the model was training (SHA-256 was {data_sha256}); nothing was saved"
            )
        artifact = {
            "model": model,
            "encoder": fitted.named_steps["encode"].named_transformers_["target"],
            "best_params": best_params,
            "metadata": metadata,
        }
        model_path = save_artifacts(output_dir, artifact, {**metrics, "training_seconds": metadata["training_seconds"]})
    return TrainingResult(model_path, metrics, best_params, metadata, searches)
