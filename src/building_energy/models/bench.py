"""Repeated k-fold benchmark of the whole training procedure, scored where the ground truth is trusted."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.model_selection import KFold

from building_energy.config import Settings, get_config
from building_energy.models.evaluate import metrics_real
from building_energy.models.intervals import predict_interval, predict_relative_error_point
from building_energy.models.pipeline import check_learner_params
from building_energy.models.train import TARGET_COLUMNS, check_enough_buildings, fit_stack, prepare_xy
from building_energy.preprocessing.preprocessor import preprocess_data, remove_outliers

logger = logging.getLogger(__name__)

REPORTED = (
    "mape",
    "mape_scored",
    "mape_unscored",
    "median_ape",
    "r2",
    "r2_log",
    "coverage",
    "coverage_scored",
    "coverage_unscored",
    "median_rel_width",
    "train_seconds",
    "mape_relative",
    "r2_log_relative",
)


def trusted_rows(buildings: pd.DataFrame) -> np.ndarray:
    """Rows whose meter reading the City accepted: compliant and not flagged as an outlier."""
    compliant = buildings.get("ComplianceStatus", pd.Series("Compliant", index=buildings.index)) == "Compliant"
    flagged = buildings.get("Outlier", pd.Series(np.nan, index=buildings.index)).notna()
    return np.asarray(compliant & ~flagged)


def benchmark_folds(
    clean_buildings: pd.DataFrame, n_folds: int, seed: int
) -> Iterator[tuple[int, pd.DataFrame, pd.DataFrame]]:
    """The benchmark's k folds of one seed: each fold's training rows (every other fold's building bar the
    City's outliers) and its held-out rows whose ground truth is trusted."""
    trusted = trusted_rows(clean_buildings)
    for fold, (train_idx, test_idx) in enumerate(
        KFold(n_folds, shuffle=True, random_state=seed).split(clean_buildings)
    ):
        yield fold, remove_outliers(clean_buildings.iloc[train_idx]), clean_buildings.iloc[test_idx][trusted[test_idx]]


def checked_folds(
    clean_buildings: pd.DataFrame,
    n_folds: int,
    seeds: Sequence[int],
    data_path: Path,
    config: Settings,
    where: str = "in fold {fold} of seed {seed} after cleaning",
    folds_option: str = "--folds",
) -> list[tuple[int, int, pd.DataFrame, pd.DataFrame]]:
    """Every seed's ``benchmark_folds`` as (seed, fold, training rows, held-out rows), each fold's training rows
    checked (``check_enough_buildings``, ``where`` formatted with the fold and seed) before any is fitted.
    More folds than buildings is refused naming ``folds_option``, where ``n_folds`` came from."""
    if n_folds > len(clean_buildings):
        raise ValueError(
            f"{folds_option} {n_folds} is more than the {len(clean_buildings)} buildings of {data_path} after cleaning"
        )
    folds = [(seed, *fold) for seed in seeds for fold in benchmark_folds(clean_buildings, n_folds, seed)]
    for seed, fold, model_input, _ in folds:
        check_enough_buildings(model_input, data_path, config, where.format(fold=fold, seed=seed))
    return folds


@dataclass
class BenchResult:
    label: str
    folds: pd.DataFrame  # one row per (seed, fold): n_scored_rows and the REPORTED columns
    n_folds: int
    seeds: tuple[int, ...]
    profile: str

    def summary(self) -> pd.DataFrame:
        return self.folds[list(REPORTED)].agg(["mean", "std", "min", "max"]).T


def run_benchmark(
    data_path: Path | None = None,
    profile: str = "full",
    seeds: tuple[int, ...] = (42, 43, 44),
    n_folds: int = 5,
    use_energy_star: bool = True,
    target: str = "energy",
    config: Settings | None = None,
) -> BenchResult:
    """For each seed, k-fold CV of the full training procedure (tuning included) on all non-residential
    buildings; every held-out fold is scored on its trusted rows only."""
    config = config or get_config()
    repeated = sorted({seed for seed in seeds if list(seeds).count(seed) > 1})
    if repeated:
        # A repeated seed repeats its folds: the spread and the paired intervals would count them twice.
        raise ValueError(f"seeds {repeated} given more than once; each seed's folds must count once")
    check_learner_params(config)
    target_column = TARGET_COLUMNS[target]
    data_path = Path(data_path or config.paths.data)
    clean_buildings = preprocess_data(data_path, target=target_column)
    rows = []
    # Every fold is made and checked before the first is fitted: a file too small fails in one line at once.
    for seed, fold, model_input, held_out in checked_folds(clean_buildings, n_folds, seeds, data_path, config):
        started = time.perf_counter()
        model, _ = fit_stack(model_input, config, profile, use_energy_star, target_column)
        seconds = time.perf_counter() - started
        X, y = prepare_xy(held_out, target_column)
        point, lower, upper = predict_interval(model, X, config.intervals.level)
        truth = y.to_numpy()
        scores = metrics_real(truth, point)
        covered = (truth >= lower) & (truth <= upper)
        ape = np.abs(point - truth) / truth
        scored = held_out["ENERGYSTARScore"].notna().to_numpy()
        scores["coverage"] = float(np.mean(covered))
        # Per group too: a fine average can hide scored buildings over-covered and the rest under-covered,
        # and most of the MAPE comes from buildings without a score.
        for group, members in (("scored", scored), ("unscored", ~scored)):
            scores[f"coverage_{group}"] = float(np.mean(covered[members])) if members.any() else math.nan
            scores[f"mape_{group}"] = float(np.mean(ape[members])) if members.any() else math.nan
        scores["median_rel_width"] = float(np.median((upper - lower) / point))
        scores["train_seconds"] = seconds
        # Not the shipped estimate: what the MAPE-optimal point, scaled down per group, would score instead.
        relative = metrics_real(truth, predict_relative_error_point(model, X))
        scores["mape_relative"], scores["r2_log_relative"] = relative["mape"], relative["r2_log"]
        rows.append({"seed": seed, "fold": fold, "n_scored_rows": len(truth), **scores})
        logger.info(
            "seed %d fold %d: MAPE %.3f, R2 log %.3f, coverage %.3f (%.0f s)",
            seed,
            fold,
            scores["mape"],
            scores["r2_log"],
            scores["coverage"],
            seconds,
        )
    label = f"{profile}, {'with' if use_energy_star else 'without'} ENERGY STAR, target {target}"
    return BenchResult(label, pd.DataFrame(rows), n_folds=n_folds, seeds=tuple(seeds), profile=profile)


def paired_difference(a: BenchResult, b: BenchResult, metric: str, confidence: float = 0.95) -> dict[str, float]:
    """Mean of (a - b) over the same (seed, fold) with the corrected resampled t interval (Nadeau and Bengio,
    2003, applied to repeated k-fold CV by Bouckaert and Frank, 2004).

    The differences are not independent: the folds of one seed share most of their training rows and every
    seed re-tests the same buildings, so a plain t interval over them would be too narrow. The correction
    widens the variance of the mean from 1/n to 1/n + n_test/n_train = 1/n + 1/(k - 1), with n - 1 degrees
    of freedom.
    """
    k = a.n_folds
    if b.n_folds != k:
        raise ValueError(f"paired runs must share their number of folds, got {[a.n_folds, b.n_folds]}")
    merged = a.folds.merge(b.folds, on=["seed", "fold"], suffixes=("_a", "_b"))
    diff = (merged[f"{metric}_a"] - merged[f"{metric}_b"]).to_numpy()
    n = len(diff)
    mean = float(diff.mean())
    if n > 1:
        standard_error = float(diff.std(ddof=1)) * math.sqrt(1 / n + 1 / (k - 1))
        half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * standard_error
    else:
        half = math.inf
    return {"mean": mean, "low": mean - half, "high": mean + half, "n": float(n)}


def format_benchmark(result: BenchResult) -> str:
    summary = result.summary()
    lines = [f"benchmark: {result.label} ({len(result.folds)} folds)"]
    lines.append(f"{'metric':<18}{'mean':>10}{'std':>10}{'min':>10}{'max':>10}")
    for metric, row in summary.iterrows():
        lines.append(f"{metric:<18}{row['mean']:>10.3f}{row['std']:>10.3f}{row['min']:>10.3f}{row['max']:>10.3f}")
    return "\n".join(lines)
