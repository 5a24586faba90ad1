"""Tune the whole stack at once with Optuna: ``make tune-stack``.

``building-energy tune`` studies one learner at a time by its own CV error; a stack gains from learners
more regularised than each would pick alone, so the ``full`` profile's values come from this study of the
stack itself. Each trial is one 5-fold CV of the stack (fixed seed) on every non-residential building,
scored as the benchmark scores: R2 of log energy on the held-out rows whose ground truth is trusted.
The first trial is the current ``full`` profile. The study is resumable (journal file by default, or any
RDB URL); it prints the best trial as the ``full`` profile's YAML.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from sklearn.model_selection import KFold

from building_energy.config import SearchSpace, get_config
from building_energy.models.bench import trusted_rows
from building_energy.models.evaluate import metrics_real
from building_energy.models.pipeline import build_stacking_pipeline
from building_energy.models.train import prepare_xy
from building_energy.models.tuning import open_storage, suggest
from building_energy.preprocessing.preprocessor import preprocess_data, remove_outliers


def _space(**bounds: tuple[str, float, float, bool]) -> dict[str, SearchSpace]:
    return {
        name: SearchSpace(kind=kind, low=low, high=high, log=log) for name, (kind, low, high, log) in bounds.items()
    }


# Searched per learner; everything else (tree counts, learning rates) stays at the full profile's value.
SPACE: dict[str, dict[str, SearchSpace]] = {
    "extra_trees": _space(max_features=("float", 0.2, 0.8, False), min_samples_leaf=("int", 1, 4, False)),
    "xgboost": _space(
        colsample_bytree=("float", 0.3, 0.8, False),
        max_depth=("int", 3, 8, False),
        subsample=("float", 0.6, 1.0, False),
        min_child_weight=("float", 0.5, 8.0, True),
    ),
    "lightgbm": _space(
        colsample_bytree=("float", 0.3, 0.8, False),
        num_leaves=("int", 8, 64, True),
        min_child_samples=("int", 5, 40, True),
    ),
    "svr": _space(
        C=("float", 0.3, 10.0, True), gamma=("float", 0.002, 0.03, True), epsilon=("float", 0.05, 0.4, False)
    ),
}


def profile_params(grid: dict[str, dict[str, list[Any]]]) -> dict[str, dict[str, Any]]:
    """The first candidate of every grid entry: the profile's values as fixed parameters."""
    return {learner: {name: values[0] for name, values in params.items()} for learner, params in grid.items()}


def suggest_stack(
    trial: optuna.Trial | optuna.trial.FixedTrial, base: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    return {
        learner: {**params, **suggest(trial, SPACE.get(learner, {}), f"{learner}__")}
        for learner, params in base.items()
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=13, help="finished trials the study should hold")
    parser.add_argument("--seed", type=int, default=42, help="seed of the CV folds")
    parser.add_argument("--storage", default="artifacts/optuna/stack-journal.log", help="journal path or RDB URL")
    parser.add_argument("--study-name", default="stack-energy-es")
    parser.add_argument("--data", type=Path, default=None)
    args = parser.parse_args(argv)

    config = get_config()
    buildings = preprocess_data(Path(args.data or config.paths.data))
    trusted = trusted_rows(buildings)
    folds = list(KFold(config.cv_folds, shuffle=True, random_state=args.seed).split(buildings))
    base = profile_params(config.profiles["full"])

    def objective(trial: optuna.Trial) -> float:
        params = suggest_stack(trial, base)
        scores = []
        for train_idx, test_idx in folds:
            X, y = prepare_xy(remove_outliers(buildings.iloc[train_idx]))
            model = build_stacking_pipeline(config, params, use_energy_star=True).fit(X, y)
            held_out = buildings.iloc[test_idx][trusted[test_idx]]
            X_test, y_test = prepare_xy(held_out)
            scores.append(metrics_real(y_test.to_numpy(), model.predict(X_test))["r2_log"])
        return float(np.mean(scores))

    study = optuna.create_study(
        study_name=args.study_name,
        storage=open_storage(args.storage),
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=0),
        load_if_exists=True,
    )
    if not study.trials:
        study.enqueue_trial(
            {f"{learner}__{name}": base[learner][name] for learner, space in SPACE.items() for name in space}
        )
    remaining = args.trials - len(study.get_trials(states=(optuna.trial.TrialState.COMPLETE,)))
    if remaining > 0:
        study.optimize(objective, n_trials=remaining)
    best = suggest_stack(optuna.trial.FixedTrial(study.best_params), base)
    print(f"best of {len(study.trials)} trials: R2 log {study.best_value:.4f} (trial {study.best_trial.number})")
    print("  full:")
    for learner, params in best.items():
        print(f"    {learner}:")
        for name, value in params.items():
            print(f"      {name}: [{value:.3g}]" if isinstance(value, float) else f"      {name}: [{value}]")


if __name__ == "__main__":
    main()
