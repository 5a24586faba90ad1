"""Which use types a building has anywhere in its list, not only among its three largest."""

from __future__ import annotations

import re
from typing import Any, Self

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from building_energy.preprocessing.categories import split_use_types

FLAG_PREFIX = "HasUse_"
_NOT_A_NAME = re.compile(r"[^A-Z0-9]+")


def flag_name(use_type: str) -> str:
    """A feature name every learner accepts (LightGBM refuses JSON punctuation such as ',' or '"')."""
    return FLAG_PREFIX + _NOT_A_NAME.sub("_", use_type.upper()).strip("_")


def use_type_sets(listings: pd.Series) -> list[set[str]]:
    return [{use.upper() for use in split_use_types(listing)} for listing in listings]


class UseTypeFlags(TransformerMixin, BaseEstimator):
    """Adds a 0/1 column per use type listed by at least ``min_count`` training buildings.

    A data centre, a restaurant kitchen or a pool below the third-largest use still drives a building's
    energy, and ``ListOfAllPropertyUseTypes`` is the only field that mentions it.
    """

    def __init__(self, min_count: int = 15) -> None:
        self.min_count = min_count

    def fit(self, X: pd.DataFrame, y: Any = None) -> Self:
        counts = pd.Series([use for uses in use_type_sets(X["ListOfAllPropertyUseTypes"]) for use in uses])
        frequent = counts.value_counts()
        self.use_types_ = sorted(frequent[frequent >= self.min_count].index)
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = len(self.feature_names_in_)
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        check_is_fitted(self, "use_types_")
        listed = use_type_sets(X["ListOfAllPropertyUseTypes"])
        flags = {flag_name(use): [float(use in uses) for uses in listed] for use in self.use_types_}
        return X.assign(**flags)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        check_is_fitted(self, "use_types_")
        return np.asarray([*self.feature_names_in_, *(flag_name(use) for use in self.use_types_)], dtype=object)
