"""How good a model is, on the kBtu scale a user reads and on the log scale it learns on."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import (
    mean_absolute_error,
    mean_absolute_percentage_error,
    mean_squared_error,
    r2_score,
)

from building_energy.data.columns import BUILDING_ID
from building_energy.data.io import sha256_file
from building_energy.data.schema import DataValidationError
from building_energy.models.metadata import recorded_target

logger = logging.getLogger(__name__)


def metrics_real(y_true: np.ndarray | pd.Series, y_pred: np.ndarray | pd.Series) -> dict[str, float]:
    """MAPE, R², RMSE, MAE, median APE on kBtu; R² on log1p(kBtu)."""
    truth = np.asarray(y_true, dtype=float)
    pred = np.asarray(y_pred, dtype=float)
    ape = np.abs(pred - truth) / np.abs(truth)
    return {
        "mape": float(mean_absolute_percentage_error(truth, pred)),
        "r2": float(r2_score(truth, pred)),
        "rmse": float(np.sqrt(mean_squared_error(truth, pred))),
        "mae": float(mean_absolute_error(truth, pred)),
        "median_ape": float(np.median(ape)),
        "r2_log": float(r2_score(np.log1p(truth), np.log1p(np.clip(pred, 0, None)))),
    }


def evaluate_model(model: Any, X: pd.DataFrame, y: pd.Series) -> dict[str, Any]:
    """``metrics_real`` of ``model`` on (X, y), plus MAPE per ``PrimaryPropertyType``."""
    return evaluate_predictions(model.predict(X), X, y)


def evaluate_predictions(predicted: Any, X: pd.DataFrame, y: pd.Series) -> dict[str, Any]:
    """``evaluate_model`` of predictions already made on X."""
    pred = np.asarray(predicted, dtype=float)
    truth = np.asarray(y, dtype=float)
    result: dict[str, Any] = metrics_real(truth, pred)
    ape = pd.Series(np.abs(pred - truth) / np.abs(truth), index=X.index)
    by_type = ape.groupby(X["PrimaryPropertyType"].astype(str)).mean().sort_index()
    result["mape_by_property_type"] = {str(k): float(v) for k, v in by_type.items()}
    result["n_rows"] = len(truth)
    return result


def format_metrics(metrics: dict[str, dict[str, Any]]) -> str:
    """A table of train and test metrics (the prototype's, measured on the same split, come with `compare`)."""
    rows = [f"{'metric':<12}{'train':>16}{'test':>16}"]
    for key in ("mape", "median_ape", "r2", "r2_log", "rmse", "mae"):
        rows.append(f"{key:<12}{metrics['train'][key]:>16,.3f}{metrics['test'][key]:>16,.3f}")
    return "\n".join(rows)


def evaluate_saved_model(model_source: str, data_path: Path | None = None) -> dict[str, Any]:
    """Metrics of a saved model on the test split recorded at its training."""
    # Imported here: training itself uses this module's metrics.
    from building_energy.models.loading import load_model
    from building_energy.models.train import TARGET_COLUMNS, prepare_xy
    from building_energy.preprocessing.preprocessor import preprocess_data

    loaded = load_model(model_source)
    metadata = loaded.metadata
    target = TARGET_COLUMNS[recorded_target(metadata)]
    path = Path(data_path or metadata["data_path"])
    data_sha256 = sha256_file(path)
    clean_buildings = preprocess_data(path, target=target)
    test_rows = clean_buildings[clean_buildings[BUILDING_ID].isin(metadata["test_ids"])]
    if test_rows.empty:
        raise DataValidationError(f"{path}: none of the {len(metadata['test_ids'])} test buildings of {model_source}")
    # Other data is a fair question (the City re-exports with corrected readings), but its answer is not the
    # recorded test score: the output says which one it is.
    same_data = data_sha256 == metadata.get("data_sha256")
    if not same_data:
        logger.warning(
            "%s is not the data %s was trained on: its test buildings are scored as they are in it", path, model_source
        )
    if len(test_rows) != len(metadata["test_ids"]):
        logger.warning(
            "%d of the %d test buildings recorded at training are in this data",
            len(test_rows),
            len(metadata["test_ids"]),
        )
    X_test, y_test = prepare_xy(test_rows, target)
    return {
        "test": evaluate_model(loaded, X_test, y_test),
        "recorded": metadata["metrics"]["test"],
        "data": {
            "path": str(path),
            "sha256": data_sha256,
            "trained_on_sha256": metadata.get("data_sha256"),
            "same_as_training": same_data,
            "test_buildings_found": len(test_rows),
            "test_buildings_recorded": len(metadata["test_ids"]),
        },
    }
