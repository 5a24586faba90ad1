"""What the dashboard computes, without Streamlit: every number goes through the package's own model and data code.

Nothing here engineers a feature: a building is a raw City record handed to the same ``predict_frame`` as
``building-energy predict``; model diagnostics call the loaded model on raw records of the test split.
"""

from __future__ import annotations

import logging
import math
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from building_energy.config import Settings
from building_energy.data.columns import (
    BUILDING_ID,
    CATEGORICAL_INPUTS,
    MODEL_INPUTS,
    NUMERIC_INPUTS,
    TARGET_KBTU,
    TEXT_INPUTS,
)
from building_energy.data.schema import DataValidationError
from building_energy.models.artifacts import MODEL_FILE
from building_energy.models.loading import LoadedModel
from building_energy.models.metadata import recorded_target
from building_energy.models.predict import ERROR_COLUMN, PREDICTION_COLUMN, predict_csv
from building_energy.models.train import TARGET_COLUMNS, prepare_xy
from building_energy.preprocessing.categories import normalise_category
from building_energy.preprocessing.preprocessor import remove_outliers

logger = logging.getLogger(__name__)

PREDICTION_PREFIX = "predicted_"
# Bounds issue 6 adds to predict_frame's output (``lower_kbtu``/``upper_kbtu``, ...); shown when present.
INTERVAL_PREFIXES = ("lower_", "upper_")
EUI_COLUMN = "eui_kbtu_per_sqft"


def model_source(config: Settings) -> str:
    """Where the dashboard's model comes from: the configured source, else the model ``make train`` writes."""
    return config.dashboard.model_source or str(config.paths.artifacts / MODEL_FILE)


def training_data_path(metadata: Mapping[str, Any], config: Settings) -> Path:
    """The file the model was trained on (its test ids refer to it), or the configured data when it is gone."""
    recorded = metadata.get("data_path")
    if recorded and Path(recorded).is_file():
        return Path(recorded)
    return Path(config.paths.data)


def target_name(metadata: Mapping[str, Any]) -> str:
    return recorded_target(metadata)


def target_column(metadata: Mapping[str, Any]) -> str:
    return TARGET_COLUMNS[target_name(metadata)]


# --- categories and form rows ------------------------------------------------------------------------------


def category_choices(values: pd.Series) -> dict[str, str]:
    """Normalised category -> the spelling the City uses most for it (``DOWNTOWN`` and ``Downtown`` are one)."""
    frame = pd.DataFrame({"key": normalise_category(values), "raw": values.astype(object)}).dropna()
    if frame.empty:
        return {}
    spelling = frame.groupby("key")["raw"].agg(lambda s: str(s.value_counts().index[0]))
    return {str(k): str(v) for k, v in sorted(spelling.items(), key=lambda kv: str(kv[1]).lower())}


