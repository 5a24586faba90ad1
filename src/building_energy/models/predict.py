"""Batch scoring: every input row gets a prediction or the reason it has none."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from building_energy.config import get_config
from building_energy.data.columns import BUILDING_ID, MODEL_INPUTS, PREDICTION_REQUIRED, SCORED_NUMERIC_COLUMNS
from building_energy.data.io import parse_numbers, read_buildings_csv
from building_energy.data.schema import DataValidationError, row_errors
from building_energy.files import check_writable, write_bytes_atomically
from building_energy.models.intervals import predict_interval
from building_energy.models.loading import is_models_uri
from building_energy.models.metadata import recorded_target
from building_energy.preprocessing.preprocessor import scope_errors
from building_energy.preprocessing.transformers import CleanBuildings

logger = logging.getLogger(__name__)

PREDICTION_COLUMN = "predicted_site_energy_kbtu"
LOWER_COLUMN = "lower_kbtu"
UPPER_COLUMN = "upper_kbtu"
ERROR_COLUMN = "error"
DRIVERS_COLUMN = "top_drivers"
# The unit a model's predictions are in, by the target it was trained on.
TARGET_UNITS = {"energy": "kBtu", "ghg": "metric tons CO2e"}
# Column names of a model trained on greenhouse-gas emissions (metric tons CO2e) instead of energy.
GHG_COLUMNS = {
    PREDICTION_COLUMN: "predicted_ghg_tco2e",
    LOWER_COLUMN: "lower_tco2e",
    UPPER_COLUMN: "upper_tco2e",
}
# Above this a prediction says more about the input than the building (Seattle's largest building uses
# ~9e8 kBtu and emits ~1.6e4 t CO2e a year).
MAX_PLAUSIBLE = {"energy": 1e11, "ghg": 1e7}
# The reason a row gets when the model itself raised on it: a bug to fix, but never the other rows' loss.
MODEL_FAILURE = "the model failed on this row"
# The largest whole number a float64 (and so an Int64 echo of it) holds exactly.
_MAX_EXACT_ID = 2.0**53


class AbsentColumnsError(DataValidationError):
    """A file with no column at all for some field the model reads (``predict_csv``'s ``allow_absent_columns``
    accepts it); each caller says how to allow it."""


@dataclass(frozen=True)
class ScoredFrame:
    """``predict_frame``'s table, and which of its rows failed in the model itself rather than on their input.

    A row in ``model_failures`` is a fault of the model (or of the code around it), not of the building: the
    API answers it with a server error instead of telling the client to fix a valid building.
    """

    table: pd.DataFrame
    model_failures: frozenset[int]


def predict_frame(
    model: Any,
    raw_buildings: pd.DataFrame,
    known_problems: dict[int, list[str]] | None = None,
    interval_level: float | None = None,
    explain_top: int = 0,
    allow_absent_columns: bool = False,
) -> pd.DataFrame:
    """Score a frame of raw records; one output row per input row, same order, never an exception per row.

    ``model`` is a fitted pipeline or a ``LoadedModel``. ``known_problems`` maps row positions to reasons
    found while reading (e.g. unparseable numbers). Conformal ``lower``/``upper`` bounds at
    ``interval_level`` (default: config ``intervals.level``) come with every prediction; with
    ``explain_top`` > 0 a ``top_drivers`` column names the fields that move each estimate most.

    A frame with no column at all for a field the model reads raises ``AbsentColumnsError`` unless
    ``allow_absent_columns``: a misspelt or dropped column would count as unknown in every row, which moves
    estimates several-fold without a word (a blank cell is a building's own unknown, and fine).
    """
    return score_frame(model, raw_buildings, known_problems, interval_level, explain_top, allow_absent_columns).table


def score_frame(
    model: Any,
    raw_buildings: pd.DataFrame,
    known_problems: dict[int, list[str]] | None = None,
    interval_level: float | None = None,
    explain_top: int = 0,
    allow_absent_columns: bool = False,
) -> ScoredFrame:
    """``predict_frame``, also telling apart the rows the model raised on (see ``ScoredFrame``)."""
    absent = [column for column in model_inputs(model) if column not in raw_buildings.columns]
    if absent and not allow_absent_columns:
        raise AbsentColumnsError(
            f"no column for {absent}, which the model reads; every row would be scored as if they were unknown. "
            "Add the columns (blank cells are fine) or allow absent columns"
        )
    if absent:
        logger.warning("no column for %s; every row is scored as if they were unknown", absent)
    pipeline = getattr(model, "model", model)
    level = interval_level if interval_level is not None else get_config().intervals.level
    problems: dict[int, list[str]] = {k: list(v) for k, v in (known_problems or {}).items()}
    # Text in a number column the model reads (a JSON body, a hand-made upload) is that row's error, as in a CSV.
    frame, unreadable = parse_numbers(raw_buildings.reset_index(drop=True), SCORED_NUMERIC_COLUMNS)
    for found in (unreadable, row_errors(frame), scope_errors(frame)):
        for position, reasons in found.items():
            problems.setdefault(position, []).extend(reasons)
    predictions, lower, upper = (np.full(len(frame), np.nan) for _ in range(3))
    scorable = np.array([i not in problems for i in range(len(frame))], dtype=bool)
    failures: dict[int, str] = {}
    if scorable.any():
        scored, failures = _predict_isolating_failures(pipeline, frame.loc[scorable], level)
        predictions[scorable], lower[scorable], upper[scorable] = scored
        for position, reason in failures.items():
            problems.setdefault(position, []).append(reason)
            scorable[position] = False
    target = recorded_target(getattr(model, "metadata", {}))
    ceiling = MAX_PLAUSIBLE[target]
    implausible = scorable & ~(np.isfinite(predictions) & (predictions > 0) & (predictions < ceiling))
    for position in map(int, np.flatnonzero(implausible)):
        problems.setdefault(position, []).append(
            f"prediction {float(predictions[position]):.4g} {TARGET_UNITS[target]} is out of range "
            f"(0 to {ceiling:.0e}): the building is unlike any the model learnt from"
        )
        predictions[position] = lower[position] = upper[position] = np.nan
        scorable[position] = False  # nor explained: there is no estimate to explain
    out = pd.DataFrame(index=frame.index)
    # Always a column, blank without ids: every output has the same columns whatever the input's.
    ids = pd.to_numeric(frame.get(BUILDING_ID, pd.Series(np.nan, index=frame.index)), errors="coerce")
    ids = ids.astype("float64")
    # Only an id Int64 holds exactly is echoed; the row's error already says what is wrong with the others.
    out[BUILDING_ID] = ids.where(np.isfinite(ids) & (ids % 1 == 0) & (ids.abs() <= _MAX_EXACT_ID)).astype("Int64")
    out[PREDICTION_COLUMN] = predictions
    out[LOWER_COLUMN] = lower
    out[UPPER_COLUMN] = upper
    if explain_top > 0:
        out[DRIVERS_COLUMN] = ""
        if scorable.any():
            # Imported on demand: SHAP takes seconds to import, and a served model that is never asked for
            # explanations (MLflow's python_function) need not install it.
            from building_energy.models.explain import explain

            explanation = explain(pipeline, frame.loc[scorable])
            out.loc[scorable, DRIVERS_COLUMN] = [
                "; ".join(
                    f"{d['field']}{' (unknown)' if d['unknown'] else ''} x{d['factor']:.2f}"
                    for d in explanation.top(row, explain_top)
                )
                for row in range(int(scorable.sum()))
            ]
    out[ERROR_COLUMN] = [("; ".join(problems[i]) if i in problems else "") for i in range(len(frame))]
    if target == "ghg":
        out = out.rename(columns=GHG_COLUMNS)
    if problems:
        logger.warning("%d of %d rows could not be scored", len(problems), len(frame))
    return ScoredFrame(out, frozenset(failures))


def _predict_isolating_failures(
    pipeline: Any, rows: pd.DataFrame, level: float
) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], dict[int, str]]:
    """Point and interval predictions of ``rows``; if the model raises on the batch, each row is scored alone
    so that one row it cannot handle costs that row only. Returns the failed rows' reasons by position."""
    # Any exception: the rows were valid, so whatever the model raises (LightGBMError derives from Exception
    # alone, an outdated pickle gives AttributeError or KeyError) is the model's, and must not cost the others.
    try:
        return predict_interval(pipeline, rows, level), {}
    except Exception as error:
        logger.exception("the model failed on a batch of %d rows; scoring them one by one", len(rows))
        batch_error = error
    scored = tuple(np.full(len(rows), np.nan) for _ in range(3))
    failures: dict[int, str] = {}
    for offset, position in enumerate(rows.index):
        try:
            single = predict_interval(pipeline, rows.iloc[[offset]], level)
        except Exception as error:
            # Each row's own cause, logged: an API client is only told that the log has it.
            logger.warning("the model failed on row %d", position, exc_info=True)
            failures[int(position)] = f"{MODEL_FAILURE} ({type(error).__name__}: {error})"
            continue
        for column, values in zip(scored, single, strict=True):
            column[offset] = values[0]
    logger.warning("%d of %d rows failed in the model (first batch error: %s)", len(failures), len(rows), batch_error)
    return (scored[0], scored[1], scored[2]), failures


def model_inputs(model: Any) -> list[str]:
    """The City columns ``model`` reads (its ``CleanBuildings`` step's), e.g. without ``ENERGYSTARScore`` for a
    model trained without the score."""
    pipeline = getattr(getattr(model, "model", model), "regressor_", None)
    for _, step in getattr(pipeline, "steps", []):
        if isinstance(step, CleanBuildings):
            return list(step.output_columns_)
    return list(MODEL_INPUTS)


def _model_files(model: Any) -> set[Path]:
    """The files a model loaded from a path is made of (its pickle and checksum); none for a registry model."""
    source = getattr(model, "source", None)
    if not source or is_models_uri(source):
        return set()
    return {Path(source).resolve(), Path(f"{source}.sha256").resolve()}


def predict_csv(
    model: Any, input_path: Path, output_path: Path, explain_top: int = 0, allow_absent_columns: bool = False
) -> pd.DataFrame:
    """Read a CSV in the City's format, score it, write the predictions CSV; return the predictions.

    A column the model reads that the file has no column for at all is refused unless
    ``allow_absent_columns``: a renamed or dropped column would count as unknown in every row, which moves
    estimates several-fold without a word (a blank cell is a building's own unknown, and fine). The output
    is written whole or not at all, and never over the input.
    """
    input_path, output_path = Path(input_path), Path(output_path)
    # Through a symlink to the file it names, as a plain write would, rather than over the link.
    target = output_path.resolve()
    if target == input_path.resolve():
        raise DataValidationError(f"{output_path}: the output would replace the input file; choose another path")
    if target in _model_files(model):
        raise DataValidationError(
            f"{output_path}: the output would replace the model being scored; choose another path"
        )
    if target.is_dir():
        raise DataValidationError(f"{output_path}: is a directory; give the predictions file's name")
    check_writable(target)  # before the scoring (minutes with explanations), not after it
    raw, problems = read_buildings_csv(input_path, SCORED_NUMERIC_COLUMNS)
    missing = [c for c in PREDICTION_REQUIRED if c not in raw]
    if missing:
        raise DataValidationError(f"{input_path}: missing required column(s) {missing}")
    try:
        predictions = predict_frame(
            model, raw, problems, explain_top=explain_top, allow_absent_columns=allow_absent_columns
        )
    except AbsentColumnsError as error:
        raise AbsentColumnsError(f"{input_path}: {error}") from error
    write_bytes_atomically(target, predictions.to_csv(index=False).encode("utf-8"))
    return predictions
