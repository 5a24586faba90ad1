"""Optuna studies: shared by several worker processes, resumable, seeded."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import optuna
import pandas as pd
import pytest
import yaml
from pydantic import ValidationError

from building_energy.cli import main
from building_energy.config import ProfileGrids, SearchSpace, Settings, TuningSettings, config_file, get_config
from building_energy.data.schema import DataValidationError
from building_energy.models.bench import run_benchmark
from building_energy.models.tuning import (
    INTERRUPTED,
    RETRY_OF,
    check_config_destination,
    format_profile,
    open_storage,
    open_study,
    owner_gone,
    process_token,
    profile_values,
    requeue_stale_trial,
    run_study,
    tune_in_workers,
    tune_learner,
    tune_stack,
    write_config_with_profile,
)

pytestmark = pytest.mark.slow


@pytest.fixture(params=["journal", "postgresql"])
def shared_storage(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The default journal file (one machine), or a PostgreSQL database on a real server (a cluster)."""
    if request.param == "postgresql":
        return str(request.getfixturevalue("postgres_url"))
    return str(tmp_path / "optuna" / "journal.log")


def test_two_workers_share_one_study_and_it_resumes(data_path: Path, shared_storage: str) -> None:
    journal = shared_storage
    first = tune_in_workers(
        "lightgbm", n_trials=4, workers=2, storage=journal, study_name="shared", data_path=data_path
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
            study = open_study("toy", str(journal), "minimize", config, worker=0, identity={"objective": "toy"})
            run_study(study, objective, total, worker=1)
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
    with pytest.raises(ValueError, match=r"learners do not have: tuning\.stack_spaces\.catboost\.depth \(names as"):
        tune_stack(n_trials=1, storage=str(tmp_path / "j.log"), config=broken)
    assert not (tmp_path / "j.log").exists() or not optuna.get_all_study_names(open_storage(str(tmp_path / "j.log")))


# Trials of a two-fold SVR take seconds: enough to catch one running.
STUDY = "svr-energy-es"
START_SECONDS = 300  # importing the stack and loading the data on a busy CI machine


@pytest.fixture
def two_folds() -> Settings:
    return get_config().model_copy(update={"cv_folds": 2})


def _trials(journal: Path | str, name: str = STUDY) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=name, storage=open_storage(str(journal))).trials


def _tune_command(journal: Path | str, data_path: Path, *options: str, **env: str) -> subprocess.Popen[str]:
    command = [str(Path(sys.executable).parent / "building-energy"), "tune", "--learner", "svr"]
    return subprocess.Popen(
        [*command, "--storage", str(journal), "--data", str(data_path), *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "BE_CV_FOLDS": "2", **env},
    )


