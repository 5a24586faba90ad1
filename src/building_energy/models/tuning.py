"""Hyperparameter search with Optuna: TPE with a fixed seed, pruning by fold, resumable, multi-worker.

A study lives in a storage shared by every worker: a journal file by default (safe for several processes
on one machine), or any RDB URL (``postgresql://...``, ``sqlite:///...``) for a cluster. Running the
command again resumes the study until it holds the requested number of finished trials.
"""

from __future__ import annotations

import concurrent.futures
import logging
import multiprocessing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
from optuna.storages import BaseStorage, JournalStorage
from optuna.storages.journal import JournalFileBackend
from sklearn.base import clone
from sklearn.model_selection import KFold

from building_energy.config import SearchSpace, Settings, get_config
from building_energy.models.pipeline import LEARNERS, build_learner_pipeline
from building_energy.models.search import NEG_MAE_LOG
from building_energy.models.train import TARGET_COLUMNS, prepare_xy, split_buildings
from building_energy.preprocessing.preprocessor import preprocess_data, remove_outliers

logger = logging.getLogger(__name__)


@dataclass
class TuningResult:
    study_name: str
    best_params: dict[str, Any]
    best_value: float
    n_complete: int
    n_pruned: int


def open_storage(storage: str) -> BaseStorage | str:
    """A URL with a scheme is an RDB storage; anything else is a journal file path."""
    if "://" in storage:
        return storage
    path = Path(storage)
    path.parent.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(str(path)))


def suggest(
    trial: optuna.Trial | optuna.trial.FixedTrial, space: dict[str, SearchSpace], prefix: str = ""
) -> dict[str, Any]:
    """One value per parameter of ``space``, keyed by its own name; the trial knows it as ``prefix + name``
    (several learners tuned in one study share parameter names)."""
    params: dict[str, Any] = {}
    for name, spec in space.items():
        if spec.kind == "int":
            params[name] = trial.suggest_int(prefix + name, int(spec.low), int(spec.high), log=spec.log)
        else:
            params[name] = trial.suggest_float(prefix + name, spec.low, spec.high, log=spec.log)
    return params


def make_objective(
    learner: str, X: pd.DataFrame, y: pd.Series, config: Settings, use_energy_star: bool, worker: int = 0
) -> Any:
    """Mean CV MAE of log energy; each fold is reported so the pruner can stop a poor trial early."""
    space = config.tuning.spaces[learner]
    base = build_learner_pipeline(config, learner, use_energy_star)
    folds = list(KFold(config.cv_folds, shuffle=True, random_state=config.random_state).split(X))

    def objective(trial: optuna.Trial) -> float:
        trial.set_user_attr("worker", worker)
        params = suggest(trial, space)
        estimator = clone(base).set_params(**{f"regressor__model__estimator__{k}": v for k, v in params.items()})
        losses = []
        for step, (train_idx, test_idx) in enumerate(folds):
            fitted = clone(estimator).fit(X.iloc[train_idx], y.iloc[train_idx])
            losses.append(-NEG_MAE_LOG(fitted, X.iloc[test_idx], y.iloc[test_idx]))
            trial.report(float(np.mean(losses)), step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return float(np.mean(losses))

    return objective


def tune_learner(
    learner: str,
    n_trials: int,
    storage: str | None = None,
    study_name: str | None = None,
    data_path: Path | None = None,
    use_energy_star: bool = True,
    target: str = "energy",
    worker: int = 0,
    config: Settings | None = None,
) -> TuningResult:
    """Run (or resume) the study of one learner on the training split until it has ``n_trials`` finished.

    Several workers (processes, machines) may run this at once on one storage; ``worker`` offsets the
    sampler's seed so they do not propose the same first trials.
    """
    config = config or get_config()
    if learner not in LEARNERS:
        raise ValueError(f"unknown learner {learner!r}; known: {LEARNERS}")
    storage_spec = storage or str(config.tuning.storage)
    name = study_name or f"{learner}-{target}-{'es' if use_energy_star else 'no-es'}"
    target_column = TARGET_COLUMNS[target]
    train_rows, _ = split_buildings(preprocess_data(Path(data_path or config.paths.data), target_column), config)
    X, y = prepare_xy(remove_outliers(train_rows), target_column)

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name=name,
        storage=open_storage(storage_spec),
        direction="minimize",
        sampler=optuna.samplers.TPESampler(seed=config.random_state + worker, n_startup_trials=8),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1),
        load_if_exists=True,
    )
    finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    remaining = n_trials - len(study.get_trials(states=finished))
    if remaining > 0:
        study.optimize(
            make_objective(learner, X, y, config, use_energy_star, worker),
            n_trials=remaining,
            callbacks=[optuna.study.MaxTrialsCallback(n_trials, states=finished)],
            show_progress_bar=worker == 0,
        )
    complete = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    pruned = study.get_trials(states=(optuna.trial.TrialState.PRUNED,))
    logger.info("study %s: best MAE log %.4f with %s", name, study.best_value, study.best_params)
    return TuningResult(name, dict(study.best_params), float(study.best_value), len(complete), len(pruned))


def _worker_entry(kwargs: dict[str, Any]) -> TuningResult:
    return tune_learner(**kwargs)


def tune_in_workers(learner: str, n_trials: int, workers: int = 1, **kwargs: Any) -> TuningResult:
    """Run ``workers`` processes on one study; each stops once the study holds ``n_trials`` finished trials."""
    if workers < 1:
        raise ValueError(f"--workers must be at least 1, got {workers}")
    if workers == 1:
        return tune_learner(learner, n_trials, **kwargs)
    config = kwargs.get("config") or get_config()
    storage = kwargs.pop("storage", None) or str(config.tuning.storage)
    if "://" not in storage:
        # Create the journal before the workers race to.
        open_storage(storage)
    jobs = [
        {"learner": learner, "n_trials": n_trials, "storage": storage, "worker": i, **kwargs} for i in range(workers)
    ]
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        results = list(pool.map(_worker_entry, jobs))
    return max(results, key=lambda r: r.n_complete + r.n_pruned)