def display_category(value: object, choices: Mapping[str, str]) -> str | None:
    """The displayed spelling of ``value`` (any spelling the City wrote), ``None`` when missing or unknown."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    key = normalise_category(pd.Series([value])).iloc[0]
    return choices.get(str(key)) if isinstance(key, str) else None


def most_common(values: pd.Series, choices: Mapping[str, str]) -> str | None:
    keys = normalise_category(values).dropna()
    return choices.get(str(keys.mode().iloc[0])) if not keys.empty else None


def building_row(values: Mapping[str, Any], base: pd.Series | None = None) -> pd.DataFrame:
    """One raw City record with the model's input columns: an existing building's (if any) overlaid by ``values``.

    Column names and types are those of a row of the City's CSV as ``read_buildings_csv`` returns it, so the
    prediction is the one ``building-energy predict`` gives for the same row.
    """
    record: dict[str, Any] = dict.fromkeys(MODEL_INPUTS)
    if base is not None:
        record.update({column: base[column] for column in MODEL_INPUTS if column in base.index})
    unknown = sorted(set(values) - set(MODEL_INPUTS))
    if unknown:
        raise ValueError(f"not model inputs: {unknown}")
    record.update(values)
    frame = pd.DataFrame([record], columns=list(MODEL_INPUTS))
    for column in NUMERIC_INPUTS:
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    for column in (*CATEGORICAL_INPUTS, *TEXT_INPUTS):
        frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
    return frame


def building_labels(buildings: pd.DataFrame) -> dict[int, str]:
    """``OSEBuildingID`` -> "name (id)", sorted by name, for the prefill select box."""
    names = buildings.get("PropertyName", pd.Series("", index=buildings.index)).fillna("").astype(str).str.strip()
    ids = buildings[BUILDING_ID].astype(int)
    labels = {int(i): f"{name or 'unnamed'} ({int(i)})" for i, name in zip(ids, names, strict=True)}
    return dict(sorted(labels.items(), key=lambda kv: kv[1].lower()))


def building_by_id(buildings: pd.DataFrame, building_id: int) -> pd.Series:
    rows = buildings.loc[buildings[BUILDING_ID].astype(int) == int(building_id)]
    if rows.empty:
        raise KeyError(f"no building with {BUILDING_ID} {building_id}")
    return rows.iloc[0]


# --- one prediction ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Peers:
    """The median of the training buildings of one property type."""

    property_type: str
    count: int
    median_target: float
    median_per_sqft: float


def training_rows(buildings: pd.DataFrame, metadata: Mapping[str, Any]) -> pd.DataFrame:
    """The buildings the model was trained on: every clean building not in its recorded test split, bar the
    ones the City flagged as outliers."""
    test_ids = set(metadata.get("test_ids", []))
    return remove_outliers(buildings.loc[~buildings[BUILDING_ID].astype(int).isin(test_ids)])


def similar_buildings(buildings: pd.DataFrame, property_type: str, target: str = TARGET_KBTU) -> Peers | None:
    """Median target and target per sq ft of the buildings of ``property_type`` (any spelling)."""
    wanted = normalise_category(pd.Series([property_type])).iloc[0]
    peers = buildings.loc[normalise_category(buildings["PrimaryPropertyType"]) == wanted]
    if peers.empty:
        return None
    values = peers[target].astype(float)
    per_sqft = values / peers["PropertyGFATotal"].astype(float)
    return Peers(property_type, len(peers), float(values.median()), float(per_sqft.median()))


def _decimals(value: float, least: int) -> int:
    """At least ``least`` decimals, more to keep three significant digits of a small ``value``."""
    return least if not np.isfinite(value) or value == 0 else max(least, 2 - math.floor(math.log10(abs(value))))


def _amount(value: float) -> str:
    return f"{value:,.{_decimals(value, 0)}f}"


def amount_text(value: float, unit: str) -> str:
    """A whole number with thousands separators, or three significant digits when smaller: a small building
    emits a fraction of a ton of CO2e, which no decimals showed as 0."""
    return f"{_amount(value)} {unit}"


def range_text(low: float, high: float, unit: str) -> str:
    """An interval's bounds as ``amount_text`` writes each."""
    return f"{_amount(low)} – {_amount(high)} {unit}"


def per_sqft_text(value: float, unit: str) -> str:
    """``value`` per square foot with one decimal, or three significant digits when smaller: tons of CO2e per
    sq ft are thousandths, and one decimal showed them as 0.0."""
    return f"{value:,.{_decimals(value, 1)}f} {unit}/sq ft"


def predicted_value(predictions: pd.DataFrame) -> float:
    """The first prediction, whatever the target names its column (``predicted_site_energy_kbtu``, ...)."""
    columns = [c for c in predictions.columns if str(c).startswith(PREDICTION_PREFIX)]
    column = PREDICTION_COLUMN if PREDICTION_COLUMN in predictions.columns else columns[0]
    return float(predictions[column].iloc[0])


def prediction_interval(predictions: pd.DataFrame) -> tuple[float, float] | None:
    """The interval of the first prediction when the model provides one (issue 6), else ``None``."""
    bounds = [[c for c in predictions.columns if str(c).startswith(prefix)] for prefix in INTERVAL_PREFIXES]
    if not all(bounds):
        return None
    lower, upper = (float(predictions[found[0]].iloc[0]) for found in bounds)
    return (lower, upper) if np.isfinite(lower) and np.isfinite(upper) else None


