"""Optuna studies: shared by several worker processes, resumable, seeded."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
import yaml

from building_energy.config import ProfileGrids, SearchSpace, get_config
from building_energy.models.tuning import (
    format_profile,
    open_storage,
    open_study,
    profile_values,
    run_study,
    tune_in_workers,
    tune_learner,
    tune_stack,
)

pytestmark = pytest.mark.slow


def test_two_workers_share_one_study_and_it_resumes(data_path: Path, tmp_path: Path) -> None:
    journal = tmp_path / "optuna" / "journal.log"
    first = tune_in_workers(
        "lightgbm", n_trials=4, workers=2, storage=str(journal), study_name="shared", data_path=data_path
    )
    study = optuna.load_study(study_name="shared", storage=open_storage(str(journal)))
    finished = [t for t in study.trials if t.state.is_finished()]
    assert 4 <= len(finished) <= 5  # a worker may finish the trial it had started when the other hit 4
    assert {t.user_attrs["worker"] for t in finished} == {0, 1}
    assert first.best_value == pytest.approx(study.best_value)

    resumed = tune_learner("lightgbm", n_trials=6, storage=str(journal), study_name="shared", data_path=data_path)
    assert resumed.n_complete + resumed.n_pruned >= 6
    assert resumed.best_value <= first.best_value
    again = optuna.load_study(study_name="shared", storage=open_storage(str(journal)))
    assert [t.params for t in again.trials[: len(finished)]] == [t.params for t in finished]


def test_a_resumed_study_proposes_new_parameters_and_the_same_ones_from_scratch(tmp_path: Path) -> None:
    """A resumed study must not replay its random start; a study started over must replay it exactly."""
    config = get_config()
    assert config.tuning.startup_trials >= 4  # the premise: all four trials are sampled from the seed alone

    def objective(trial: optuna.Trial) -> float:
        return (trial.suggest_float("x", 0, 1) - 0.3) ** 2

    def params_of(journal: Path, sessions: tuple[int, ...]) -> list[float]:
        for total in sessions:
            run_study(open_study("toy", str(journal), "minimize", config, worker=0), objective, total, worker=1)
        study = optuna.load_study(study_name="toy", storage=open_storage(str(journal)))
        return [t.params["x"] for t in study.trials]

    resumed = params_of(tmp_path / "resumed.log", (2, 4))
    assert len(set(resumed)) == 4
    assert params_of(tmp_path / "again.log", (2, 4)) == resumed
    assert params_of(tmp_path / "at_once.log", (4,))[:2] == resumed[:2]


def test_unknown_learner_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown learner 'svm'"):
        tune_learner("svm", n_trials=1, storage=str(tmp_path / "j.log"))


def test_the_stack_study_starts_from_the_profile_and_returns_a_profile(data_path: Path, tmp_path: Path) -> None:
    # The deliberately tiny profile keeps a trial to seconds; three folds instead of five for the same reason.
    config = get_config().model_copy(update={"cv_folds": 3})
    journal = str(tmp_path / "stack.log")
    tiny = profile_values(config, "tiny")
    first = tune_in_workers(
        "stack", n_trials=3, workers=2, storage=journal, data_path=data_path, profile="tiny", config=config
    )
    assert first.study_name == "stack-tiny-energy-es-train"
    study = optuna.load_study(study_name=first.study_name, storage=open_storage(journal))
    finished = [t for t in study.trials if t.state.is_finished()]
    assert 3 <= len(finished) <= 4
    assert {t.user_attrs["worker"] for t in finished} == {0, 1}
    # Trial 0 is the profile itself for every searched parameter the profile sets; it sets no other.
    enqueued = {"xgboost__max_depth": 1, "lightgbm__num_leaves": 2, "svr__C": 0.001}
    assert {name: study.trials[0].params[name] for name in enqueued} == enqueued
    assert all(study.trials[1].params[name] != value for name, value in enqueued.items())
    complete = [t.value for t in finished if t.state == optuna.trial.TrialState.COMPLETE]
    assert first.best_value == pytest.approx(max(complete))
    assert all(-1.0 < value <= 1.0 for value in complete)

    # The best trial comes back as a profile the config accepts: searched values within their space, the
    # rest the base profile's.
    printed = yaml.safe_load(format_profile(first.best_profile or {}, "tuned"))["tuned"]
    tuned = profile_values(
        config.model_copy(update={"profiles": {"tuned": ProfileGrids.model_validate(printed)}}), "tuned"
    )
    assert set(tuned) == set(tiny)
    for learner, params in tuned.items():
        space = config.tuning.stack_spaces[learner]
        for name, value in params.items():
            if name in space:
                assert space[name].low <= value <= space[name].high, (learner, name, value)
            else:
                assert value == tiny[learner][name], (learner, name)

    resumed = tune_stack(
        n_trials=len(finished) + 1, storage=journal, data_path=data_path, profile="tiny", config=config
    )
    assert resumed.n_complete + resumed.n_pruned == len(finished) + 1
    assert resumed.best_value >= first.best_value
    again = optuna.load_study(study_name=first.study_name, storage=open_storage(journal))
    assert [t.params for t in again.trials[: len(finished)]] == [t.params for t in finished]


def test_a_stack_space_for_a_learner_the_stack_lacks_is_refused(tmp_path: Path) -> None:
    config = get_config()
    spaces = {**config.tuning.stack_spaces, "catboost": {"depth": SearchSpace(kind="int", low=4, high=8)}}
    broken = config.model_copy(update={"tuning": config.tuning.model_copy(update={"stack_spaces": spaces})})
    # Built past the configuration's own check (model_copy does not validate), as a caller's code could.
    with pytest.raises(ValueError, match=r"learners do not have: tuning\.stack_spaces\.catboost\.depth$"):
        tune_stack(n_trials=1, storage=str(tmp_path / "j.log"), config=broken)
    assert not (tmp_path / "j.log").exists() or not optuna.get_all_study_names(open_storage(str(tmp_path / "j.log")))
