"""The one model: a raw City record in, annual site energy (kBtu) out."""

from __future__ import annotations

import functools
from typing import Any, Self

import numpy as np
import pandas as pd
from lightgbm import LGBMRegressor
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
from sklearn.ensemble import ExtraTreesRegressor, HistGradientBoostingRegressor, StackingRegressor
from sklearn.impute import SimpleImputer
from sklearn.model_selection import KFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler, TargetEncoder
from sklearn.svm import LinearSVR
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import ThreadpoolController
from xgboost import XGBRegressor

from building_energy.config import Settings
from building_energy.data.columns import CATEGORICAL_INPUTS, MODEL_INPUTS
from building_energy.features.engineer import SIZE_FEATURES, BuildingFeatures, engineer_features
from building_energy.features.use_mix import OUTPUT_COLUMN as USE_MIX_COLUMN
from building_energy.features.use_mix import UseMixEncoder
from building_energy.preprocessing.transformers import CleanBuildings

LEARNERS = ("extra_trees", "xgboost", "lightgbm", "hist_gradient_boosting")
AREA_FEATURE = "PropertyGFATotal_log"


@functools.cache
def _openmp() -> ThreadpoolController:
    # Built on first prediction, once the learners' OpenMP runtimes are loaded.
    return ThreadpoolController()


class IntensityRegressor(RegressorMixin, BaseEstimator):
    """Fits ``estimator`` to log intensity (log energy minus log floor area) and adds the area back.

    Trees approximate the near-proportional effect of size only in steps; learning energy per square foot
    leaves them the part that really varies between buildings.
    """

    def __init__(self, estimator: Any = None, area_feature: str = AREA_FEATURE) -> None:
        self.estimator = estimator
        self.area_feature = area_feature

    def fit(self, X: pd.DataFrame, y: Any) -> Self:
        # One OpenMP thread here too: CV folds already run in parallel processes, and HistGradientBoosting's
        # thread teams on top of them oversubscribe the cores (a fit measured 4.15 s threaded, 0.65 s not).
        with _openmp().limit(limits=1, user_api="openmp"):
            self.estimator_ = clone(self.estimator).fit(X, np.asarray(y, dtype=float) - X[self.area_feature].to_numpy())
        self.n_features_in_ = X.shape[1]
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self, "estimator_")
        # One OpenMP thread: HistGradientBoosting would otherwise start a thread team for each of its trees,
        # which costs more than the tree for the few rows a request scores and stalls on a busy machine.
        # The limit is per calling thread, and the predictions do not depend on it.
        with _openmp().limit(limits=1, user_api="openmp"):
            predicted = self.estimator_.predict(X)
        return np.asarray(predicted, dtype=float) + X[self.area_feature].to_numpy()


class ConformalMetaLearner(RegressorMixin, BaseEstimator):
    """The stack's final estimator, keeping the residuals it sees at fit for conformal intervals.

    ``StackingRegressor`` fits its final estimator on cross-validated base predictions, so these residuals
    are out-of-fold up to the few coefficients of the meta-learner itself.
    """

    def __init__(self, estimator: Any = None) -> None:
        self.estimator = estimator

    def fit(self, X: np.ndarray, y: Any) -> Self:
        self.estimator_ = clone(self.estimator).fit(X, y)
        self.residuals_ = np.asarray(y, dtype=float) - np.asarray(self.estimator_.predict(X), dtype=float)
        self.n_features_in_ = np.shape(X)[1]
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        check_is_fitted(self, "estimator_")
        return np.asarray(self.estimator_.predict(X), dtype=float)


def model_feature_names(use_energy_star: bool) -> list[str]:
    """The learners' input columns, in order: target-encoded categories, then the numeric features."""
    empty = pd.DataFrame({column: pd.Series(dtype="float64") for column in MODEL_INPUTS})
    cleaned = CleanBuildings(use_energy_star=use_energy_star).fit_transform(empty)
    engineered = [*engineer_features(cleaned, 2016, 0.0, 0.0).columns, "SurfaceCluster", USE_MIX_COLUMN]
    return [*CATEGORICAL_INPUTS, *(c for c in engineered if c not in CATEGORICAL_INPUTS)]


def size_constraints(use_energy_star: bool) -> list[int]:
    """+1 for every feature that grows with floor area: a bigger building never gets a smaller estimate."""
    return [1 if name in SIZE_FEATURES else 0 for name in model_feature_names(use_energy_star)]