def _a_running_trial(journal: Path | str, process: subprocess.Popen[str]) -> optuna.trial.FrozenTrial:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[0]
        if journal.is_file() if isinstance(journal, Path) else STUDY in optuna.get_all_study_names(journal):
            running = [
                t for t in _trials(journal) if t.state == optuna.trial.TrialState.RUNNING and "pid" in t.user_attrs
            ]
            if running:
                return running[0]
        time.sleep(0.2)
    process.kill()
    pytest.fail(f"no trial started within {START_SECONDS} s: {process.communicate()[0]}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _assert_run_again(trials: list[optuna.trial.FrozenTrial], killed: optuna.trial.FrozenTrial) -> None:
    """``killed`` failed, and was run again to completion with the parameters it had drawn; nothing is left
    running."""
    assert trials[killed.number].state == optuna.trial.TrialState.FAIL
    (retry,) = [t for t in trials if t.user_attrs.get(RETRY_OF) == killed.number]
    assert retry.state == optuna.trial.TrialState.COMPLETE
    assert {name: retry.params[name] for name in killed.params} == killed.params
    assert not [t for t in trials if t.state == optuna.trial.TrialState.RUNNING]


def test_a_trial_killed_mid_run_is_run_again_by_the_next_command(
    data_path: Path, tmp_path: Path, two_folds: Settings
) -> None:
    journal = tmp_path / "journal.log"
    process = _tune_command(journal, data_path, "--trials", "3")
    killed = _a_running_trial(journal, process)
    process.kill()  # SIGKILL: no handler runs, the trial stays RUNNING in the journal
    process.wait(timeout=60)
    killed = _trials(journal)[killed.number]  # as it was left (it may have drawn more since it was seen)

    tune_learner("svr", n_trials=3, storage=str(journal), data_path=data_path, config=two_folds)
    trials = _trials(journal)
    _assert_run_again(trials, killed)
    # A later run queues nothing again.
    tune_learner("svr", n_trials=3, storage=str(journal), data_path=data_path, config=two_folds)
    assert len(_trials(journal)) == len(trials)


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_trial_whose_process_died_on_another_machine_is_run_again_once_its_heartbeat_stops(
    data_path: Path, tmp_path: Path, kind: str, request: pytest.FixtureRequest
) -> None:
    database = request.getfixturevalue("postgres_url") if kind == "postgresql" else f"sqlite:///{tmp_path / 'o.db'}"
    beat = {"BE_TUNING__HEARTBEAT_SECONDS": "1", "BE_TUNING__HEARTBEAT_GRACE_SECONDS": "2"}
    process = _tune_command(database, data_path, "--trials", "3", **beat)
    killed = _a_running_trial(database, process)
    process.kill()
    process.wait(timeout=60)
    # As a cluster sees it: the dead process ran on another host, so no process here can tell it is gone.
    storage = open_storage(database)
    storage.set_trial_user_attr(killed._trial_id, "host", "another-machine")
    killed = _trials(database)[killed.number]
    time.sleep(4)  # past the grace period (SQLite's clock counts whole seconds)

    config = get_config().model_copy(
        update={
            "cv_folds": 2,
            "tuning": get_config().tuning.model_copy(update={"heartbeat_seconds": 1, "heartbeat_grace_seconds": 2}),
        }
    )
    tune_learner("svr", n_trials=3, storage=database, data_path=data_path, config=config)
    _assert_run_again(_trials(database), killed)


def _taken_over_study(
    tmp_path: Path, ends: Callable[[optuna.Trial], float]
) -> tuple[optuna.Study, Callable[[optuna.Trial], float]]:
    """A study whose trial 0 another worker fails and queues again while this worker runs it (this one stalled
    past the grace period, as Optuna's stale-trial check and the heartbeat callback do), then ends as ``ends``."""
    database = f"sqlite:///{tmp_path / 'optuna.db'}"
    study = open_study("toy", database, "minimize", get_config(), worker=0, identity={"objective": "toy"})
    other_worker = optuna.load_study(study_name="toy", storage=open_storage(database))

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0, 1)
        if trial.number == 0:
            other_worker._storage.set_trial_state_values(trial._trial_id, optuna.trial.TrialState.FAIL)
            requeue_stale_trial(other_worker, other_worker.trials[0])
            return ends(trial)
        return x

    return study, objective


def _report(trial: optuna.Trial) -> float:
    trial.report(0.5, 0)  # refused: the trial is finished
    return 0.5


def _prune(trial: optuna.Trial) -> float:
    raise optuna.TrialPruned


def _fail(trial: optuna.Trial) -> float:
    raise ValueError("a learner refused its parameters")


def _return(trial: optuna.Trial) -> float:
    return 0.5


@pytest.mark.parametrize("ends", [_return, _report, _prune, _fail], ids=["value", "report", "pruned", "error"])
def test_a_worker_whose_trial_another_worker_failed_and_queued_goes_on_with_the_study(
    tmp_path: Path, ends: Callable[[optuna.Trial], float]
) -> None:
    study, objective = _taken_over_study(tmp_path, ends)
    run_study(study, objective, n_trials=3, worker=0)
    trials = study.get_trials()
    assert trials[0].state == optuna.trial.TrialState.FAIL
    (retry,) = [t for t in trials if t.user_attrs.get(RETRY_OF) == 0]
    assert retry.state == optuna.trial.TrialState.COMPLETE
    assert retry.params == trials[0].params
    assert len([t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]) == 3


