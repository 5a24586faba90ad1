"""Split-conformal prediction intervals from the stack's out-of-fold residuals (log scale)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def stack_residuals(model: Any) -> np.ndarray:
    """Out-of-fold log residuals kept by the stack's ``ConformalMetaLearner`` at training."""
    pipeline = model.regressor_
    stack = pipeline.steps[-1][1]
    return np.asarray(stack.final_estimator_.residuals_, dtype=float)


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


def predict_interval(model: Any, X: Any, level: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Point prediction and the ``level`` interval, in the target's unit."""
    point = np.asarray(model.predict(X), dtype=float)
    halfwidth = conformal_halfwidth(stack_residuals(model), level)
    log_point = np.log1p(np.clip(point, 0, None))
    return point, np.expm1(log_point - halfwidth), np.expm1(log_point + halfwidth)
