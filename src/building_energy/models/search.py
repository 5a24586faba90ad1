"""Grid search over whole pipelines, one progress bar per learner."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone
from sklearn.metrics import make_scorer
from sklearn.model_selection import KFold, ParameterGrid, cross_val_score
from tqdm.auto import tqdm

logger = logging.getLogger(__name__)


def _neg_mae_log(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return -float(np.mean(np.abs(np.log1p(y_true) - np.log1p(np.clip(y_pred, 0, None)))))


# Mean absolute log error: the relative error of a typical building, blind to the few giants' kBtu.
NEG_MAE_LOG = make_scorer(_neg_mae_log)


@dataclass
class SearchResult:
    best_params: dict[str, Any]
    best_score: float
    fold_scores: list[float]
    candidates: list[dict[str, Any]] = field(default_factory=list)


def grid_search(
    estimator: BaseEstimator,
    grid: dict[str, list[Any]],
    X: pd.DataFrame,
    y: pd.Series,
    *,
    cv_folds: int,
    random_state: int,
    n_jobs: int,
    description: str,
) -> SearchResult:
    """Score every combination of ``grid`` by ``cv_folds``-fold CV on the whole pipeline; keep the best.

    ``grid`` keys are the learner's own parameter names. Ties go to the earlier candidate, so the
    outcome depends only on the data and the seed.
    """
    folds = KFold(cv_folds, shuffle=True, random_state=random_state)
    candidates: list[dict[str, Any]] = []
    # disable=None: a bar on a terminal, nothing in a CI log or a service's stderr.
    for params in tqdm(list(ParameterGrid(grid)), desc=description, unit="candidate", leave=True, disable=None):
        candidate = clone(estimator).set_params(**{f"regressor__model__estimator__{k}": v for k, v in params.items()})
        scores = cross_val_score(candidate, X, y, cv=folds, scoring=NEG_MAE_LOG, n_jobs=n_jobs)
        candidates.append({"params": params, "mean": float(np.mean(scores)), "folds": [float(s) for s in scores]})
    # A fit that fails scores NaN (with only a warning), and max() would keep a NaN first candidate: it
    # beats nothing and nothing beats it. Such a candidate is never chosen.
    valid = [c for c in candidates if np.isfinite(c["mean"])]
    for failed in (c for c in candidates if not np.isfinite(c["mean"])):
        logger.warning(
            "%s: %s failed in %d of %d folds; not a candidate",
            description,
            failed["params"],
            int(np.sum(~np.isfinite(failed["folds"]))),
            len(failed["folds"]),
        )
    if not valid:
        raise ValueError(f"{description}: every candidate of {grid} failed to fit; see the warnings above")
    best = max(valid, key=lambda c: c["mean"])
    logger.info("%s: best %s (CV MAE log %.4f)", description, best["params"], -best["mean"])
    return SearchResult(best["params"], best["mean"], best["folds"], candidates)
