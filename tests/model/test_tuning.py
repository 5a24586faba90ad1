"""Optuna studies: shared by several worker processes, resumable, seeded."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from building_energy.models.tuning import open_storage, tune_in_workers, tune_learner

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


def test_unknown_learner_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown learner 'svm'"):
        tune_learner("svm", n_trials=1, storage=str(tmp_path / "j.log"))
