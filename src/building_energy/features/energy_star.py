"""What the ENERGY STAR score says about intensity, given the use type it was scored against.

Portfolio Manager scores a building by the ratio of its source intensity to the intensity EPA predicts
for its use type, read through a gamma distribution of that ratio: score s means the ratio sits at the
(100 - s)th percentile. Inverting that gives a log ratio that adds to a per-use-type baseline, a shape
trees split on one type at a time but which this encoder fits once across all types.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.model_selection import KFold
from sklearn.utils.validation import check_is_fitted

from building_energy.features.frames import check_fitted_columns, check_training_frame, require_target
from building_energy.preprocessing.categories import normalise_category

SCORE_COLUMN = "ENERGYSTARScore"
TYPE_COLUMN = "LargestPropertyUseType"
AREA_COLUMN = "PropertyGFATotal"
OUTPUT_COLUMN = "EnergyStarIntensity"
SCORABLE_COLUMN = "ScorableUseType"


def score_log_ratio(score: np.ndarray, shape: float) -> np.ndarray:
    """Log of the actual-to-predicted intensity ratio a score stands for (NaN where there is no score)."""
    score = np.asarray(score, dtype=float)
    quantile = 1.0 - (np.clip(score, 1.0, 100.0) - 0.5) / 100.0
    return np.log(stats.gamma.ppf(quantile, a=shape, scale=1.0 / shape))


def fit_score_relation(
    use_types: np.ndarray, log_ratio: np.ndarray, intensity: np.ndarray, smoothing: float
) -> tuple[float, float, pd.Series]:
    """Fit ``intensity = baseline[use type] + slope * log_ratio`` on the scored rows.

    The slope is pooled within use types (each type's mean removed), the baselines are shrunk toward the
    overall one by ``smoothing`` buildings so a type seen twice does not get its own.
    """
    scored = np.isfinite(log_ratio) & np.isfinite(intensity)
    frame = pd.DataFrame({"use": use_types[scored], "g": log_ratio[scored], "z": intensity[scored]})
    if frame.empty:  # no scored building to learn from: every score maps to the mean intensity
        known = intensity[np.isfinite(intensity)]
        prior = float(known.mean()) if known.size else 0.0
        return 0.0, prior, pd.Series(dtype=float)
    centred = frame[["g", "z"]] - frame.groupby("use")[["g", "z"]].transform("mean")
    spread = float((centred["g"] ** 2).sum())
    slope = float((centred["g"] * centred["z"]).sum() / spread) if spread > 0 else 0.0
    # A negative slope would make a better score raise the estimate (the learners take this feature as
    # increasing); data that says so is noise, so the relation is flat instead.
    slope = max(slope, 0.0)
    level = frame["z"] - slope * frame["g"]
    prior = float(level.mean())
    sums = level.groupby(frame["use"]).agg(["sum", "count"])
    baselines = (sums["sum"] + smoothing * prior) / (sums["count"] + smoothing)
    return slope, prior, baselines


def apply_score_relation(
    use_types: np.ndarray, log_ratio: np.ndarray, slope: float, prior: float, baselines: pd.Series
) -> np.ndarray:
    baseline = pd.Series(use_types).map(baselines).fillna(prior).to_numpy(dtype=float)
    return np.where(np.isfinite(log_ratio), baseline + slope * log_ratio, np.nan)


class EnergyStarIntensity(TransformerMixin, BaseEstimator):
    """Adds ``EnergyStarIntensity``: the log intensity the score implies for the building's largest use.

    ``y`` is log energy (the pipeline runs inside the log-target wrapper). Rows without a score get NaN,
    left to the imputer and its missing-value indicator. ``fit_transform`` cross-fits the relation, like
    ``TargetEncoder``, so a training row's own energy never reaches its feature.
    """

    def __init__(self, gamma_shape: float = 4.0, smoothing: float = 5.0, cv: int = 5, random_state: int = 42) -> None:
        self.gamma_shape = gamma_shape
        self.smoothing = smoothing
        self.cv = cv
        self.random_state = random_state

    def _inputs(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        use_types = X[TYPE_COLUMN].astype(str).to_numpy()
        return use_types, score_log_ratio(X[SCORE_COLUMN].to_numpy(dtype=float), self.gamma_shape)

    def _intensity(self, X: pd.DataFrame, y: Any) -> np.ndarray:
        return require_target(self, X, y) - np.log1p(X[AREA_COLUMN].to_numpy(dtype=float))

    def fit(self, X: pd.DataFrame, y: Any) -> Self:
        check_training_frame(self, X)
        use_types, log_ratio = self._inputs(X)
        self.slope_, self.prior_, self.baselines_ = fit_score_relation(
            use_types, log_ratio, self._intensity(X, y), self.smoothing
        )
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = len(self.feature_names_in_)
        return self

    def fit_transform(self, X: pd.DataFrame, y: Any = None, **fit_params: Any) -> pd.DataFrame:
        self.fit(X, y)
        use_types, log_ratio = self._inputs(X)
        intensity = self._intensity(X, y)
        encoded = np.empty(len(X))
        for train_rows, held_out in KFold(self.cv, shuffle=True, random_state=self.random_state).split(X):
            relation = fit_score_relation(
                use_types[train_rows], log_ratio[train_rows], intensity[train_rows], self.smoothing
            )
            encoded[held_out] = apply_score_relation(use_types[held_out], log_ratio[held_out], *relation)
        return X.assign(**{OUTPUT_COLUMN: encoded})

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        check_is_fitted(self, "baselines_")
        check_fitted_columns(self, X)
        use_types, log_ratio = self._inputs(X)
        return X.assign(
            **{OUTPUT_COLUMN: apply_score_relation(use_types, log_ratio, self.slope_, self.prior_, self.baselines_)}
        )

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        check_is_fitted(self, "baselines_")
        return np.asarray([*self.feature_names_in_, OUTPUT_COLUMN], dtype=object)


class ScorableUseType(TransformerMixin, BaseEstimator):
    """Adds ``ScorableUseType``: 1 where Portfolio Manager scores the building's largest use type, else 0.

    A model trained without the score cannot see which buildings had one; this column lets its intervals
    still calibrate apart the buildings EPA can score, whose energy is more regular, from the rest.
    ``use_types`` are matched after the same spelling normalisation as every other category.
    """

    def __init__(self, use_types: Sequence[str] = ()) -> None:
        self.use_types = use_types

    def fit(self, X: pd.DataFrame, y: Any = None) -> Self:
        check_training_frame(self, X)
        self.scorable_ = frozenset(normalise_category(pd.Series(list(self.use_types), dtype=object)).dropna())
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = len(self.feature_names_in_)
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        check_is_fitted(self, "scorable_")
        check_fitted_columns(self, X)
        return X.assign(**{SCORABLE_COLUMN: [float(use in self.scorable_) for use in X[TYPE_COLUMN]]})

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        check_is_fitted(self, "scorable_")
        return np.asarray([*self.feature_names_in_, SCORABLE_COLUMN], dtype=object)
