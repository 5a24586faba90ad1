"""Which use types a building has anywhere in its list, not only among its three largest."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any, Self

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from building_energy.features.frames import check_fitted_columns, check_training_frame
from building_energy.preprocessing.categories import split_use_types

FLAG_PREFIX = "HasUse_"
_NOT_A_NAME = re.compile(r"[^A-Z0-9]+")


def flag_name(use_type: str) -> str:
    """A feature name every learner accepts (LightGBM refuses JSON punctuation such as ',' or '"')."""
    return FLAG_PREFIX + _NOT_A_NAME.sub("_", use_type.upper()).strip("_")


def use_type_sets(listings: pd.Series) -> list[set[str]]:
    """Each building's use types, upper-cased as written (spellings of one use are told apart here)."""
    return [{use.upper() for use in split_use_types(listing)} for listing in listings]


def flag_sets(listings: pd.Series) -> list[set[str]]:
    """Each building's use types by flag name: spellings differing only in case, spacing or punctuation
    ("Retail Store", "retail  store", "Retail-Store") are one use and one feature."""
    return [{flag_name(use) for use in split_use_types(listing)} for listing in listings]


class UseTypeFlags(TransformerMixin, BaseEstimator):
    """Adds a 0/1 column per use type listed by at least ``min_count`` training buildings.

    A data centre, a restaurant kitchen or a pool below the third-largest use still drives a building's
    energy, and ``ListOfAllPropertyUseTypes`` is the only field that mentions it. A use type is counted and
    flagged by its flag name, whatever its spelling; ``use_types_`` keeps the most listed spelling of each.
    """

    def __init__(self, min_count: int = 15) -> None:
        self.min_count = min_count

    def fit(self, X: pd.DataFrame, y: Any = None) -> Self:
        check_training_frame(self, X)
        listed = use_type_sets(X["ListOfAllPropertyUseTypes"])
        buildings = Counter(flag for uses in listed for flag in {flag_name(use) for use in uses})
        spellings = Counter(use for uses in listed for use in uses)
        spelling_of: dict[str, str] = {}
        for use, _ in sorted(spellings.items(), key=lambda item: (-item[1], item[0])):
            spelling_of.setdefault(flag_name(use), use)
        self.use_types_ = sorted(spelling_of[flag] for flag, count in buildings.items() if count >= self.min_count)
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = len(self.feature_names_in_)
        return self

    def _flag_names(self) -> list[str]:
        # De-duplicated: a model fitted before spellings were merged may list several spellings of one flag.
        return list(dict.fromkeys(flag_name(use) for use in self.use_types_))

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        check_is_fitted(self, "use_types_")
        check_fitted_columns(self, X)
        listed = flag_sets(X["ListOfAllPropertyUseTypes"])
        return X.assign(**{name: [float(name in flags) for flags in listed] for name in self._flag_names()})

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        check_is_fitted(self, "use_types_")
        return np.asarray([*self.feature_names_in_, *self._flag_names()], dtype=object)
