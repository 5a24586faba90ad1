"""The evaluation plots logged with every run (PNG files; matplotlib's object API, no global backend)."""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from building_energy.files import write_bytes_atomically
from building_energy.models.artifacts import PLOTS_SUBDIR
from building_energy.models.predict import TARGET_UNITS

logger = logging.getLogger(__name__)


def _save_png(figure: Figure, path: Path) -> Path:
    """Render in memory, then write atomically: a run killed mid-save leaves the previous PNG, never a truncated one."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    write_bytes_atomically(Path(path), buffer.getvalue())
    return path


# What each target's ground truth is, for the axis label.
MEASURED = {"energy": "metered site energy", "ghg": "reported GHG emissions"}


def predicted_vs_actual_figure(predictions: pd.DataFrame, target: str = "energy") -> Figure:
    """Test buildings, log-log: the package and the notebook prototype against the metered value.

    The comparison's columns are named ``*_kbtu`` whatever the target; ``target`` says what they hold."""
    figure = Figure(figsize=(6.5, 6))
    axes = figure.add_subplot()
    actual = predictions["actual_kbtu"].to_numpy()
    axes.scatter(actual, predictions["notebook_kbtu"], s=10, alpha=0.5, label="notebook prototype", color="tab:gray")
    axes.scatter(actual, predictions["refactor_kbtu"], s=10, alpha=0.7, label="package (stack)", color="tab:blue")
    low, high = float(np.min(actual)), float(np.max(actual))
    axes.plot([low, high], [low, high], color="black", linewidth=1, label="perfect")
    unit = TARGET_UNITS[target]
    axes.set(xscale="log", yscale="log", xlabel=f"{MEASURED[target]} ({unit})", ylabel=f"predicted ({unit})")
    axes.set_title(f"Test split: {len(predictions)} buildings")
    axes.legend(loc="upper left")
    figure.tight_layout()
    return figure


def predicted_vs_actual(predictions: pd.DataFrame, path: Path, target: str = "energy") -> Path:
    return _save_png(predicted_vs_actual_figure(predictions, target), path)


def mape_by_property_type(metrics: dict[str, Any], path: Path) -> Path:
    """Test MAPE per primary property type, worst at the top."""
    by_type = pd.Series(metrics["test"]["mape_by_property_type"], dtype=float).sort_values()
    figure = Figure(figsize=(7, max(3.0, 0.28 * len(by_type) + 1)))
    axes = figure.add_subplot()
    axes.barh(by_type.index.astype(str), by_type.to_numpy(), color="tab:orange")
    axes.axvline(metrics["test"]["mape"], color="black", linewidth=1, label=f"all: {metrics['test']['mape']:.2f}")
    axes.set(xlabel="test MAPE", title="Test error by property type")
    axes.legend(loc="lower right")
    figure.tight_layout()
    return _save_png(figure, path)


def cv_folds(metrics: dict[str, Any], path: Path) -> Path:
    """Each base learner's CV folds (mean absolute log error) from its grid search."""
    learners = sorted(metrics["cv"])
    figure = Figure(figsize=(6.5, 4))
    axes = figure.add_subplot()
    axes.boxplot([[-s for s in metrics["cv"][name]["folds"]] for name in learners], tick_labels=learners)
    axes.set(ylabel="CV mean absolute log error", title="Cross-validation folds per base learner")
    axes.tick_params(axis="x", labelrotation=15)
    figure.tight_layout()
    return _save_png(figure, path)


def write_evaluation_plots(
    metrics: dict[str, Any], output_dir: Path, predictions: pd.DataFrame | None = None, target: str = "energy"
) -> list[Path]:
    """Write the plots into ``output_dir/plots``; predicted-vs-actual needs the comparison's predictions."""
    folder = Path(output_dir) / PLOTS_SUBDIR
    folder.mkdir(parents=True, exist_ok=True)
    paths = [
        mape_by_property_type(metrics, folder / "test_mape_by_property_type.png"),
        cv_folds(metrics, folder / "cv_folds.png"),
    ]
    if predictions is not None:
        paths.insert(0, predicted_vs_actual(predictions, folder / "predicted_vs_actual.png", target))
    logger.info("wrote %d evaluation plots to %s", len(paths), folder)
    return paths
