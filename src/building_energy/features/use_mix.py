"""What a building's mix of uses says about its energy intensity, weighted by the floor area of each use."""

from __future__ import annotations

from typing import Any, Self

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.model_selection import KFold
from sklearn.utils.validation import check_is_fitted

USE_COLUMNS = (
    ("LargestPropertyUseType", "LargestPropertyUseTypeGFA"),
    ("SecondLargestPropertyUseType", "SecondLargestPropertyUseTypeGFA"),
    ("ThirdLargestPropertyUseType", "ThirdLargestPropertyUseTypeGFA"),
)
OUTPUT_COLUMN = "UseMixIntensity"


def use_shares(buildings: pd.DataFrame) -> pd.DataFrame:
    """Long format: one row per (building position, use type, share of the total floor area)."""
    total = buildings["PropertyGFATotal"].to_numpy(dtype=float)
    parts = []
    for use_column, area_column in USE_COLUMNS:
        share = buildings[area_column].to_numpy(dtype=float) / total
        parts.append(
            pd.DataFrame({"row": np.arange(len(buildings)), "use": buildings[use_column].to_numpy(), "share": share})
        )
    long = pd.concat(parts, ignore_index=True)
    long = long[long["use"].notna() & np.isfinite(long["share"]) & (long["share"] > 0)]
    long["share"] = long["share"].clip(upper=1.0)
    return long


def _fit_means(long: pd.DataFrame, intensity: np.ndarray, prior: float, smoothing: float) -> pd.Series:
    weighted = long.assign(z=intensity[long["row"].to_numpy()] * long["share"])
    sums = weighted.groupby("use")[["z", "share"]].sum()
    return (sums["z"] + smoothing * prior) / (sums["share"] + smoothing)


def _encode(long: pd.DataFrame, n_rows: int, means: pd.Series, prior: float) -> np.ndarray:
    known = long[long["use"].isin(means.index)]
    contribution = known["share"].to_numpy() * means.reindex(known["use"]).to_numpy()
    encoded = np.bincount(known["row"], weights=contribution, minlength=n_rows)
    covered = np.bincount(known["row"], weights=known["share"].to_numpy(), minlength=n_rows)
    # Floor area of no known use counts at the average intensity.
    return encoded + (1.0 - np.clip(covered, 0.0, 1.0)) * prior


class UseMixEncoder(TransformerMixin, BaseEstimator):
    """Adds ``UseMixIntensity``: the floor-area-weighted mean log intensity of the building's use types.

    ``y`` is log energy (the pipeline runs inside the log-target wrapper); intensity is ``y`` minus log
    floor area. Per-use means are shrunk toward the overall mean by ``smoothing`` square-foot-shares, and
    ``fit_transform`` cross-fits them (like ``TargetEncoder``) so a training row never sees its own target.
    """

    def __init__(self, smoothing: float = 5.0, cv: int = 5, random_state: int = 42) -> None:
        self.smoothing = smoothing
        self.cv = cv
        self.random_state = random_state

    def _intensity(self, X: pd.DataFrame, y: Any) -> np.ndarray:
        return np.asarray(y, dtype=float) - np.log1p(X["PropertyGFATotal"].to_numpy(dtype=float))

    def fit(self, X: pd.DataFrame, y: Any) -> Self:
        intensity = self._intensity(X, y)
        self.prior_ = float(np.nanmean(intensity))
        self.means_ = _fit_means(use_shares(X), intensity, self.prior_, self.smoothing)
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = len(self.feature_names_in_)
        return self

    def fit_transform(self, X: pd.DataFrame, y: Any = None, **fit_params: Any) -> pd.DataFrame:
        self.fit(X, y)
        intensity = self._intensity(X, y)
        long = use_shares(X)
        encoded = np.empty(len(X))
        folds = KFold(self.cv, shuffle=True, random_state=self.random_state)
        for train_rows, held_out in folds.split(X):
            in_train = long["row"].isin(train_rows)
            means = _fit_means(long[in_train], intensity, float(np.nanmean(intensity[train_rows])), self.smoothing)
            held = long[long["row"].isin(held_out)]
            encoded[held_out] = _encode(held, len(X), means, self.prior_)[held_out]
        return X.assign(**{OUTPUT_COLUMN: encoded})

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        check_is_fitted(self, "means_")
        return X.assign(**{OUTPUT_COLUMN: _encode(use_shares(X), len(X), self.means_, self.prior_)})

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        check_is_fitted(self, "means_")
        return np.asarray([*self.feature_names_in_, OUTPUT_COLUMN], dtype=object)
