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


def relative_error_factor(residuals: np.ndarray) -> float:
    """The factor c that minimises the mean |c·ŷ - y| / y over these log residuals r = log y - log ŷ.

    Mean |c·e^(-r) - 1| = mean e^(-r)·|c - e^r| is least at the median of y/ŷ = e^r weighted by e^(-r): below 1
    when the spread is wide, because an over-estimate's relative error is unbounded and an under-estimate's
    is at most 1 (the MAPE-optimal point is not the median).
    """
    ratios = np.exp(np.asarray(residuals, dtype=float))
    if ratios.size == 0:
        raise ValueError("no residuals to fit a relative-error factor on")
    order = np.argsort(ratios)
    weights = np.cumsum(1 / ratios[order])
    return float(ratios[order][np.searchsorted(weights, weights[-1] / 2)])


def group_relative_factors(residuals: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """``relative_error_factor`` of each interval group, indexed by group; an empty group gets the pooled one."""
    pooled = relative_error_factor(residuals)
    return np.array(
        [
            relative_error_factor(residuals[groups == group]) if (groups == group).any() else pooled
            for group in INTERVAL_GROUPS
        ]
    )


def _point_and_groups(model: Any, X: Any) -> tuple[np.ndarray, np.ndarray]:
    """The point prediction of each row, in the target's unit, and its interval group."""
    features = model.regressor_[:-1].transform(X)
    # Equal to model.predict(X): the log-target wrapper's inverse of the stack's log prediction.
    point = np.asarray(model.inverse_func(_stack(model).predict(features)), dtype=float)
    return point, interval_groups(features)


def predict_interval(model: Any, X: Any, level: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Point prediction and the ``level`` interval, in the target's unit."""
    point, groups = _point_and_groups(model, X)
    halfwidth = group_halfwidths(stack_residuals(model), stack_groups(model), level)[groups]
    log_point = np.log1p(np.clip(point, 0, None))
    # Floored at log1p(0): nothing uses or emits less than nothing, and a small emitter's tonnes (unlike
    # anyone's kBtu) sit close enough to 0 for the log-scale interval to reach below it.
    return point, np.expm1(np.clip(log_point - halfwidth, 0, None)), np.expm1(log_point + halfwidth)


def predict_relative_error_point(model: Any, X: Any) -> np.ndarray:
    """The point estimate scaled by its group's ``relative_error_factor`` from the training rows' out-of-fold
    residuals: the estimate with the least expected MAPE, and so biased low where the spread is wide."""
    point, groups = _point_and_groups(model, X)
    return point * group_relative_factors(stack_residuals(model), stack_groups(model))[groups]