def top_drivers(loaded: LoadedModel, row: pd.DataFrame, top: int) -> pd.DataFrame:
    """The ``top`` input fields that move this one-row prediction most (SHAP), as ``field`` and ``factor``."""
    (drivers,) = loaded.explain(row, top_k=top)
    return pd.DataFrame.from_records(drivers)


# --- batch scoring -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchResult:
    predictions: pd.DataFrame
    csv: bytes

    @property
    def failed(self) -> pd.DataFrame:
        """Rows without a prediction, with their CSV line (the header is line 1) and reason."""
        bad = self.predictions.loc[self.predictions[ERROR_COLUMN] != ""]
        lines = pd.Series(bad.index + 2, index=bad.index, name="csv_line")
        return pd.concat([lines, bad], axis=1).reset_index(drop=True)


def score_upload(
    loaded: LoadedModel, payload: bytes, filename: str, max_bytes: int, allow_absent_columns: bool = False
) -> BatchResult:
    """Score an uploaded CSV as ``building-energy predict`` does; ``DataValidationError`` on a bad file."""
    if len(payload) > max_bytes:
        raise DataValidationError(f"{filename}: {len(payload):,} bytes is over the {max_bytes:,}-byte upload limit")
    with tempfile.TemporaryDirectory(prefix="be-upload-") as folder:
        # The user's file name never becomes a path; it only names the file in messages.
        source, output = Path(folder) / "upload.csv", Path(folder) / "predictions.csv"
        source.write_bytes(payload)
        try:
            predictions = predict_csv(loaded, source, output, allow_absent_columns=allow_absent_columns)
        except DataValidationError as error:
            # The same kind of error (the page tells a file without some columns from any other bad file).
            raise type(error)(str(error).replace(str(source), filename)) from error
        return BatchResult(predictions, output.read_bytes())


# --- model diagnostics ---------------------------------------------------------------------------------------


def holdout_inputs(buildings: pd.DataFrame, metadata: Mapping[str, Any]) -> tuple[pd.DataFrame, pd.Series]:
    """The model's inputs and target for the test buildings recorded at its training."""
    rows = buildings.loc[buildings[BUILDING_ID].astype(int).isin(set(metadata.get("test_ids", [])))]
    if rows.empty:
        raise DataValidationError("none of the model's recorded test buildings is in this data file")
    X, y = prepare_xy(rows.reset_index(drop=True), target_column(metadata))
    return X, y


def holdout_predictions(loaded: LoadedModel, X: pd.DataFrame, y: pd.Series) -> pd.DataFrame:
    """Actual and predicted target of each test building, with the log10 ratio predicted/actual."""
    predicted = np.asarray(loaded.predict(X), dtype=float)
    return pd.DataFrame(
        {
            BUILDING_ID: X[BUILDING_ID].astype(int).to_numpy(),
            "PrimaryPropertyType": X["PrimaryPropertyType"].to_numpy(),
            "actual": y.to_numpy(dtype=float),
            "predicted": predicted,
            "log10_ratio": np.log10(np.clip(predicted, 1e-9, None) / y.to_numpy(dtype=float)),
        }
    )


def _log_mae(truth: np.ndarray, predicted: np.ndarray) -> float:
    return float(np.mean(np.abs(np.log1p(np.clip(predicted, 0, None)) - np.log1p(truth))))


