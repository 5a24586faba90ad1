"""Split-conformal prediction intervals from the stack's out-of-fold residuals (log scale).

Mondrian: buildings with and without an ENERGY STAR score are calibrated apart, so the interval is as wide
as the estimate is uncertain for that kind of building, and each group gets its own coverage.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from building_energy.models.pipeline import interval_groups


def stack_residuals(model: Any) -> np.ndarray:
    """Out-of-fold log residuals kept by the stack's ``ConformalMetaLearner`` at training."""
    stack = model.regressor_.steps[-1][1]
    return np.asarray(stack.final_estimator_.residuals_, dtype=float)


def stack_groups(model: Any) -> np.ndarray:
    """The interval group of each residual (all 0 for a model saved before groups existed)."""
    stack = model.regressor_.steps[-1][1]
    groups = getattr(stack, "interval_groups_", None)
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


def group_halfwidths(residuals: np.ndarray, groups: np.ndarray, level: float) -> dict[int, float]:
    """Half-width per group; a group too small for its own quantile falls back to all residuals."""
    pooled = conformal_halfwidth(residuals, level)
    widths = {}
    for group in np.unique(groups):
        own = conformal_halfwidth(residuals[groups == group], level)
        widths[int(group)] = own if math.isfinite(own) else pooled
    return widths


def predict_interval(model: Any, X: Any, level: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Point prediction and the ``level`` interval, in the target's unit."""
    pipeline = model.regressor_
    features = pipeline[:-1].transform(X)
    # Equal to model.predict(X): the log-target wrapper's inverse of the stack's log prediction.
    log_point = np.asarray(pipeline.steps[-1][1].predict(features), dtype=float)
    point = np.asarray(model.inverse_func(log_point), dtype=float)
    residuals = stack_residuals(model)
    widths = group_halfwidths(residuals, stack_groups(model), level)
    pooled = conformal_halfwidth(residuals, level)
    halfwidth = np.array([widths.get(int(group), pooled) for group in interval_groups(features)])
    log_point = np.log1p(np.clip(point, 0, None))
    return point, np.expm1(log_point - halfwidth), np.expm1(log_point + halfwidth)
