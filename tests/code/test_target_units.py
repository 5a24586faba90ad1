"""A model trained for greenhouse gas speaks of tonnes of CO2e wherever an energy model speaks of kBtu."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from building_energy.models.compare_pipelines import COMPARED_METRICS, format_report
from building_energy.models.train import TARGET_COLUMNS
from building_energy.tracking.plots import predicted_vs_actual_figure
from building_energy.tracking.runs import promotion_veto

UNITS = [("energy", "kBtu"), ("ghg", "metric tons CO2e")]


@pytest.mark.parametrize(("target", "unit"), UNITS)
def test_the_predicted_vs_actual_plot_names_the_targets_unit(target: str, unit: str) -> None:
    values = np.array([1.5, 20.0, 300.0])
    predictions = pd.DataFrame({"actual_kbtu": values, "notebook_kbtu": values * 1.1, "refactor_kbtu": values * 0.9})
    axes = predicted_vs_actual_figure(predictions, target).axes[0]
    assert axes.get_xlabel().endswith(f"({unit})") and axes.get_ylabel() == f"predicted ({unit})"
    assert ("kBtu" in axes.get_xlabel()) == (target == "energy")


@pytest.mark.parametrize(("target", "unit"), UNITS)
def test_an_unreproducible_comparison_states_the_difference_in_the_targets_unit(target: str, unit: str) -> None:
    metrics = dict.fromkeys(COMPARED_METRICS, 1.0)
    report = {
        "target": TARGET_COLUMNS[target],
        "notebook_metrics": metrics,
        "refactor_metrics": metrics,
        "relative_diff": dict.fromkeys(COMPARED_METRICS, 0.0),
        "mae_ratio": 1.0,
        "mae_tolerance": 0.05,
        "within_tolerance": True,
        "reproducibility": {"identical_predictions": False, "max_abs_diff_kbtu": 0.25},
    }
    assert format_report(report).splitlines()[-1].endswith(f"differ by up to 0.25 {unit}")
    veto = promotion_veto(report)
    assert veto is not None and veto.endswith(f"differ by up to 0.25 {unit}")