def permutation_importance(
    loaded: LoadedModel, X: pd.DataFrame, y: pd.Series, repeats: int, random_state: int
) -> pd.DataFrame:
    """How much the test MAE of log(target) rises when one raw input column is shuffled.

    Model-agnostic (it survives any change of learners) and cheap: every shuffled copy goes into one
    ``predict`` call, which costs about as much as a few single-row calls.
    """
    inputs = X.drop(columns=[BUILDING_ID], errors="ignore").reset_index(drop=True)
    columns = [c for c in MODEL_INPUTS if c in inputs.columns and inputs[c].notna().any()]
    rng = np.random.default_rng(random_state)
    blocks = [inputs]
    for column in columns:
        for _ in range(repeats):
            shuffled = inputs.copy()
            shuffled[column] = inputs[column].to_numpy()[rng.permutation(len(inputs))]
            blocks.append(shuffled)
    predicted = np.asarray(loaded.predict(pd.concat(blocks, ignore_index=True)), dtype=float)
    truth = y.to_numpy(dtype=float)
    n = len(inputs)
    baseline = _log_mae(truth, predicted[:n])
    rises = np.array(
        [_log_mae(truth, predicted[(1 + k) * n : (2 + k) * n]) - baseline for k in range(len(columns) * repeats)]
    ).reshape(len(columns), repeats)
    return (
        pd.DataFrame({"feature": columns, "importance": rises.mean(axis=1), "std": rises.std(axis=1)})
        .sort_values("importance", ascending=False)
        .reset_index(drop=True)
    )


def energy_star_effect(loaded: LoadedModel, X: pd.DataFrame, scores: Sequence[float]) -> pd.DataFrame:
    """The model's response to the ENERGY STAR score: for each score, the median over the test buildings of
    the prediction with that score divided by the prediction with the score unknown."""
    inputs = X.drop(columns=[BUILDING_ID], errors="ignore").reset_index(drop=True)
    blocks = [inputs.assign(ENERGYSTARScore=np.nan)] + [inputs.assign(ENERGYSTARScore=float(s)) for s in scores]
    predicted = np.asarray(loaded.predict(pd.concat(blocks, ignore_index=True)), dtype=float)
    n = len(inputs)
    unknown = predicted[:n]
    ratios = [float(np.median(predicted[(1 + k) * n : (2 + k) * n] / unknown)) for k in range(len(scores))]
    return pd.DataFrame({"ENERGYSTARScore": [float(s) for s in scores], "relative_to_unknown": ratios})


def scalar_metrics(metrics: Mapping[str, Any], splits: Iterable[str] = ("train", "test")) -> pd.DataFrame:
    """The numeric metrics recorded at training, one row per metric, one column per split present."""
    table = {
        split: {
            k: float(v) for k, v in metrics[split].items() if isinstance(v, int | float) and not isinstance(v, bool)
        }
        for split in splits
        if isinstance(metrics.get(split), Mapping)
    }
    return pd.DataFrame(table)


# --- data exploration ----------------------------------------------------------------------------------------


def data_view(buildings: pd.DataFrame, types: Mapping[str, str], neighborhoods: Mapping[str, str]) -> pd.DataFrame:
    """One row per building for the Data page: displayed categories, coordinates, energy and intensity."""
    energy = buildings[TARGET_KBTU].astype(float)
    area = buildings["PropertyGFATotal"].astype(float)
    view = pd.DataFrame(
        {
            BUILDING_ID: buildings[BUILDING_ID].astype(int),
            "PropertyName": buildings.get("PropertyName", pd.Series("", index=buildings.index)).astype(str),
            "property_type": normalise_category(buildings["PrimaryPropertyType"]).map(types),
            "neighborhood": normalise_category(buildings["Neighborhood"]).map(neighborhoods),
            "Latitude": buildings["Latitude"].astype(float),
            "Longitude": buildings["Longitude"].astype(float),
            "YearBuilt": buildings["YearBuilt"].astype(float),
            "ENERGYSTARScore": buildings["ENERGYSTARScore"].astype(float),
            "PropertyGFATotal": area,
            "site_energy_kbtu": energy,
            EUI_COLUMN: energy / area,
        }
    )
    return view.reset_index(drop=True)


def filter_view(view: pd.DataFrame, types: Sequence[str], neighborhoods: Sequence[str]) -> pd.DataFrame:
    """Rows of the chosen property types and neighborhoods; an empty choice keeps everything."""
    keep = pd.Series(True, index=view.index)
    if types:
        keep &= view["property_type"].isin(types)
    if neighborhoods:
        keep &= view["neighborhood"].isin(neighborhoods)
    return view.loc[keep]
