"""The stack's kernel learner: monotone by construction where it is constrained, an ordinary estimator else."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV

from building_energy.models.monotone_svr import MonotoneSVR
from building_energy.models.pipeline import IntensityRegressor, make_learner


@pytest.fixture
def buildings() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 200
    return pd.DataFrame(
        {
            "PropertyGFATotal": rng.lognormal(11, 1, n),
            "PropertyGFATotal_log": rng.normal(11, 1, n),
            "ENERGYSTARScore": rng.uniform(1, 100, n),
            "age": rng.uniform(0, 100, n),
            "type_code": rng.normal(0, 1, n),
        }
    )


def _intensity(frame: pd.DataFrame) -> np.ndarray:
    # Falls with size and score over most of the range, so an unconstrained fit would bend the wrong way.
    return np.sin(frame["age"].to_numpy() / 15) + frame["type_code"].to_numpy() - 0.004 * frame["ENERGYSTARScore"]


def test_prediction_follows_the_constraints_everywhere(buildings: pd.DataFrame) -> None:
    y = _intensity(buildings) - 0.3 * buildings["PropertyGFATotal_log"]
    model = MonotoneSVR(monotone_constraints=[1, 1, -1, 0, 0], ignored_features=("PropertyGFATotal",))
    model.fit(buildings, y)
    grid = np.linspace(buildings["PropertyGFATotal_log"].min() - 2, buildings["PropertyGFATotal_log"].max() + 2, 30)
    for _, row in buildings.head(20).iterrows():
        sweep = pd.DataFrame([row] * len(grid)).assign(PropertyGFATotal_log=grid)
        assert (np.diff(model.predict(sweep)) >= -1e-12).all()
        scores = pd.DataFrame([row] * 5).assign(ENERGYSTARScore=[1.0, 25.0, 50.0, 75.0, 100.0])
        assert (np.diff(model.predict(scores)) <= 1e-12).all()


def test_free_features_get_a_non_linear_fit(buildings: pd.DataFrame) -> None:
    # Size and score act the way their constraints allow; the sine of age is left to the kernel.
    y = _intensity(buildings) + 0.3 * buildings["PropertyGFATotal_log"]
    # gamma for two free features; the stack's default suits its sixty.
    model = MonotoneSVR(gamma=0.5, monotone_constraints=[1, 1, -1, 0, 0], ignored_features=("PropertyGFATotal",))
    assert model.fit(buildings, y).score(buildings, y) > 0.9


def test_ignored_features_do_not_move_a_prediction(buildings: pd.DataFrame) -> None:
    y = _intensity(buildings)
    model = MonotoneSVR(monotone_constraints=[1, 1, -1, 0, 0], ignored_features=("PropertyGFATotal",))
    model.fit(buildings, y)
    np.testing.assert_array_equal(
        model.predict(buildings.assign(PropertyGFATotal=buildings["PropertyGFATotal"] * 100)), model.predict(buildings)
    )


def test_behaves_as_a_scikit_learn_estimator(buildings: pd.DataFrame) -> None:
    y = _intensity(buildings)
    before = buildings.copy()
    model = MonotoneSVR(C=3.0)
    assert clone(model).get_params() == model.get_params()
    assert model.fit(buildings, y) is model
    pd.testing.assert_frame_equal(buildings, before)
    search = GridSearchCV(MonotoneSVR(), {"gamma": [0.01, 0.1]}, cv=3, error_score="raise").fit(buildings, y)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    assert search.best_estimator_.gamma == search.best_params_["gamma"]
    np.testing.assert_array_equal(
        MonotoneSVR().fit(buildings, y).predict(buildings), model.set_params(C=1.0).fit(buildings, y).predict(buildings)
    )


def test_mismatched_inputs_are_refused(buildings: pd.DataFrame) -> None:
    y = _intensity(buildings)
    with pytest.raises(ValueError, match="monotone_constraints has 2 entries for 5 features"):
        MonotoneSVR(monotone_constraints=[1, 0]).fit(buildings, y)
    model = MonotoneSVR().fit(buildings, y)
    with pytest.raises(ValueError, match=r"MonotoneSVR was fitted on other columns: missing \['age'\]"):
        model.predict(buildings.drop(columns="age"))
    # Same columns in another order: read by position, they would be the wrong features.
    with pytest.raises(ValueError, match="MonotoneSVR was fitted on these columns in another order"):
        model.predict(buildings[buildings.columns[::-1]])


def test_the_stack_learner_gets_its_constraints_from_the_column_names(buildings: pd.DataFrame) -> None:
    learner = make_learner("svr", random_state=0)
    assert isinstance(learner, IntensityRegressor)
    learner.fit(buildings, buildings["PropertyGFATotal_log"] + _intensity(buildings))
    fitted = learner.estimator_
    assert list(fitted.monotone_constraints) == [1, 1, -1, 0, 0]
    # The raw area is left out; its log enters the linear term.
    assert list(fitted.linear_mask_) == [False, True, True, False, False]
    assert list(fitted.kernel_mask_) == [False, False, False, True, True]


def test_contributions_add_up_and_leave_ignored_features_out(buildings: pd.DataFrame) -> None:
    y = _intensity(buildings) + 0.3 * buildings["PropertyGFATotal_log"]
    model = MonotoneSVR(gamma=0.5, monotone_constraints=[1, 1, -1, 0, 0], ignored_features=("PropertyGFATotal",))
    contributions, baseline = model.fit(buildings, y).contributions(buildings)
    np.testing.assert_allclose(baseline + contributions.sum(axis=1), model.predict(buildings), atol=1e-10)
    assert (contributions[:, 0] == 0).all()
    # Age drives the kernel term most: its contributions spread widest.
    assert np.abs(contributions).mean(axis=0).argmax() in (3, 4)
    # A building at the training mean gets (almost) nothing from any feature.
    mean_building = buildings.mean().to_frame().T
    assert np.abs(model.contributions(mean_building)[0]).max() < 1e-9