def make_learner(name: str, random_state: int, use_energy_star: bool = True, **params: Any) -> IntensityRegressor:
    """A base learner on log intensity with fixed seed, one thread (folds run in parallel; one row predicts
    fast) and monotone in floor area."""
    return IntensityRegressor(make_tree_model(name, random_state, use_energy_star, **params))


def make_tree_model(name: str, random_state: int, use_energy_star: bool = True, **params: Any) -> Any:
    """The bare tree ensemble of a base learner."""
    monotone = size_constraints(use_energy_star)
    if name == "extra_trees":
        return ExtraTreesRegressor(random_state=random_state, n_jobs=1, monotonic_cst=monotone, **params)
    if name == "xgboost":
        return XGBRegressor(
            random_state=random_state, n_jobs=1, tree_method="hist", monotone_constraints=tuple(monotone), **params
        )
    if name == "lightgbm":
        return LGBMRegressor(
            random_state=random_state,
            n_jobs=1,
            deterministic=True,
            force_row_wise=True,
            verbose=-1,
            monotone_constraints=monotone,
            **params,
        )
    if name == "hist_gradient_boosting":
        return HistGradientBoostingRegressor(random_state=random_state, monotonic_cst=monotone, **params)
    raise ValueError(f"unknown learner {name!r}; known: {LEARNERS}")


def make_preprocessor(config: Settings, use_energy_star: bool) -> list[tuple[str, Any]]:
    """The fitted-on-training-rows-only steps shared by every learner."""
    encoder = ColumnTransformer(
        [
            (
                "target",
                TargetEncoder(
                    target_type="continuous", cv=KFold(config.cv_folds, shuffle=True, random_state=config.random_state)
                ),
                list(CATEGORICAL_INPUTS),
            )
        ],
        remainder="passthrough",
        verbose_feature_names_out=False,
    )
    steps: list[tuple[str, Any]] = [
        ("clean", CleanBuildings(use_energy_star=use_energy_star)),
        (
            "features",
            BuildingFeatures(
                reference_year=config.reference_year,
                centre_lat=config.features.downtown_lat,
                centre_lon=config.features.downtown_lon,
                n_surface_clusters=config.features.n_surface_clusters,
                random_state=config.random_state,
            ),
        ),
        ("use_mix", UseMixEncoder(cv=config.cv_folds, random_state=config.random_state)),
        ("encode", encoder),
        ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
    ]
    # Named columns all the way to the learners (and the explanations); the stack itself stays numeric.
    return [(name, step.set_output(transform="pandas")) for name, step in steps]


def with_log_target(pipeline: Pipeline) -> TransformedTargetRegressor:
    """Learn on log energy, answer in kBtu."""
    return TransformedTargetRegressor(regressor=pipeline, func=np.log1p, inverse_func=np.expm1, check_inverse=False)


def build_learner_pipeline(
    config: Settings, name: str, use_energy_star: bool, **params: Any
) -> TransformedTargetRegressor:
    """Raw record -> kBtu through one base learner: what each grid search tunes."""
    steps = make_preprocessor(config, use_energy_star)
    pipeline = Pipeline([*steps, ("model", make_learner(name, config.random_state, use_energy_star, **params))])
    return with_log_target(pipeline)


def build_stacking_pipeline(
    config: Settings, best_params: dict[str, dict[str, Any]], use_energy_star: bool
) -> TransformedTargetRegressor:
    """Raw record -> kBtu through the stack of the four tuned learners and a LinearSVR meta-learner."""
    estimators = [
        (name, make_learner(name, config.random_state, use_energy_star, **best_params[name])) for name in LEARNERS
    ]
    # Scaled inputs and the primal squared-loss solver let LinearSVR(C=10) converge on log predictions.
    meta = ConformalMetaLearner(
        Pipeline(
            [
                ("scale", StandardScaler()),
                (
                    "svr",
                    LinearSVR(
                        C=config.stacking.meta_c,
                        loss="squared_epsilon_insensitive",
                        dual=False,
                        max_iter=config.stacking.meta_max_iter,
                        random_state=config.random_state,
                    ),
                ),
            ]
        )
    )
    stack = StackingRegressor(
        estimators=estimators,
        final_estimator=meta,
        cv=KFold(config.cv_folds, shuffle=True, random_state=config.random_state),
        n_jobs=1,
    )
    pipeline = Pipeline([*make_preprocessor(config, use_energy_star), ("model", stack)])
    return with_log_target(pipeline)
