"""The grid search: what it keeps when a candidate's fits fail."""

from __future__ import annotations

from typing import Any, Self

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.compose import TransformedTargetRegressor
from sklearn.pipeline import Pipeline

from building_energy.models.search import grid_search


class FragileRegressor(RegressorMixin, BaseEstimator):
    """The mean; with ``fragile``, a fit raises whenever a row with ``x == 0`` is among the training rows, so
    the candidate fails on some folds and not others (where scikit-learn only warns and scores NaN)."""

    def __init__(self, fragile: bool = False) -> None:
        self.fragile = fragile

    def fit(self, X: Any, y: Any) -> Self:
        if self.fragile and (np.asarray(X)[:, 0] == 0).any():
            raise ValueError("a fold this setting cannot fit")
        self.mean_ = float(np.mean(y))
        return self

    def predict(self, X: Any) -> np.ndarray:
        return np.full(len(X), self.mean_)


class Holder(RegressorMixin, BaseEstimator):
    """The ``model`` step's shape in the project's pipelines: the learner sits under ``estimator``."""

    def __init__(self, estimator: Any = None) -> None:
        self.estimator = estimator

    def fit(self, X: Any, y: Any) -> Self:
        self.estimator_ = clone(self.estimator).fit(X, y)
        return self

    def predict(self, X: Any) -> np.ndarray:
        return np.asarray(self.estimator_.predict(X))


def _search(grid: dict[str, list[Any]]) -> Any:
    X = pd.DataFrame({"x": np.arange(30.0)})
    y = pd.Series(np.linspace(1e3, 1e5, 30))
    pipeline = TransformedTargetRegressor(
        regressor=Pipeline([("model", Holder(FragileRegressor()))]), func=np.log1p, inverse_func=np.expm1
    )
    return grid_search(pipeline, grid, X, y, cv_folds=3, random_state=0, n_jobs=1, description="test")


def test_a_candidate_whose_fits_fail_on_some_folds_is_never_the_best() -> None:
    # Listed first: a NaN mean would win max() as the first element, since no comparison with NaN is true.
    result = _search({"fragile": [True, False]})

    assert result.best_params == {"fragile": False}
    assert np.isfinite(result.best_score)
    assert np.isnan(result.candidates[0]["mean"])


def test_no_candidate_left_is_an_error_naming_the_grid() -> None:
    with pytest.raises(ValueError, match=r"every candidate of \{'fragile': \[True\]\} failed to fit"):
        _search({"fragile": [True]})
