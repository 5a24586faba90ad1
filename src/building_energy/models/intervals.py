"""Split-conformal prediction intervals from the stack's out-of-fold residuals (log scale).

Mondrian: buildings with and without an ENERGY STAR score are calibrated apart, so the interval is as wide
as the estimate is uncertain for that kind of building, and each group gets its own coverage.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from building_energy.models.pipeline import INTERVAL_GROUPS, interval_groups


def _stack(model: Any) -> Any:
    return model.regressor_.steps[-1][1]


def stack_residuals(model: Any) -> np.ndarray:
    """Out-of-fold log residuals kept by the stack's ``ConformalMetaLearner`` at training."""
    return np.asarray(_stack(model).final_estimator_.residuals_, dtype=float)


def stack_groups(model: Any) -> np.ndarray:
    """The interval group of each residual (all 0 for a model saved before groups existed)."""
    groups = getattr(_stack(model), "interval_groups_", None)
    return np.zeros(len(stack_residuals(model)), dtype=int) if groups is None else np.asarray(groups)


def conformal_halfwidth(residuals: np.ndarray, level: float) -> float:
    """The finite-sample-corrected ``level`` quantile of |residual| (split conformal)."""
    if not 0 < level < 1:
        raise ValueError(f"interval level must be in (0, 1), got {level}")
    scores = np.sort(np.abs(residuals))
    n = len(scores)
    rank = math.ceil((n + 1) * level)
    if rank > n:
        return math.inf
    return float(scores[rank - 1])


def group_halfwidths(residuals: np.ndarray, groups: np.ndarray, level: float) -> np.ndarray:
    """Half-width of each interval group, indexed by group; a group too small for its own quantile falls back
    to all residuals."""
    pooled = conformal_halfwidth(residuals, level)
    own = (conformal_halfwidth(residuals[groups == group], level) for group in INTERVAL_GROUPS)
    return np.array([width if math.isfinite(width) else pooled for width in own])


def predict_interval(model: Any, X: Any, level: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Point prediction and the ``level`` interval, in the target's unit."""
    pipeline = model.regressor_
    features = pipeline[:-1].transform(X)
    # Equal to model.predict(X): the log-target wrapper's inverse of the stack's log prediction.
    point = np.asarray(model.inverse_func(_stack(model).predict(features)), dtype=float)
    halfwidth = group_halfwidths(stack_residuals(model), stack_groups(model), level)[interval_groups(features)]
    log_point = np.log1p(np.clip(point, 0, None))
    return point, np.expm1(log_point - halfwidth), np.expm1(log_point + halfwidth)
