"""The benchmark: k-fold CV of the whole training procedure, scored on the trusted rows, paired comparisons."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from building_energy.cli import main
from building_energy.models.bench import REPORTED, BenchResult, paired_difference, run_benchmark, trusted_rows

pytestmark = pytest.mark.slow


def test_trusted_rows_are_compliant_and_not_flagged() -> None:
    buildings = pd.DataFrame(
        {
            "ComplianceStatus": ["Compliant", "Compliant", "Error - Correct Default Data", "Non-Compliant"],
            "Outlier": [np.nan, "High outlier", np.nan, np.nan],
        }
    )
    assert trusted_rows(buildings).tolist() == [True, False, False, False]


def test_paired_difference_pairs_by_seed_and_fold_with_the_corrected_interval() -> None:
    a = BenchResult("a", pd.DataFrame({"seed": [1, 1, 2], "fold": [0, 1, 0], "mape": [0.5, 0.7, 0.9]}), 5, (1, 2), "p")
    # Same folds in another order: pairing must follow (seed, fold), not the row order.
    b = BenchResult("b", pd.DataFrame({"seed": [2, 1, 1], "fold": [0, 1, 0], "mape": [0.6, 0.5, 0.4]}), 5, (1, 2), "p")
    diff = paired_difference(a, b, "mape")
    assert diff["n"] == 3
    assert diff["mean"] == pytest.approx(0.2)  # differences 0.1, 0.2, 0.3, sd 0.1
    # Folds share training rows: the variance of the mean is 1/n + 1/(k - 1) times the sample's, not 1/n.
    half = stats.t.ppf(0.975, 2) * 0.1 * np.sqrt(1 / 3 + 1 / 4)
    assert (diff["low"], diff["high"]) == pytest.approx((0.2 - half, 0.2 + half))


def test_paired_difference_refuses_runs_of_different_fold_counts() -> None:
    folds = pd.DataFrame({"seed": [1, 1], "fold": [0, 1], "mape": [0.5, 0.7]})
    with pytest.raises(ValueError, match="share their number of folds"):
        paired_difference(BenchResult("a", folds, 5, (1,), "tiny"), BenchResult("b", folds, 2, (1,), "tiny"), "mape")


def test_bench_refuses_comparing_the_score_when_told_to_drop_it(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "--no-energy-star", "--compare-energy-star"])
    assert exit_info.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_data_too_small_for_the_folds_is_refused_in_one_line_before_any_fit(
    data_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """As train refuses it: not scikit-learn's FitFailedWarning with its traceback, then a vague failure."""
    few = tmp_path / "few.csv"
    pd.read_csv(data_path, dtype=str, keep_default_na=False).head(10).to_csv(few, index=False)
    assert main(["bench", "--profile", "fast", "--seeds", "1", "--data", str(few)]) == 2
    error = capsys.readouterr().err
    assert re.search(
        rf"^error: {re.escape(str(few))}: \d+ buildings to train on in fold 0 of seed 1 after cleaning; at least 100 "
        r"are needed \(training nests 5-fold cross-validations\)$",
        error,
        re.MULTILINE,
    ), error
    assert "Traceback" not in error and "failed to fit" not in error

    assert main(["bench", "--profile", "tiny", "--seeds", "1", "--folds", "100000", "--data", str(data_path)]) == 2
    error = capsys.readouterr().err
    message = rf"^error: --folds 100000 is more than the \d+ buildings of {re.escape(str(data_path))} after cleaning$"
    assert re.search(message, error, re.MULTILINE), error


def test_every_fold_is_scored_on_its_trusted_rows_and_reruns_match(
    data_path: Path, clean_buildings: pd.DataFrame, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "bench" / "folds.csv"
    argv = ["bench", "--profile", "tiny", "--seeds", "7", "--folds", "2", "--data", str(data_path)]
    assert main([*argv, "--compare-energy-star", "--output", str(output)]) == 0
    printed = capsys.readouterr().out
    assert "without - with ENERGY STAR, mape:" in printed and "2 paired folds" in printed

    folds = pd.read_csv(output)
    assert folds["run"].nunique() == 2 and len(folds) == 4
    assert set(REPORTED) <= set(folds.columns)
    # The held-out folds partition the buildings, and only trusted rows are scored.
    for _, run in folds.groupby("run"):
        assert run["n_scored_rows"].sum() == trusted_rows(clean_buildings).sum()
    for column in ("mape", "mape_scored", "mape_unscored", "median_ape", "coverage", "median_rel_width"):
        assert (folds[column] > 0).all(), column
    assert (folds["coverage"] <= 1).all()

    again = run_benchmark(data_path=data_path, profile="tiny", seeds=(7,), n_folds=2)
    with_score = folds[folds["run"].str.contains("with ENERGY STAR") & ~folds["run"].str.contains("without")]
    compared = [c for c in REPORTED if c != "train_seconds"]
    np.testing.assert_allclose(again.folds[compared].to_numpy(), with_score[compared].to_numpy(), rtol=1e-9)