def test_ctrl_c_in_a_trial_another_worker_took_over_still_stops_the_worker(tmp_path: Path) -> None:
    def interrupted(trial: optuna.Trial) -> float:
        raise KeyboardInterrupt

    study, objective = _taken_over_study(tmp_path, interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_study(study, objective, n_trials=3, worker=0)
    # Queued once, by the worker that took it over; this one added nothing.
    assert [t.user_attrs.get(RETRY_OF) for t in study.get_trials()] == [None, 0]


def test_a_heartbeat_grace_shorter_than_a_beat_is_refused() -> None:
    tuning = get_config().tuning.model_dump()
    with pytest.raises(ValidationError, match=r"heartbeat_grace_seconds \(60\) must be longer than heartbeat_seconds"):
        TuningSettings.model_validate({**tuning, "heartbeat_seconds": 60, "heartbeat_grace_seconds": 60})


def test_sigterm_stops_tune_and_its_workers_and_marks_their_trials_interrupted(data_path: Path, tmp_path: Path) -> None:
    interrupted = []
    # A two-fold SVR trial lasts about a second: the signal may land between a worker's trials, which must
    # leave the study whole too, but interrupts no trial. A few attempts make sure one lands in a trial.
    for attempt in range(4):
        journal = tmp_path / f"journal{attempt}.log"
        process = _tune_command(journal, data_path, "--trials", "20", "--workers", "2")
        _a_running_trial(journal, process)
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=120)
        assert process.returncode == 130, output
        assert output.rstrip().endswith("error: interrupted")
        trials = _trials(journal)
        workers = {t.user_attrs["pid"] for t in trials if "pid" in t.user_attrs}  # a queued retry has none yet
        deadline = time.monotonic() + 60
        while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not [pid for pid in workers if _alive(pid)], "a worker outlived the tune command"
        assert not [t for t in trials if t.state == optuna.trial.TrialState.RUNNING]
        failed = [t for t in trials if t.state == optuna.trial.TrialState.FAIL]
        assert all(t.user_attrs.get(INTERRUPTED) for t in failed)
        # Each is queued to run again by the next command.
        queued = [t for t in trials if t.state == optuna.trial.TrialState.WAITING]
        assert sorted(t.user_attrs[RETRY_OF] for t in queued) == sorted(t.number for t in failed)
        interrupted += failed
        if interrupted:
            break
    assert interrupted, "in no attempt did SIGTERM land in a trial"


def test_a_study_is_resumed_only_for_what_it_was_made_for(data_path: Path, tmp_path: Path, two_folds: Settings) -> None:
    journal = str(tmp_path / "journal.log")
    tune_learner("svr", n_trials=1, storage=journal, data_path=data_path, config=two_folds)
    with pytest.raises(
        ValueError, match=rf"study '{STUDY}' .* was created for learner 'svr', not 'lightgbm'; another space"
    ):
        tune_learner("lightgbm", n_trials=2, storage=journal, study_name=STUDY, data_path=data_path, config=two_folds)
    with pytest.raises(ValueError, match=r"was created for cv_folds 2, not 3: its trials are not comparable"):
        tune_learner(
            "svr",
            n_trials=2,
            storage=journal,
            data_path=data_path,
            config=get_config().model_copy(update={"cv_folds": 3}),
        )
    with pytest.raises(ValueError, match=r"was created for use_energy_star True, not False"):
        tune_learner(
            "svr",
            n_trials=2,
            storage=journal,
            study_name=STUDY,
            data_path=data_path,
            use_energy_star=False,
            config=two_folds,
        )
    with pytest.raises(ValueError, match=r"was created to minimize, not to maximize"):
        tune_stack(n_trials=1, storage=journal, study_name=STUDY, data_path=data_path, profile="tiny", config=two_folds)
    assert len(_trials(journal)) == 1


