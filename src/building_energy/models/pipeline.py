"""The one model: a raw City record in, annual site energy (kBtu) out."""

from __future__ import annotations

import functools
from typing import Any, Self

import numpy as np
import pandas as pd
from lightgbm import LGBMRegressor
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
from sklearn.ensemble import ExtraTreesRegressor, StackingRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import KFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import TargetEncoder
from sklearn.utils.validation import check_is_fitted, validate_data
from threadpoolctl import ThreadpoolController
from xgboost import XGBRegressor

from building_energy.config import ConfigError, Settings
from building_energy.data.columns import CATEGORICAL_INPUTS
from building_energy.features.energy_star import OUTPUT_COLUMN as ENERGY_STAR_INTENSITY
from building_energy.features.energy_star import SCORABLE_COLUMN, SCORE_COLUMN, EnergyStarIntensity, ScorableUseType
from building_energy.features.engineer import SIZE_FEATURES, BuildingFeatures
from building_energy.features.use_flags import UseTypeFlags
from building_energy.features.use_mix import UseMixEncoder
from building_energy.models.learners import LEARNERS
from building_energy.models.monotone_svr import MonotoneSVR
from building_energy.preprocessing.transformers import CleanBuildings

AREA_FEATURE = "PropertyGFATotal_log"
INCREASING_FEATURES: tuple[str, ...] = (*SIZE_FEATURES, ENERGY_STAR_INTENSITY)
DECREASING_FEATURES: tuple[str, ...] = (SCORE_COLUMN,)
RAW_SIZE_FEATURES: tuple[str, ...] = tuple(name for name in SIZE_FEATURES if not name.endswith("_log"))


@functools.cache
def _openmp() -> ThreadpoolController:
    # Built on first prediction, once the learners' OpenMP runtimes are loaded.
    return ThreadpoolController()


class IntensityRegressor(RegressorMixin, BaseEstimator):
    """Fits ``estimator`` to log intensity (log energy minus log floor area) and adds the area back.

    Trees approximate the near-proportional effect of size only in steps; learning energy per square foot
    leaves them the part that really varies between buildings.
    """

    def __init__(self, estimator: Any = None, area_feature: str = AREA_FEATURE, monotone: bool = True) -> None:
        self.estimator = estimator
        self.area_feature = area_feature
        self.monotone = monotone

    def fit(self, X: pd.DataFrame, y: Any) -> Self:
        # One OpenMP thread here too: CV folds already run in parallel processes, and a learner's OpenMP
        # thread teams on top of them oversubscribe the cores (a fit measured 4.15 s threaded, 0.65 s not).
        estimator = clone(self.estimator)
        if self.monotone:
            estimator = with_monotone_constraints(estimator, monotone_directions(X.columns))
        with _openmp().limit(limits=1, user_api="openmp"):
            self.estimator_ = estimator.fit(X, np.asarray(y, dtype=float) - X[self.area_feature].to_numpy())
        self.n_features_in_ = X.shape[1]
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self, "estimator_")
        # One OpenMP thread: a learner that starts a thread team per tree (HistGradientBoosting did) spends more
        # on it than on the tree for the few rows a request scores, and stalls on a busy machine.
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
        X, y = validate_data(self, X, y, y_numeric=True)
        self.estimator_ = clone(self.estimator).fit(X, y)
        self.residuals_ = np.asarray(y, dtype=float) - np.asarray(self.estimator_.predict(X), dtype=float)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        check_is_fitted(self, "estimator_")
        X = validate_data(self, X, reset=False)
        return np.asarray(self.estimator_.predict(X), dtype=float)


# SimpleImputer's indicator of a building given without an ENERGY STAR score.
NO_SCORE_INDICATOR = f"missingindicator_{SCORE_COLUMN}"
# 0: with an ENERGY STAR score (or, for a model trained without scores, of a type EPA scores), 1: the rest.
INTERVAL_GROUPS = (0, 1)


def interval_groups(features: pd.DataFrame) -> np.ndarray:
    """1 for a building without an ENERGY STAR score, else 0: estimates without one are about twice as far
    off, so each group gets its own conformal quantile (Mondrian conformal prediction).

    A model trained without the score splits by whether EPA scores the building's use type: those are the
    buildings a score would have come with, and the same buildings its estimates are closer for.
    """
    if NO_SCORE_INDICATOR in features:
        return (features[NO_SCORE_INDICATOR].to_numpy(dtype=float) > 0.5).astype(int)
    if SCORABLE_COLUMN in features:
        return (features[SCORABLE_COLUMN].to_numpy(dtype=float) < 0.5).astype(int)
    return np.zeros(len(features), dtype=int)


class ConformalStack(StackingRegressor):
    """``StackingRegressor`` that remembers the interval group of every training row.

    Its final estimator's residuals come in the training rows' order (``cross_val_predict`` keeps it), so
    ``interval_groups_[i]`` is the group of ``final_estimator_.residuals_[i]``.
    """

    def fit(self, X: pd.DataFrame, y: Any, **fit_params: Any) -> Self:
        super().fit(X, y, **fit_params)
        self.interval_groups_ = interval_groups(X)
        return self


def monotone_directions(columns: Any) -> list[int]:
    """+1 where a feature grows with floor area or with the intensity the ENERGY STAR score implies, -1 for the
    score itself (a better score never raises the estimate).

    Floor area reaches the model through these features and through shares (use, parking) left unconstrained.
    A larger twin, every floor-area field scaled by one factor, keeps the shares and so never gets a smaller
    estimate (tested by doubling them). One area field changed alone moves the shares too: 10 % more
    ``PropertyGFATotal`` alone, use areas kept, can lower the estimate.

    Read from the column names at fit: the use-type flags and missing-value indicators depend on the rows.
    """
    return [1 if name in INCREASING_FEATURES else -1 if name in DECREASING_FEATURES else 0 for name in columns]


