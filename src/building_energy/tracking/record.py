"""After a training: the comparison report, the evaluation plots, the MLflow run and the promotion decision.

Training has already written its artifacts when this runs, and nothing here may undo that: each step
that fails logs a warning, is listed in ``TrainingRecord.problems`` and the next step still runs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from building_energy.config import Settings, get_config
from building_energy.logs import error_summary
from building_energy.models.artifacts import TrainingInProgressError, training_lock
from building_energy.models.compare_pipelines import REPORT_JOBLIB, REPORT_JSON, compare_on_split, recorded_split
from building_energy.models.loading import load_model
from building_energy.models.train import TARGET_COLUMNS, TrainingResult, prepare_xy
from building_energy.tracking.plots import write_evaluation_plots
from building_energy.tracking.runs import TrackedRun, track_training
from building_energy.tracking.store import resolve_tracking_uri

logger = logging.getLogger(__name__)


@dataclass
class TrainingRecord:
    comparison: dict[str, Any] | None = None
    plots: list[Path] = field(default_factory=list)
    tracked: TrackedRun | None = None
    problems: list[str] = field(default_factory=list)

    def summary(self) -> list[str]:
        """What the command line reports about the run, the registry and anything that went wrong."""
        lines = []
        if self.comparison is not None:
            repro = self.comparison["reproducibility"]
            lines.append(
                f"compare: package test MAE {self.comparison['mae_ratio']:.3f} x the notebook prototype's; "
                f"retrained with the same seed: {'identical' if repro['identical_predictions'] else 'DIFFERENT'}"
                " predictions"
            )
        if self.tracked is not None:
            run = self.tracked
            lines.append(f"MLflow run {run.run_id} in {run.tracking_uri}")
            lines.append(
                f"{run.registered_model} version {run.model_version}: {run.decision.status} ({run.decision.reason})"
            )
        lines.extend(f"warning: {problem}" for problem in self.problems)
        return lines


def record_training(
    result: TrainingResult, config: Settings | None = None, tracking_uri: str | None = None
) -> TrainingRecord:
    """Compare, plot, track and (maybe) promote the model ``train_model`` just saved; never raises.

    Holds the artifacts directory's training lock throughout, so the files it reads and adds belong to
    this training and not to one started meanwhile.
    """
    config = config or get_config()
    record = TrainingRecord()
    try:
        with training_lock(result.model_path.parent):
            _record(result, record, config, tracking_uri)
    except TrainingInProgressError as error:
        _problem(record, f"{error}: comparison, plots and MLflow tracking skipped")
    return record


def _record(result: TrainingResult, record: TrainingRecord, config: Settings, tracking_uri: str | None) -> None:
    output_dir = result.model_path.parent
    inputs: pd.DataFrame | None = None
    try:
        loaded = load_model(result.model_path)
        if loaded.metadata.get("trained_at") != result.metadata["trained_at"]:
            _problem(record, f"{result.model_path} is no longer this training's model: nothing recorded")
            return
        train_rows, test_rows = recorded_split(result.metadata, Path(result.metadata["data_path"]), config)
        inputs = prepare_xy(test_rows, TARGET_COLUMNS[result.metadata["target"]])[0]
        record.comparison = compare_on_split(loaded, train_rows, test_rows, output_dir, config)
    except Exception as error:  # a failed comparison must not cost the trained model
        _problem(record, f"comparison failed: {error!r}", error)
    try:
        predictions = record.comparison["predictions"] if record.comparison is not None else None
        record.plots = write_evaluation_plots(result.metrics, output_dir, predictions, result.metadata["target"])
    except Exception as error:  # plots are a convenience
        _problem(record, f"evaluation plots failed: {error!r}", error)
    if inputs is None:
        _problem(record, "MLflow tracking skipped: the test rows could not be rebuilt")
        return
    uri = resolve_tracking_uri(config, tracking_uri)
    reports = [output_dir / REPORT_JSON, output_dir / REPORT_JOBLIB] if record.comparison is not None else []
    try:
        # The comparison's verdicts go on the run, and without a reproduced model there is no promotion.
        record.tracked = track_training(
            result,
            inputs,
            config=config,
            tracking_uri=uri,
            extra_files=reports,
            plots=record.plots,
            comparison=record.comparison,
        )
    except Exception as error:  # an unreachable or read-only store must not take training down
        _problem(
            record,
            f"MLflow tracking to {uri} failed ({error_summary(error)}); "
            f"the model and its artifacts in {output_dir} are saved all the same",
        )


def _problem(record: TrainingRecord, message: str, error: BaseException | None = None) -> None:
    """A step after training failed; the training stands. A bug in the comparison or the plots keeps its
    traceback in the log (at debug level: a warning of one line is what a user reads)."""
    logger.warning("%s", message)
    if error is not None:
        logger.debug("traceback of: %s", message, exc_info=error)
    record.problems.append(message)