def test_bad_data_is_refused_before_any_study_is_created_or_checked(
    data_path: Path, tmp_path: Path, two_folds: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    """A study created for a file that then failed to load was stamped with its checksum, and refused the
    right data ever after, though it held no trial."""
    empty, journal = tmp_path / "empty.csv", tmp_path / "optuna" / "journal.log"
    empty.write_text("")
    assert main(["tune", "--learner", "svr", "--trials", "1", "--data", str(empty), "--storage", str(journal)]) == 2
    assert capsys.readouterr().err.splitlines() == [f"error: {empty}: the file is empty"]
    for learner, options in (("svr", {}), ("stack", {"profile": "tiny"})):
        with pytest.raises(DataValidationError, match=rf"^{re.escape(str(empty))}: the file is empty$"):
            tune_in_workers(learner, n_trials=1, workers=2, storage=str(journal), data_path=empty, **options)
    assert not journal.parent.exists()

    # The default study is then created for the right data; the bad file, given again, is still its own error.
    result = tune_learner("svr", n_trials=1, storage=str(journal), data_path=data_path, config=two_folds)
    assert (result.study_name, result.n_complete + result.n_pruned) == (STUDY, 1)
    with pytest.raises(DataValidationError, match=rf"^{re.escape(str(empty))}: the file is empty$"):
        tune_learner("svr", n_trials=2, storage=str(journal), data_path=empty, config=two_folds)
    with pytest.raises(DataValidationError, match=rf"^{re.escape(str(empty))}: the file is empty$"):
        tune_in_workers("svr", n_trials=2, workers=2, storage=str(journal), data_path=empty, config=two_folds)
    assert len(_trials(journal)) == 1


def test_data_too_small_to_train_on_is_refused_in_one_line_before_any_study(
    data_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """As train refuses it: not a trial failing with ~20 frames of scikit-learn's traceback."""
    frame = pd.read_csv(data_path, dtype=str, keep_default_na=False)
    few, journal = tmp_path / "few.csv", tmp_path / "optuna" / "journal.log"
    frame.head(10).to_csv(few, index=False)
    for learner in ("svr", "stack"):
        argv = ["tune", "--learner", learner, "--trials", "1", "--data", str(few), "--storage", str(journal)]
        assert main(argv) == 2
        error = capsys.readouterr().err
        assert re.search(
            rf"^error: {re.escape(str(few))}: \d+ buildings to train on after cleaning and the test split; at least "
            r"100 are needed \(training nests 5-fold cross-validations\)$",
            error,
            re.MULTILINE,
        ), error
        assert "Traceback" not in error
    # Enough buildings in the training split, too few in the stack study's folds of it.
    some = tmp_path / "some.csv"
    frame.head(150).to_csv(some, index=False)
    with pytest.raises(DataValidationError, match=r"buildings to train on in fold 0 of the training split after clean"):
        tune_stack(n_trials=1, storage=str(journal), data_path=some, profile="tiny")
    assert not journal.parent.exists()


def test_a_storage_that_cannot_be_opened_is_one_line_naming_it(data_path: Path, tmp_path: Path) -> None:
    with pytest.raises(
        ValueError, match=r"^sqlite:////nonexistent_dir/x\.db: cannot open the Optuna storage \(OperationalError"
    ):
        open_storage("sqlite:////nonexistent_dir/x.db")
    not_a_journal = tmp_path / "notes.txt"
    not_a_journal.write_text("some notes\n")
    with pytest.raises(ValueError, match=rf"^{not_a_journal}: cannot open study '{STUDY}' \(JSONDecodeError"):
        tune_learner("svr", n_trials=1, storage=str(not_a_journal), data_path=data_path)


def test_workers_started_by_hand_with_their_own_ids_propose_different_trials(tmp_path: Path) -> None:
    config, journal = get_config(), str(tmp_path / "journal.log")
    first, second = (
        open_study("toy", journal, "minimize", config, worker=worker, identity={"objective": "toy"}).ask()
        for worker in (0, 3)
    )
    assert first.suggest_float("x", 0, 1) != second.suggest_float("x", 0, 1)


def test_a_repeated_seed_is_refused_before_the_benchmark_runs(tmp_path: Path) -> None:
    # A missing data file as well: had the benchmark started, that would be the error.
    with pytest.raises(ValueError, match=r"seeds \[1\] given more than once"):
        run_benchmark(data_path=tmp_path / "absent.csv", profile="tiny", seeds=(1, 2, 1), n_folds=2)


def test_a_study_from_before_identities_were_recorded_is_not_resumed(tmp_path: Path) -> None:
    journal = str(tmp_path / "journal.log")
    old = optuna.create_study(study_name="old", storage=open_storage(journal))
    old.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=1)
    with pytest.raises(ValueError, match=r"made by an earlier version that did not record what it was made for"):
        open_study("old", journal, "minimize", get_config(), worker=0, identity={"objective": "toy"})


def test_a_running_trial_whose_process_is_gone_is_queued_again_even_under_a_reused_pid(tmp_path: Path) -> None:
    config, journal = get_config(), str(tmp_path / "journal.log")
    study = open_study("toy", journal, "minimize", config, worker=0, identity={"objective": "toy"})
    left = study.ask()
    left.suggest_float("x", 0, 1)
    # What a command that died would have left: this machine, and this very pid (a restarted container's
    # first process gets the same one), started at another time.
    left.set_user_attr("host", socket.gethostname())
    left.set_user_attr("pid", os.getpid())
    left.set_user_attr("process", "another boot:0")

    open_study("toy", journal, "minimize", config, worker=0, identity={"objective": "toy"})
    trials = _trials(Path(journal), "toy")
    assert trials[left.number].state == optuna.trial.TrialState.FAIL
    (retry,) = [t for t in trials if t.user_attrs.get(RETRY_OF) == left.number]
    assert retry.state == optuna.trial.TrialState.WAITING
    assert retry.system_attrs["fixed_params"] == trials[left.number].params


def test_a_trials_owner_is_its_pid_at_its_start_time() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        token = process_token(child.pid)
        assert token is not None

        def owned(process: str | None) -> optuna.trial.FrozenTrial:
            attrs = {"host": socket.gethostname(), "pid": child.pid, "process": process}
            return optuna.trial.create_trial(value=0.0, user_attrs=attrs)

        assert not owner_gone(owned(token))
        assert owner_gone(owned(token + "0"))  # the same pid, another process: the owner is gone
        assert not owner_gone(owned(None))  # recorded without a token: the pid alone, alive
    finally:
        child.kill()
        child.wait()
    assert owner_gone(owned(token))
    assert not owner_gone(optuna.trial.create_trial(value=0.0, user_attrs={"host": "elsewhere", "pid": child.pid}))


def test_an_interrupted_trial_its_process_could_not_queue_is_queued_by_the_next_command(tmp_path: Path) -> None:
    config, journal = get_config(), str(tmp_path / "journal.log")
    study = open_study("toy", journal, "minimize", config, worker=0, identity={"objective": "toy"})
    trial = study.ask()
    trial.suggest_float("x", 0, 1)
    trial.set_user_attr("interrupted", True)  # then a second signal stopped it before it queued the retry
    study.tell(trial, state=optuna.trial.TrialState.FAIL)

    for _ in range(2):  # queued once, not once per command
        open_study("toy", journal, "minimize", config, worker=0, identity={"objective": "toy"})
    retries = [t for t in _trials(Path(journal), "toy") if t.user_attrs.get(RETRY_OF) == trial.number]
    assert [t.system_attrs["fixed_params"] for t in retries] == [trial.params]


def test_the_written_configuration_is_the_one_in_force_with_the_exact_profile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    in_force = get_config().model_copy(update={"cv_folds": 3})  # as BE_CV_FOLDS=3 would give it
    profile = {
        learner: {name: [values[0]] for name, values in grid.items()}
        for learner, grid in in_force.grids("tiny").items()
    }
    profile["xgboost"]["learning_rate"] = [0.01234567]
    written = write_config_with_profile(profile, "tiny", tmp_path / "tuned.yaml", in_force)
    assert "admin_token" not in written.read_text()
    monkeypatch.setenv("BE_CONFIG", str(written))
    loaded = Settings()
    assert loaded.cv_folds == 3
    assert loaded.grids("tiny") == profile  # not rounded: the values the study scored
    with pytest.raises(ValueError, match="is the configuration in force"):
        check_config_destination(config_file())