def with_monotone_constraints(estimator: Any, directions: list[int]) -> Any:
    """``estimator`` with ``directions`` set under whichever name its library uses."""
    if isinstance(estimator, XGBRegressor):
        return estimator.set_params(monotone_constraints=tuple(directions))
    if isinstance(estimator, LGBMRegressor):
        return estimator.set_params(monotone_constraints=directions)
    if isinstance(estimator, ExtraTreesRegressor):
        return estimator.set_params(monotonic_cst=directions)
    if isinstance(estimator, MonotoneSVR):
        return estimator.set_params(monotone_constraints=directions)
    raise TypeError(
        f"no monotone constraints known for {type(estimator).__name__}; pass IntensityRegressor(monotone=False)"
    )


def make_learner(name: str, random_state: int, **params: Any) -> IntensityRegressor:
    """A base learner on log intensity with fixed seed, one thread (folds run in parallel; one row predicts
    fast) and monotone in its size features and the ENERGY STAR score (see ``monotone_directions``)."""
    return IntensityRegressor(make_base_model(name, random_state, **params))


def make_base_model(name: str, random_state: int, **params: Any) -> Any:
    """The bare model of a base learner; ``IntensityRegressor`` adds its monotone constraints."""
    if name == "extra_trees":
        return ExtraTreesRegressor(random_state=random_state, n_jobs=1, **params)
    if name == "xgboost":
        return XGBRegressor(random_state=random_state, n_jobs=1, tree_method="hist", **params)
    if name == "lightgbm":
        return LGBMRegressor(
            random_state=random_state, n_jobs=1, deterministic=True, force_row_wise=True, verbose=-1, **params
        )
    if name == "svr":
        # Deterministic without a seed. Raw areas left out: their logs carry the size, linearly.
        return MonotoneSVR(ignored_features=RAW_SIZE_FEATURES, **params)
    raise ValueError(f"unknown learner {name!r}; known: {LEARNERS}")


def unknown_learner_params(config: Settings) -> list[str]:
    """Every parameter of a profile's grid or a tuning space that its learner does not have (or every one of
    a learner the stack does not have), as a dotted path: ``profiles.full.lightgbm.num_leafs``. LightGBM and
    XGBoost take any keyword, so a misspelt name would leave the default in force without a word."""
    known = {name: set(make_base_model(name, config.random_state).get_params()) for name in LEARNERS}
    sections: list[tuple[str, dict[str, Any]]] = [
        *((f"profiles.{profile}", config.grids(profile)) for profile in config.profiles),
        ("tuning.spaces", config.tuning.spaces),
        ("tuning.stack_spaces", config.tuning.stack_spaces),
    ]
    return [
        f"{section}.{learner}.{param}"
        for section, learners in sections
        for learner, params in learners.items()
        for param in params
        if param not in known.get(learner, ())
    ]


def check_learner_params(config: Settings) -> None:
    """Refuse a configuration naming a parameter no learner has, before any work."""
    unknown = unknown_learner_params(config)
    if unknown:
        raise ConfigError(
            f"configuration names parameters the learners do not have: {', '.join(unknown)} (names as the "
            "learner's get_params() lists them; library aliases such as XGBoost's eta are not taken)"
        )


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
        ("use_flags", UseTypeFlags(min_count=config.features.use_flag_min_count)),
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
        (
            "use_mix",
            UseMixEncoder(
                shrinkage=config.features.use_mix_shrinkage, cv=config.cv_folds, random_state=config.random_state
            ),
        ),
    ]
    if use_energy_star:
        steps.append(
            (
                "energy_star",
                EnergyStarIntensity(
                    gamma_shape=config.features.energy_star_gamma_shape,
                    smoothing=config.features.energy_star_smoothing,
                    cv=config.cv_folds,
                    random_state=config.random_state,
                ),
            )
        )
    else:
        steps.append(("scorable", ScorableUseType(use_types=config.features.energy_star_scorable_use_types)))
    # The indicators keep "no score" apart from a median score: most use types cannot get one at all.
    steps += [
        ("encode", encoder),
        ("impute", SimpleImputer(strategy="median", keep_empty_features=True, add_indicator=True)),
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
    pipeline = Pipeline([*steps, ("model", make_learner(name, config.random_state, **params))])
    return with_log_target(pipeline)


def build_stacking_pipeline(
    config: Settings, best_params: dict[str, dict[str, Any]], use_energy_star: bool
) -> TransformedTargetRegressor:
    """Raw record -> kBtu through the stack of the four tuned learners and a non-negative linear meta-learner."""
    estimators = [(name, make_learner(name, config.random_state, **best_params[name])) for name in LEARNERS]
    # Non-negative weights keep the stack monotone wherever every learner is (floor area, the score): a
    # negative weight on a learner would turn its constraint around. Same accuracy as the LinearSVR(C=10)
    # it replaces (seed 42, 5 folds: MAPE 0.474 and R2 log 0.815 both).
    meta = ConformalMetaLearner(LinearRegression(positive=True))
    stack = ConformalStack(
        estimators=estimators,
        final_estimator=meta,
        cv=KFold(config.cv_folds, shuffle=True, random_state=config.random_state),
        # The cross-fitted base predictions run in parallel processes, each learner on one thread.
        n_jobs=config.n_jobs,
    )
    pipeline = Pipeline([*make_preprocessor(config, use_energy_star), ("model", stack)])
    return with_log_target(pipeline)
