"""What a building's mix of uses says about its energy intensity.

A building's energy is the sum, over its uses, of each use's floor area times that use's intensity; so its
intensity is the floor-area-weighted mean of its uses' intensities in kBtu per square foot, not in logs.
The encoder fits one log intensity per use type to the buildings' log intensities through that sum. A data
centre on a tenth of an office building then raises the estimate the way the meter does, and a use type
met mostly as a second or third use still gets its own intensity.
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.model_selection import KFold
from sklearn.utils.validation import check_is_fitted

from building_energy.features.frames import check_fitted_columns, check_training_frame, require_target

USE_COLUMNS = (
    ("LargestPropertyUseType", "LargestPropertyUseTypeGFA"),
    ("SecondLargestPropertyUseType", "SecondLargestPropertyUseTypeGFA"),
    ("ThirdLargestPropertyUseType", "ThirdLargestPropertyUseTypeGFA"),
)
OUTPUT_COLUMN = "UseMixIntensity"


def use_shares(buildings: pd.DataFrame) -> pd.DataFrame:
    """Long format: one row per (building position, use type, share of the total floor area).

    Where a building's use areas add up to more than its total, its shares are scaled down to sum to one:
    the intensity of a mix is a weighted mean, whichever of the City's areas is wrong.
    """
    total = buildings["PropertyGFATotal"].to_numpy(dtype=float)
    parts = []
    for use_column, area_column in USE_COLUMNS:
        share = buildings[area_column].to_numpy(dtype=float) / total
        parts.append(
            pd.DataFrame({"row": np.arange(len(buildings)), "use": buildings[use_column].to_numpy(), "share": share})
        )
    long = pd.concat(parts, ignore_index=True)
    long = long[long["use"].notna() & np.isfinite(long["share"]) & (long["share"] > 0)]
    covered = long.groupby("row")["share"].transform("sum").to_numpy()
    return long.assign(share=long["share"].to_numpy() / np.maximum(covered, 1.0))


def share_matrix(long: pd.DataFrame, n_rows: int, use_types: pd.Index) -> np.ndarray:
    """Buildings x ``use_types``: each building's floor-area share of each use type (unknown types dropped)."""
    known = long[long["use"].isin(use_types)]
    shares = np.zeros((n_rows, len(use_types)))
    np.add.at(
        shares, (known["row"].to_numpy(), use_types.get_indexer(pd.Index(known["use"]))), known["share"].to_numpy()
    )
    return shares


def mix_intensity(shares: np.ndarray, log_intensities: np.ndarray, prior: float) -> np.ndarray:
    """Log intensity of each building: its uses' intensities weighted by floor area, the rest at ``prior``."""
    rest = np.clip(1.0 - shares.sum(axis=1), 0.0, None)
    return np.log(shares @ np.exp(log_intensities) + rest * np.exp(prior))


def fit_use_intensities(shares: np.ndarray, intensity: np.ndarray, prior: float, shrinkage: float) -> np.ndarray:
    """Log intensity per column of ``shares``: least squares on the buildings' log intensities through the
    floor-area sum, plus ``shrinkage`` times the squared distance of each use type from ``prior``, so a type
    listed by a couple of buildings stays near the average. Buildings with a NaN intensity take no part."""
    known = np.isfinite(intensity)
    shares, target = shares[known], intensity[known]
    rest = np.clip(1.0 - shares.sum(axis=1), 0.0, None) * np.exp(prior)

    def loss(log_intensities: np.ndarray) -> tuple[float, np.ndarray]:
        per_use = np.exp(log_intensities)
        mix = shares @ per_use + rest
        residual = np.log(mix) - target
        offset = log_intensities - prior
        value = float(residual @ residual + shrinkage * offset @ offset)
        gradient = 2 * (shares.T @ (residual / mix)) * per_use + 2 * shrinkage * offset
        return value, gradient

    start = np.full(shares.shape[1], prior)
    return np.asarray(minimize(loss, start, jac=True, method="L-BFGS-B").x) if len(start) else start


class UseMixEncoder(TransformerMixin, BaseEstimator):
    """Adds ``UseMixIntensity``: the log intensity a building's mix of uses implies (see the module).

    ``y`` is log energy (the pipeline runs inside the log-target wrapper); intensity is ``y`` minus log
    floor area. ``fit_transform`` cross-fits the per-use intensities (like ``TargetEncoder``) so a training
    row never sees its own target. Floor area of no known use counts at the average intensity.
    """

    def __init__(self, shrinkage: float = 1.0, cv: int = 5, random_state: int = 42) -> None:
        self.shrinkage = shrinkage
        self.cv = cv
        self.random_state = random_state

    def _intensity(self, X: pd.DataFrame, y: Any) -> np.ndarray:
        return require_target(self, X, y) - np.log1p(X["PropertyGFATotal"].to_numpy(dtype=float))

    @staticmethod
    def _shares(X: pd.DataFrame) -> tuple[np.ndarray, pd.Index]:
        long = use_shares(X)
        use_types = pd.Index(sorted(long["use"].unique()))
        return share_matrix(long, len(X), use_types), use_types

    def fit(self, X: pd.DataFrame, y: Any) -> Self:
        check_training_frame(self, X)
        self._fit(X, self._intensity(X, y), *self._shares(X))
        return self

    def _fit(self, X: pd.DataFrame, intensity: np.ndarray, shares: np.ndarray, use_types: pd.Index) -> None:
        self.prior_ = float(np.nanmean(intensity))
        self.means_ = pd.Series(fit_use_intensities(shares, intensity, self.prior_, self.shrinkage), index=use_types)
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = len(self.feature_names_in_)

    def fit_transform(self, X: pd.DataFrame, y: Any = None, **fit_params: Any) -> pd.DataFrame:
        check_training_frame(self, X)
        intensity = self._intensity(X, y)
        shares, use_types = self._shares(X)
        self._fit(X, intensity, shares, use_types)
        encoded = np.empty(len(X))
        folds = KFold(self.cv, shuffle=True, random_state=self.random_state)
        for train_rows, held_out in folds.split(X):
            train_intensity = np.full(len(X), np.nan)
            train_intensity[train_rows] = intensity[train_rows]
            prior = float(np.nanmean(train_intensity))
            means = fit_use_intensities(shares, train_intensity, prior, self.shrinkage)
            encoded[held_out] = mix_intensity(shares[held_out], means, prior)
        return X.assign(**{OUTPUT_COLUMN: encoded})

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        check_is_fitted(self, "means_")
        check_fitted_columns(self, X)
        shares = share_matrix(use_shares(X), len(X), self.means_.index)
        return X.assign(**{OUTPUT_COLUMN: mix_intensity(shares, self.means_.to_numpy(), self.prior_)})

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        check_is_fitted(self, "means_")
        return np.asarray([*self.feature_names_in_, OUTPUT_COLUMN], dtype=object)
