"""The first step of the model: a raw record in the City's vocabulary to typed, normalised inputs."""

from __future__ import annotations

from typing import Any, Self

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from building_energy.data.columns import CATEGORICAL_INPUTS, NUMERIC_INPUTS, TEXT_INPUTS
from building_energy.preprocessing.categories import normalise_category


class CleanBuildings(TransformerMixin, BaseEstimator):
    """Select the model's inputs from a raw frame, coerce their types and normalise category spellings.

    Columns the model never reads (names, addresses, every meter reading) are dropped here, so a caller
    may pass a full City row or one without any meter column and get the same result.
    """

    def __init__(self, use_energy_star: bool = True) -> None:
        self.use_energy_star = use_energy_star

    def _numeric_columns(self) -> list[str]:
        return [c for c in NUMERIC_INPUTS if self.use_energy_star or c != "ENERGYSTARScore"]

    def fit(self, X: pd.DataFrame, y: Any = None) -> Self:
        self._check_frame(X)
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = len(self.feature_names_in_)
        self.output_columns_ = [*CATEGORICAL_INPUTS, *self._numeric_columns(), *TEXT_INPUTS]
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        check_is_fitted(self, "output_columns_")
        self._check_frame(X)
        out = pd.DataFrame(index=X.index)
        for column in CATEGORICAL_INPUTS:
            # An absent category column is all-missing text, not floats: the target encoder sorts categories.
            out[column] = (
                normalise_category(X[column]) if column in X else pd.Series(np.nan, index=X.index, dtype=object)
            )
        for column in self._numeric_columns():
            values = pd.to_numeric(X[column], errors="coerce") if column in X else np.nan
            out[column] = pd.Series(values, index=X.index, dtype="float64")
        # inf is not a measurement: treat it like a missing value for the imputer.
        numeric = self._numeric_columns()
        out[numeric] = out[numeric].replace([np.inf, -np.inf], np.nan)
        for column in TEXT_INPUTS:
            out[column] = X[column].astype(object) if column in X else np.nan
        return out[self.output_columns_]

    @staticmethod
    def _check_frame(X: object) -> None:
        if not isinstance(X, pd.DataFrame):
            raise TypeError(f"CleanBuildings expects a pandas DataFrame of City records, got {type(X).__name__}")

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        check_is_fitted(self, "output_columns_")
        return np.asarray(self.output_columns_, dtype=object)
