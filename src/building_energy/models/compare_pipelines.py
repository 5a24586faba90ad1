"""The notebook's prototype beside the package's pipeline on the identical split, and a reproducibility check.

The prototype is the model a data scientist writes first in ``notebooks/energy_01_analyse.ipynb``: one
LightGBM on a handful of raw columns, learning log energy, trained on the raw training rows. The notebook
calls :func:`run_prototype` from here, so the baseline the report measures is the notebook's own code.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from lightgbm import LGBMRegressor
from sklearn.base import clone

from building_energy.config import PrototypeParams, Settings, get_config
from building_energy.data.columns import BUILDING_ID
from building_energy.data.schema import DataValidationError
from building_energy.files import check_writable, write_bytes_atomically
from building_energy.models.artifacts import dump_joblib_bytes, training_lock
from building_energy.models.evaluate import metrics_real
from building_energy.models.loading import LoadedModel, is_models_uri, load_model
from building_energy.models.metadata import recorded_target
from building_energy.models.predict import TARGET_UNITS
from building_energy.models.train import TARGET_COLUMNS, prepare_xy, split_buildings
from building_energy.preprocessing.preprocessor import preprocess_data, remove_outliers

logger = logging.getLogger(__name__)

REPORT_JOBLIB = "compare_report.joblib"
REPORT_JSON = "compare_report.json"
COMPARED_METRICS = ("mape", "median_ape", "r2", "r2_log", "rmse", "mae")

# What a first look at the data suggests: size, age, height, location, use and the ENERGY STAR score.
PROTOTYPE_NUMERIC = (
    "PropertyGFATotal",
    "PropertyGFABuilding(s)",
    "PropertyGFAParking",
    "LargestPropertyUseTypeGFA",
    "YearBuilt",
    "NumberofFloors",
    "NumberofBuildings",
    "Latitude",
    "Longitude",
    "ENERGYSTARScore",
)
PROTOTYPE_CATEGORICAL = ("PrimaryPropertyType", "LargestPropertyUseType")


class SplitMismatchError(ValueError):
    """The model was not trained on the split the comparison rebuilds."""


@dataclass
class Prototype:
    """The notebook's LightGBM and the category levels it saw, so test rows are coded the same way."""

    model: LGBMRegressor
    columns: list[str]
    categories: dict[str, list[str]]

    def features(self, buildings: pd.DataFrame) -> pd.DataFrame:
        return prototype_features(buildings, self.columns, self.categories)

    def predict(self, buildings: pd.DataFrame) -> np.ndarray:
        """kBtu for each building."""
        return np.expm1(np.asarray(self.model.predict(self.features(buildings)), dtype=float))


def prototype_features(buildings: pd.DataFrame, columns: list[str], categories: dict[str, list[str]]) -> pd.DataFrame:
    """Raw numbers as numbers, use types as pandas categories (LightGBM splits on them natively)."""
    frame = pd.DataFrame(index=buildings.index)
    for column in columns:
        if column in categories:
            frame[column] = pd.Categorical(
                buildings[column].astype("string").str.strip(), categories=categories[column]
            )
        else:
            frame[column] = pd.to_numeric(buildings[column], errors="coerce").astype(float)
    return frame


def fit_prototype(
    train_rows: pd.DataFrame,
    target_column: str,
    params: PrototypeParams,
    random_state: int,
    use_energy_star: bool = True,
) -> Prototype:
    """Fit the notebook's prototype on ``train_rows`` as they are (no outlier rule), on log1p of the target."""
    numeric = [c for c in PROTOTYPE_NUMERIC if use_energy_star or c != "ENERGYSTARScore"]
    columns = [*numeric, *PROTOTYPE_CATEGORICAL]
    categories = {
        column: sorted(train_rows[column].dropna().astype("string").str.strip().unique())
        for column in PROTOTYPE_CATEGORICAL
    }
    model = LGBMRegressor(
        n_estimators=params.n_estimators,
        learning_rate=params.learning_rate,
        num_leaves=params.num_leaves,
        random_state=random_state,
        n_jobs=1,
        deterministic=True,
        force_row_wise=True,
        verbose=-1,
    )
    model.fit(prototype_features(train_rows, columns, categories), np.log1p(train_rows[target_column].astype(float)))
    return Prototype(model, columns, categories)


