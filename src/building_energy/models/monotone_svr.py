"""A kernel learner for the stack that stays monotone where the trees are constrained to be."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.dummy import DummyRegressor
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVR
from sklearn.utils.validation import check_is_fitted

from building_energy.features.frames import check_fitted_columns, check_training_frame


class MonotoneSVR(RegressorMixin, BaseEstimator):
    """A sign-constrained linear model on the monotone features plus an RBF ``SVR`` on all the others.

    Trees see the buildings in steps; a smooth kernel sees the same features differently, which is what a
    stack gains from. An RBF kernel on floor area or the ENERGY STAR score could bend the wrong way,
    so those features enter through a linear term whose coefficients carry the sign ``monotone_constraints``
    gives them (+1 increasing, -1 decreasing, 0 free), and the kernel fits the residual on the free features.

    ``ignored_features`` are left out altogether: raw floor areas, whose logs the linear term already has and
    whose linear effect on log intensity would explode for the largest buildings.
    """

    def __init__(
        self,
        C: float = 1.0,
        epsilon: float = 0.2,
        gamma: float = 0.012,
        monotone_constraints: Sequence[int] | None = None,
        ignored_features: Sequence[str] = (),
    ) -> None:
        self.C = C
        self.epsilon = epsilon
        self.gamma = gamma
        self.monotone_constraints = monotone_constraints
        self.ignored_features = ignored_features

    def fit(self, X: pd.DataFrame, y: Any) -> Self:
        check_training_frame(self, X)
        columns = list(X.columns)
        directions = np.zeros(len(columns), dtype=int)
        if self.monotone_constraints is not None:
            directions = np.asarray(self.monotone_constraints, dtype=int)
            if directions.shape != (len(columns),):
                raise ValueError(f"monotone_constraints has {directions.size} entries for {len(columns)} features")
        used = ~np.isin(columns, list(self.ignored_features))
        self.linear_mask_ = used & (directions != 0)
        self.kernel_mask_ = used & (directions == 0)
        self.signs_ = directions[self.linear_mask_].astype(float)
        self.feature_names_in_ = np.asarray(columns, dtype=object)
        self.n_features_in_ = len(columns)

        target = np.asarray(y, dtype=float)
        values = X.to_numpy(dtype=float)
        signed = self._signed(values)
        # positive=True on sign-flipped features: each coefficient points the way its constraint says.
        linear = make_pipeline(StandardScaler(), LinearRegression(positive=True))
        self.linear_ = (DummyRegressor() if signed.shape[1] == 0 else linear).fit(signed, target)
        free = values[:, self.kernel_mask_]
        self.kernel_ = make_pipeline(StandardScaler(), SVR(C=self.C, epsilon=self.epsilon, gamma=self.gamma))
        self.kernel_.fit(free, target - self.linear_.predict(signed))
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        values = self._values(X)
        linear = self.linear_.predict(self._signed(values))
        return np.asarray(linear + self.kernel_.predict(values[:, self.kernel_mask_]), dtype=float)

    def contributions(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Per row and feature, how far each feature moves the prediction from the baseline, which is returned
        too: ``baseline + contributions.sum(axis=1) == predict(X)``.

        The linear term splits exactly, from the training mean. The kernel term has no closed-form Shapley
        values; its contributions are integrated gradients along the straight line from the training mean,
        which add up to the kernel's change by construction (Gauss-Legendre quadrature, then the rounding
        remainder spread in proportion).
        """
        values = self._values(X)
        by_feature = np.zeros(values.shape)
        baseline = np.zeros(len(values))
        signed = self._signed(values)
        if isinstance(self.linear_, DummyRegressor):
            baseline += float(np.ravel(self.linear_.constant_)[0])
        else:
            scaler, linear = self.linear_[0], self.linear_[-1]
            by_feature[:, self.linear_mask_] = linear.coef_ * (signed - scaler.mean_) / scaler.scale_
            baseline += float(linear.intercept_)
        scaled = self.kernel_[0].transform(values[:, self.kernel_mask_])
        kernel_part, kernel_baseline = self._integrated_gradients(scaled)
        by_feature[:, self.kernel_mask_] = kernel_part
        return by_feature, baseline + kernel_baseline

    def _integrated_gradients(self, scaled: np.ndarray, nodes: int = 24, chunk: int = 128) -> tuple[np.ndarray, float]:
        svr = self.kernel_[-1]
        support, dual = svr.support_vectors_, np.ravel(svr.dual_coef_)
        reference = np.zeros((1, scaled.shape[1]))  # the training mean, once standardised
        baseline = float(svr.predict(reference)[0])
        points, weights = np.polynomial.legendre.leggauss(nodes)
        steps, weights = (points + 1) / 2, weights / 2  # from [-1, 1] to [0, 1]
        support_norms = np.einsum("sf,sf->s", support, support)
        attributions = np.empty_like(scaled)
        for start in range(0, len(scaled), chunk):
            rows = scaled[start : start + chunk]
            # Every quadrature point of every row's path, as one matrix: (rows * nodes) x features.
            path = (steps[None, :, None] * rows[:, None, :]).reshape(-1, rows.shape[1])
            distances = np.einsum("pf,pf->p", path, path)[:, None] - 2 * path @ support.T + support_norms
            weighted = dual * np.exp(-self.gamma * np.maximum(distances, 0.0))
            # d/dz of sum_s a_s exp(-gamma |z - s|^2) is -2 gamma sum_s a_s k_s (z - s).
            gradient = -2 * self.gamma * (path * weighted.sum(axis=1)[:, None] - weighted @ support)
            along = np.einsum("n,rnf->rf", weights, gradient.reshape(len(rows), nodes, -1))
            attributions[start : start + chunk] = rows * along
        remainder = svr.predict(scaled) - baseline - attributions.sum(axis=1)
        magnitude = np.abs(attributions).sum(axis=1)
        share = np.divide(
            np.abs(attributions), magnitude[:, None], out=np.zeros_like(attributions), where=magnitude[:, None] > 0
        )
        return attributions + share * remainder[:, None], baseline

    def _signed(self, values: np.ndarray) -> np.ndarray:
        """The linear term's inputs: the constrained features, flipped so that each one may only raise it."""
        return values[:, self.linear_mask_] * self.signs_

    def _values(self, X: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self, "kernel_")
        check_fitted_columns(self, X)
        return X.to_numpy(dtype=float)
