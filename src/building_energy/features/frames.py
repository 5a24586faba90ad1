"""Input checks shared by the project's own transformers and estimators."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def _require_frame(estimator: Any, X: Any) -> str:
    name = type(estimator).__name__
    if not isinstance(X, pd.DataFrame):
        raise TypeError(f"{name} needs a pandas DataFrame with named columns, got {type(X).__name__}")
    return name


def check_training_frame(estimator: Any, X: Any) -> None:
    """Refuse what ``fit`` cannot learn from: an array (the steps read columns by name) or no rows at all,
    which would leave NaN averages that encode every later building as unknown."""
    name = _require_frame(estimator, X)
    if len(X) == 0:
        raise ValueError(f"{name} cannot be fitted on 0 rows")


def check_fitted_columns(estimator: Any, X: Any) -> None:
    """Refuse input whose columns are not, in order, the ones ``estimator`` was fitted on.

    These steps add columns to their input and ``set_output(transform="pandas")`` labels the result from
    ``get_feature_names_out``, so a frame with the same columns in another order would come out mislabelled
    rather than fail; positional estimators would read the wrong features silently.
    """
    name = _require_frame(estimator, X)
    expected = list(estimator.feature_names_in_)
    given = list(X.columns)
    if given == expected:
        return
    missing = [column for column in expected if column not in given]
    unexpected = [column for column in given if column not in expected]
    if missing or unexpected:
        raise ValueError(f"{name} was fitted on other columns: missing {missing}, unexpected {unexpected}")
    raise ValueError(f"{name} was fitted on these columns in another order: {expected}")


def require_target(estimator: Any, X: pd.DataFrame, y: Any) -> np.ndarray:
    """``y`` as floats, one per row of ``X``: the target encoders cannot be fitted without it."""
    name = type(estimator).__name__
    if y is None:
        raise ValueError(f"{name} is fitted on the target: pass y (log energy) to fit and fit_transform")
    target = np.asarray(y, dtype=float)
    if target.shape != (len(X),):
        raise ValueError(f"{name}: y has shape {target.shape}, expected one value per row of X ({len(X)})")
    return target