def run_prototype(
    train_rows: pd.DataFrame,
    test_rows: pd.DataFrame,
    target_column: str,
    config: Settings | None = None,
    use_energy_star: bool = True,
) -> tuple[Prototype, dict[str, float], np.ndarray]:
    """The notebook's whole modelling step: fit on ``train_rows``, score ``test_rows``; (model, metrics, kBtu)."""
    config = config or get_config()
    prototype = fit_prototype(train_rows, target_column, config.compare.prototype, config.random_state, use_energy_star)
    predictions = prototype.predict(test_rows)
    return prototype, metrics_real(test_rows[target_column].astype(float), predictions), predictions


def recorded_split(metadata: dict[str, Any], data_path: Path, config: Settings) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The training and test rows a model was trained on, rebuilt from the data; raises when they differ."""
    target_column = TARGET_COLUMNS[recorded_target(metadata)]
    clean_buildings = preprocess_data(Path(data_path), target=target_column)
    split_config = config.model_copy(
        update={"random_state": metadata["random_state"], "test_size": metadata["test_size"]}
    )
    train_rows, test_rows = split_buildings(clean_buildings, split_config)
    recorded = sorted(int(i) for i in metadata["test_ids"])
    if sorted(int(i) for i in test_rows[BUILDING_ID]) != recorded:
        raise SplitMismatchError(
            f"{data_path}: the split of test_size={metadata['test_size']}, random_state={metadata['random_state']} "
            "does not give the "
            f"{len(recorded)} test buildings the model recorded; compare needs the data it was trained on"
        )
    return train_rows, test_rows


def relative_diff(refactor: dict[str, float], notebook: dict[str, float]) -> dict[str, float]:
    """(package - notebook) / |notebook| per metric: negative is lower (better for errors, worse for R²)."""
    return {key: (refactor[key] - notebook[key]) / abs(notebook[key]) for key in COMPARED_METRICS}


def reproducibility(
    model: Any, train_rows: pd.DataFrame, test_rows: pd.DataFrame, target_column: str, n_train: int | None = None
) -> dict[str, Any]:
    """Refit an unfitted twin of ``model`` (same hyper-parameters and seeds) on the same training rows.

    The twin must predict the test rows bit for bit like the original: any unseeded randomness, thread
    race or data-order dependence in the pipeline shows up here. ``n_train`` (recorded at training)
    guards the premise: the rows selected here must be as many as the model was fitted on.
    """
    model_input = remove_outliers(train_rows)
    if n_train is not None and len(model_input) != n_train:
        raise SplitMismatchError(
            f"the model was fitted on {n_train} training rows, the outlier rule keeps {len(model_input)} now: "
            "it was trained by another version of the row selection; retrain it"
        )
    X_train, y_train = prepare_xy(model_input, target_column)
    X_test, _ = prepare_xy(test_rows, target_column)
    twin = clone(model).fit(X_train, y_train)
    original = np.asarray(model.predict(X_test), dtype=float)
    again = np.asarray(twin.predict(X_test), dtype=float)
    return {
        "identical_predictions": bool(np.array_equal(original, again)),
        "max_abs_diff_kbtu": float(np.max(np.abs(original - again))),
        "n_predictions": len(original),
        "n_train": len(model_input),
    }


def compare_pipelines(
    model_source: str | Path | LoadedModel,
    data_path: Path | None = None,
    output_dir: Path | None = None,
    config: Settings | None = None,
) -> dict[str, Any]:
    """Score the notebook prototype and the package model on the model's own test split; check reproducibility.

    Writes ``compare_report.json`` (metrics) and ``compare_report.joblib`` (the same plus the test
    predictions, a DataFrame under ``predictions``) into ``output_dir`` and returns what the joblib holds.
    ``output_dir`` defaults to the model file's folder, so one model's report never replaces another's.
    """
    config = config or get_config()
    loaded = model_source if isinstance(model_source, LoadedModel) else load_model(model_source)
    if output_dir is None:
        if is_models_uri(loaded.source):
            raise ValueError(f"{loaded.source} has no folder of its own: say where the report goes (--output)")
        output_dir = Path(loaded.source).parent
    if data_path is None:
        # The file the model was trained on when it is still there, else the configured one; either way
        # recorded_split checks that it yields the recorded test buildings.
        recorded_file = Path(str(loaded.metadata.get("data_path", "")))
        data_path = recorded_file if recorded_file.is_file() else Path(config.paths.data)
        if not Path(data_path).is_file():
            raise DataValidationError(
                f"{loaded.source} was trained on {recorded_file}, which is gone, and the configured data "
                f"{config.paths.data} is missing too; give the data file (--data)"
            )
    for name in (REPORT_JSON, REPORT_JOBLIB):
        check_writable(Path(output_dir) / name)
    train_rows, test_rows = recorded_split(loaded.metadata, Path(data_path), config)
    # Not while a training writes the same folder (its own comparison report included).
    with training_lock(Path(output_dir)):
        return compare_on_split(loaded, train_rows, test_rows, Path(output_dir), config)


def compare_on_split(
    loaded: LoadedModel,
    train_rows: pd.DataFrame,
    test_rows: pd.DataFrame,
    output_dir: Path,
    config: Settings | None = None,
) -> dict[str, Any]:
    """``compare_pipelines`` on a split already rebuilt by ``recorded_split``."""
    config = config or get_config()
    metadata = loaded.metadata
    target_column = TARGET_COLUMNS[recorded_target(metadata)]
    use_energy_star = bool(metadata.get("use_energy_star", True))
    X_test, y_test = prepare_xy(test_rows, target_column)
    package_predictions = np.asarray(loaded.predict(X_test), dtype=float)
    refactor_metrics = metrics_real(y_test, package_predictions)
    logger.info("notebook prototype: fitting on %d raw training rows", len(train_rows))
    _, notebook_metrics, notebook_predictions = run_prototype(
        train_rows, test_rows, target_column, config, use_energy_star
    )
    logger.info("reproducibility: refitting the package pipeline with the same seeds")
    repro = reproducibility(loaded.model, train_rows, test_rows, target_column, metadata.get("n_train"))
    mae_ratio = refactor_metrics["mae"] / notebook_metrics["mae"]
    test_ids = ",".join(str(int(i)) for i in sorted(test_rows[BUILDING_ID]))
    report: dict[str, Any] = {
        "notebook_metrics": notebook_metrics,
        "refactor_metrics": refactor_metrics,
        "relative_diff": relative_diff(refactor_metrics, notebook_metrics),
        "mae_ratio": mae_ratio,
        "mae_tolerance": config.compare.mae_tolerance,
        "within_tolerance": bool(mae_ratio <= 1 + config.compare.mae_tolerance),
        "reproducibility": repro,
        "split": {
            "random_state": metadata["random_state"],
            "test_size": metadata["test_size"],
            "n_train_notebook": len(train_rows),
            "n_train_package": repro["n_train"],
            "n_test": len(test_rows),
            "test_ids_sha256": hashlib.sha256(test_ids.encode()).hexdigest(),
        },
        "model_source": str(loaded.source),
        "output_dir": str(output_dir),
        "model_profile": metadata.get("profile"),
        "data_sha256": metadata.get("data_sha256"),
        "target": target_column,
        "use_energy_star": use_energy_star,
    }
    predictions = pd.DataFrame(
        {
            BUILDING_ID: test_rows[BUILDING_ID].to_numpy(),
            "PrimaryPropertyType": test_rows["PrimaryPropertyType"].to_numpy(),
            "actual_kbtu": y_test.to_numpy(),
            "notebook_kbtu": notebook_predictions,
            "refactor_kbtu": package_predictions,
        }
    )
    output_dir = Path(output_dir)
    write_bytes_atomically(output_dir / REPORT_JSON, json.dumps(report, indent=2, sort_keys=True).encode())
    write_bytes_atomically(output_dir / REPORT_JOBLIB, dump_joblib_bytes({**report, "predictions": predictions}))
    logger.info("comparison written to %s", output_dir / REPORT_JSON)
    return {**report, "predictions": predictions}


def report_unit(report: Mapping[str, Any]) -> str:
    """The unit of a comparison's predictions (its ``*_kbtu`` fields hold tonnes for a GHG model)."""
    target = next((name for name, column in TARGET_COLUMNS.items() if column == report.get("target")), "energy")
    return TARGET_UNITS[target]


def format_report(report: dict[str, Any]) -> str:
    """The comparison as a table, then the two verdicts."""
    rows = [f"{'metric':<12}{'notebook':>18}{'package':>18}{'rel. diff':>12}"]
    for key in COMPARED_METRICS:
        rows.append(
            f"{key:<12}{report['notebook_metrics'][key]:>18,.3f}{report['refactor_metrics'][key]:>18,.3f}"
            f"{report['relative_diff'][key]:>+12.1%}"
        )
    repro = report["reproducibility"]
    verdict = "within" if report["within_tolerance"] else "NOT within"
    rows.append(
        f"package test MAE is {report['mae_ratio']:.3f} x the notebook's: {verdict} the "
        f"{report['mae_tolerance']:.0%} tolerance"
    )
    rows.append(
        "reproducible: retrained with the same seed, bit-identical predictions"
        if repro["identical_predictions"]
        else f"NOT reproducible: retrained predictions differ by up to {repro['max_abs_diff_kbtu']:.6g} "
        f"{report_unit(report)}"
    )
    return "\n".join(rows)
