"""Hyperparameter search with Optuna: TPE with a fixed seed, pruning by fold, resumable, multi-worker.

Two kinds of study. A learner's study (``tune --learner lightgbm``) minimises that learner's CV error of
log energy on the training split. The stack's study (``tune --learner stack``) searches every learner at
once and maximises what the benchmark reports, R2 of log energy on the trusted held-out rows of CV folds
of the training split: the stack gains from learners more regularised than each would pick alone.

A study lives in a storage shared by every worker: a journal file by default (safe for several processes
on one machine), or any RDB URL (``postgresql://...``, ``sqlite:///...``) for a cluster. Running the
command again resumes the study until it holds the requested number of finished trials.

A study records what it was created for (``study_identity``) and refuses to be resumed for anything else:
its trials would not be comparable. An interrupted trial is queued again, by its own process on Ctrl-C or
SIGTERM, or by the next command on this machine when its process was killed outright, or, in an RDB
storage, by any worker once the trial's heartbeat has been silent for the grace period (its process died on
whichever machine), so no point of the search, and not the stack study's starting profile, is lost.
"""

from __future__ import annotations

import concurrent.futures
import json
import logging
import multiprocessing
import os
import signal
import socket
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import optuna
import pandas as pd
import yaml
from joblib.externals.loky import get_reusable_executor
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import BaseStorage, JournalStorage
from optuna.storages.journal import JournalFileBackend
from sklearn.base import clone
from sklearn.model_selection import KFold

from building_energy.config import SearchSpace, Settings, TuningSettings, config_file, get_config
from building_energy.data.io import sha256_file
from building_energy.files import check_writable, write_bytes_atomically
from building_energy.logs import error_summary
from building_energy.models.bench import checked_folds
from building_energy.models.evaluate import metrics_real
from building_energy.models.pipeline import (
    LEARNERS,
    build_learner_pipeline,
    build_stacking_pipeline,
    check_learner_params,
)
from building_energy.models.search import NEG_MAE_LOG
from building_energy.models.train import TARGET_COLUMNS, check_enough_buildings, prepare_xy, split_buildings
from building_energy.preprocessing.preprocessor import preprocess_data, remove_outliers

logger = logging.getLogger(__name__)

STACK = "stack"
FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
# User attributes of a trial: the process running it, whether it was interrupted, the trial it re-runs.
HOST, PID, PROCESS, INTERRUPTED, RETRY_OF = "host", "pid", "process", "interrupted", "retry_of"
# The study's user attribute holding what it was made for (``study_identity``).
IDENTITY = "made_for"


@dataclass
class TuningResult:
    study_name: str
    best_params: dict[str, Any]
    best_value: float
    n_complete: int
    n_pruned: int
    objective: str = "CV MAE log"
    # A stack study's best trial as a profile (learner -> parameter -> one candidate), ready for the YAML.
    best_profile: dict[str, dict[str, list[Any]]] | None = None


def open_storage(storage: str, tuning: TuningSettings | None = None) -> BaseStorage:
    """A URL with a scheme is an RDB storage; anything else is a journal file path.

    With ``tuning``, an RDB storage's trials send a heartbeat, and a trial silent past the grace period is
    failed and queued again (``requeue_stale_trial``): its process may have died on any machine of a cluster,
    where ``requeue_interrupted_trials`` sees only this one's. A journal has no heartbeat.
    """
    try:
        if "://" in storage:
            if tuning is None:
                return optuna.storages.RDBStorage(storage)
            with warnings.catch_warnings():
                # Optuna marks the heartbeat experimental; it has had the same interface since 2.9.
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(
                    storage,
                    heartbeat_interval=tuning.heartbeat_seconds,
                    grace_period=tuning.heartbeat_grace_seconds,
                    heartbeat_stale_trial_callback=requeue_stale_trial,
                )
        path = Path(storage)
        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(path)))
    except OSError:
        raise  # a path the user can fix, named by the command line
    except Exception as error:  # SQLAlchemy and driver errors: one line naming the storage, not pages of them
        raise ValueError(f"{storage}: cannot open the Optuna storage ({error_summary(error)})") from error


def study_identity(config: Settings, data_path: Path, **what: Any) -> dict[str, Any]:
    """What a study's trials depend on besides their parameters: ``what`` (the objective, the learner or
    profile, the target, the score, the search space), the split, the features' settings and the data."""
    return {
        **what,
        "cv_folds": config.cv_folds,
        "random_state": config.random_state,
        "test_size": config.test_size,
        "reference_year": config.reference_year,
        "features": config.features.model_dump(),
        "data_sha256": sha256_file(data_path),
    }


def learner_study_name(learner: str, target: str, use_energy_star: bool) -> str:
    return f"{learner}-{target}-{'es' if use_energy_star else 'no-es'}"


def learner_identity(
    config: Settings, data_path: Path, learner: str, target: str, use_energy_star: bool
) -> dict[str, Any]:
    return study_identity(
        config,
        data_path,
        objective="cv_mae_log",
        learner=learner,
        target=target,
        use_energy_star=use_energy_star,
        space=_jsonable(config.tuning.spaces[learner]),
    )


def process_token(pid: int) -> str | None:
    """``pid``'s boot and start time: a pid is reused, a pid with its start time on one boot is not. None where
    ``/proc`` cannot tell (not Linux, or no such process)."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        # The command name (field 2) may hold spaces and parentheses: fields are counted after its ")".
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return f"{boot}:{fields[19]}"  # field 22, the start time in clock ticks since boot


def mark_trial_owner(trial: optuna.Trial, worker: int) -> None:
    trial.set_user_attr("worker", worker)
    trial.set_user_attr(HOST, socket.gethostname())
    trial.set_user_attr(PID, os.getpid())
    trial.set_user_attr(PROCESS, process_token(os.getpid()))


def owner_gone(trial: optuna.trial.FrozenTrial) -> bool:
    """Whether the process that ran ``trial`` on this machine is gone (never true for another machine's)."""
    if trial.user_attrs.get(HOST) != socket.gethostname() or not isinstance(trial.user_attrs.get(PID), int):
        return False
    pid = trial.user_attrs[PID]
    if pid == os.getpid():
        return True  # this process runs no trial yet: the pid was another process's, before a restart
    recorded, now = trial.user_attrs.get(PROCESS), process_token(pid)
    if recorded is not None and now is not None:
        return recorded != now
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # another user's process
    return False


def _retry_params(trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
    """The parameters to run ``trial`` again with: those it had drawn, and those it was queued with (a trial
    stopped while drawing has only some; the others are drawn afresh)."""
    return {**trial.system_attrs.get("fixed_params", {}), **trial.params}


def requeue_interrupted_trials(study: optuna.Study, storage: BaseStorage) -> int:
    """Mark failed the trials left running by a process of this machine that is gone, and queue each of them
    again; the number queued.

    Only this machine's trials can be judged here: a trial of a process on another host may still be running
    (in an RDB storage its heartbeat tells, ``requeue_stale_trial``), and a trial stopped before its objective
    started has no owner recorded. A trial stopped by Ctrl-C or SIGTERM is queued again by its own process
    (``interruptible``), or here if that process was stopped again first.
    Two commands opening the study at once both try; the first to mark a running trial failed queues it.
    """
    study_id = storage.get_study_id_from_name(study.study_name)
    trials = study.get_trials(deepcopy=False)
    queued = {trial.user_attrs.get(RETRY_OF) for trial in trials}
    count = 0
    for trial in trials:
        if trial.state == optuna.trial.TrialState.RUNNING and owner_gone(trial):
            trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
            try:
                storage.set_trial_state_values(trial_id, optuna.trial.TrialState.FAIL)
            except UpdateFinishedTrialError:
                continue  # another command got there first, and queues it
        elif not (
            # Interrupted, but its own process was stopped again before it could queue it.
            trial.state == optuna.trial.TrialState.FAIL
            and trial.user_attrs.get(INTERRUPTED)
            and trial.number not in queued
        ):
            continue
        study.enqueue_trial(_retry_params(trial), user_attrs={RETRY_OF: trial.number})
        count += 1
    if count:
        logger.warning("study %s: %d interrupted trial(s) queued to run again", study.study_name, count)
    return count


def requeue_stale_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    """Optuna's heartbeat callback: ``trial`` fell silent past the grace period and this process has just
    marked it failed (only one process can), so this process queues it again."""
    study.enqueue_trial(_retry_params(trial), user_attrs={RETRY_OF: trial.number})
    logger.warning(
        "study %s: trial %d (%s, pid %s) sent no heartbeat for the grace period; queued to run again",
        study.study_name,
        trial.number,
        trial.user_attrs.get(HOST, "unknown host"),
        trial.user_attrs.get(PID, "?"),
    )


def interruptible(objective: Callable[[optuna.Trial], float]) -> Callable[[optuna.Trial], float]:
    """``objective``, queueing its trial again when Ctrl-C or SIGTERM stops it (Optuna then marks it failed)."""

    def run(trial: optuna.Trial) -> float:
        try:
            return objective(trial)
        except KeyboardInterrupt:
            try:
                trial.set_user_attr(INTERRUPTED, True)
            except UpdateFinishedTrialError:
                raise KeyboardInterrupt from None  # another worker failed the trial, and queued it again
            (frozen,) = (t for t in trial.study.get_trials(deepcopy=False) if t.number == trial.number)
            trial.study.enqueue_trial(_retry_params(frozen), user_attrs={RETRY_OF: trial.number})
            raise

    return run


def interrupt_on_sigterm() -> None:
    """Turn SIGTERM into KeyboardInterrupt in this process, so a stopped trial is recorded as interrupted
    instead of left running, and a parent first stops the workers it started."""

    def handler(signum: int, frame: Any) -> None:
        for child in multiprocessing.active_children():
            child.terminate()
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def suggest(
    trial: optuna.Trial | optuna.trial.FixedTrial, space: dict[str, SearchSpace], prefix: str = ""
) -> dict[str, Any]:
    """One value per parameter of ``space``, keyed by its own name; the trial knows it as ``prefix + name``
    (several learners tuned in one study share parameter names)."""
    params: dict[str, Any] = {}
    for name, spec in space.items():
        if spec.kind == "int":
            params[name] = trial.suggest_int(prefix + name, int(spec.low), int(spec.high), log=spec.log)
        else:
            params[name] = trial.suggest_float(prefix + name, spec.low, spec.high, log=spec.log)
    return params


def make_objective(
    learner: str, X: pd.DataFrame, y: pd.Series, config: Settings, use_energy_star: bool, worker: int = 0
) -> Any:
    """Mean CV MAE of log energy; each fold is reported so the pruner can stop a poor trial early."""
    space = config.tuning.spaces[learner]
    base = build_learner_pipeline(config, learner, use_energy_star)
    folds = list(KFold(config.cv_folds, shuffle=True, random_state=config.random_state).split(X))

    def objective(trial: optuna.Trial) -> float:
        mark_trial_owner(trial, worker)
        params = suggest(trial, space)
        estimator = clone(base).set_params(**{f"regressor__model__estimator__{k}": v for k, v in params.items()})
        losses = []
        for step, (train_idx, test_idx) in enumerate(folds):
            fitted = clone(estimator).fit(X.iloc[train_idx], y.iloc[train_idx])
            losses.append(-NEG_MAE_LOG(fitted, X.iloc[test_idx], y.iloc[test_idx]))
            trial.report(float(np.mean(losses)), step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return float(np.mean(losses))

    return objective


def tune_learner(
    learner: str,
    n_trials: int,
    storage: str | None = None,
    study_name: str | None = None,
    data_path: Path | None = None,
    use_energy_star: bool = True,
    target: str = "energy",
    worker: int = 0,
    config: Settings | None = None,
    parent_pid: int | None = None,
) -> TuningResult:
    """Run (or resume) the study of one learner on the training split until it has ``n_trials`` finished.

    Several workers (processes, machines) may run this at once on one storage; ``worker`` offsets the
    sampler's seed so they do not propose the same first trials.
    """
    config = config or get_config()
    if learner not in LEARNERS:
        raise ValueError(f"unknown learner {learner!r}; known: {LEARNERS}, or {STACK!r} for the whole stack")
    check_learner_params(config)
    storage_spec = storage or str(config.tuning.storage)
    name = study_name or learner_study_name(learner, target, use_energy_star)
    target_column = TARGET_COLUMNS[target]
    data = Path(data_path or config.paths.data)
    identity = learner_identity(config, data, learner, target, use_energy_star)
    # Read and validated before the study is opened: a bad file is its own error and neither creates a study
    # (stamped with that file's checksum, it would refuse the right data) nor is reported as another file's.
    X, y = prepare_xy(learner_rows(data, config, target_column), target_column)
    study = open_study(name, storage_spec, "minimize", config, worker, identity)
    run_study(study, make_objective(learner, X, y, config, use_energy_star, worker), n_trials, worker, parent_pid)
    logger.info("study %s: best MAE log %.4f with %s", name, study.best_value, study.best_params)
    return _result(study)


def learner_rows(data_path: Path, config: Settings, target_column: str) -> pd.DataFrame:
    """What a learner's study fits on: the training split of ``data_path``, read and validated, bar the City's
    flagged outliers (as ``train`` fits), refused as ``train`` refuses it when too small."""
    train_rows, _ = split_buildings(preprocess_data(data_path, target_column), config)
    model_input = remove_outliers(train_rows)
    check_enough_buildings(model_input, data_path, config)
    return model_input


StackFolds = list[tuple[int, pd.DataFrame, pd.DataFrame]]


def stack_folds(data_path: Path, config: Settings, target_column: str) -> StackFolds:
    """What the stack's study fits and scores: the benchmark's folds (one seed, ``random_state``) of the
    training split of ``data_path``, read and validated; refused as ``train`` refuses it when the split, or
    any fold's training rows, are too small."""
    train_rows, _ = split_buildings(preprocess_data(data_path, target_column), config)
    check_enough_buildings(remove_outliers(train_rows), data_path, config)
    where = "in fold {fold} of the training split after cleaning"
    folds = checked_folds(train_rows, config.cv_folds, (config.random_state,), data_path, config, where, "cv_folds")
    return [(fold, model_input, held_out) for _, fold, model_input, held_out in folds]


def sampler_seed(random_state: int, worker: int, n_existing_trials: int) -> int:
    """The TPE seed of one worker's session on a study: fixed by the configuration, the worker and how far
    the study had got.

    A seed that ignored the study's progress would make a resumed study replay its own start: until
    ``startup_trials`` are done, TPE samples at random from its seed, so a second run would propose the
    first run's parameters again, trial for trial.
    """
    return int(np.random.SeedSequence([random_state, worker, n_existing_trials]).generate_state(1)[0])


def _jsonable(space: dict[str, SearchSpace]) -> dict[str, Any]:
    return {name: spec.model_dump() for name, spec in sorted(space.items())}


def open_study(
    name: str,
    storage: str,
    direction: Literal["minimize", "maximize"],
    config: Settings,
    worker: int,
    identity: dict[str, Any],
) -> optuna.Study:
    """Create the study or load it to resume; the sampler's seed depends on ``worker`` (workers sharing the
    study do not propose the same trials) and on the trials already in the study (``sampler_seed``).

    A new study records ``identity``; an existing one must have been created with the same, or it is refused.
    Interrupted trials are queued again (``requeue_interrupted_trials``).
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    opened = open_storage(storage, config.tuning)
    try:
        study = optuna.create_study(
            study_name=name,
            storage=opened,
            direction=direction,
            pruner=optuna.pruners.MedianPruner(
                n_startup_trials=config.tuning.pruner_startup_trials, n_warmup_steps=config.tuning.pruner_warmup_folds
            ),
            load_if_exists=True,
        )
    except Exception as error:  # a file that is no journal, a schema of another Optuna version...
        raise ValueError(f"{storage}: cannot open study {name!r} ({error_summary(error)})") from error
    recorded = json.loads(json.dumps(identity))  # as the storage gives it back (tuples as lists...)
    if study.direction.name.lower() != direction:
        raise ValueError(
            f"study {name!r} in {storage} was created to {study.direction.name.lower()}, not to {direction}"
        )
    created_for = study.user_attrs.get(IDENTITY)
    if created_for is None:
        if study.trials:
            raise ValueError(
                f"study {name!r} in {storage} was made by an earlier version that did not record what it was made "
                "for, so its trials cannot be checked against this run's; give another --study (or --storage)"
            )
        # One attribute, one write: a command opening the study meanwhile sees all of it or none. Two commands
        # creating it at once both write; reading it back, the one whose write was replaced is refused below.
        study.set_user_attr(IDENTITY, recorded)
        created_for = study.user_attrs.get(IDENTITY) or {}
    if created_for != recorded:
        differences = [
            f"another {key}" if isinstance(value, dict) else f"{key} {created_for.get(key)!r}, not {value!r}"
            for key, value in recorded.items()
            if created_for.get(key) != value
        ]
        if differences:
            raise ValueError(
                f"study {name!r} in {storage} was created for {'; '.join(differences)}: its trials are not comparable "
                "with this run's; give another --study (or --storage)"
            )
    requeue_interrupted_trials(study, opened)
    study.sampler = optuna.samplers.TPESampler(
        seed=sampler_seed(config.random_state, worker, len(study.trials)),
        n_startup_trials=config.tuning.startup_trials,
    )
    return study


class TrialTakenOverError(RuntimeError):
    """This worker's trial was failed, and queued again, by another worker while it still ran it."""


def run_study(
    study: optuna.Study,
    objective: Callable[[optuna.Trial], float],
    n_trials: int,
    worker: int,
    parent_pid: int | None = None,
) -> None:
    """Optimise until the study, counting every worker's trials, holds ``n_trials`` finished ones.

    Each worker checks the count when one of its trials ends, so ``W`` workers may finish up to ``W - 1``
    trials more than ``n_trials``. A worker whose parent (``parent_pid``) is gone stops after its trial.
    """
    remaining = n_trials - len(study.get_trials(states=FINISHED))
    callbacks: list[Callable[[optuna.Study, optuna.trial.FrozenTrial], None]] = [
        optuna.study.MaxTrialsCallback(n_trials, states=FINISHED)
    ]
    if parent_pid is not None:

        def stop_when_orphaned(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
            if os.getppid() != parent_pid:
                logger.warning("worker %d: the tune command is gone; stopping", worker)
                study.stop()

        callbacks.append(stop_when_orphaned)
    # The trial another worker failed (and queued) while this one still ran it, and how this one's run ended.
    taken_over: list[tuple[int, BaseException | None]] = []

    def check_not_taken_over(trial: optuna.Trial, ended_by: BaseException | None) -> None:
        if study._storage.get_trial(trial._trial_id).state != optuna.trial.TrialState.RUNNING:
            taken_over.append((trial._trial_id, ended_by))
            if not isinstance(ended_by, KeyboardInterrupt):
                raise TrialTakenOverError(
                    f"trial {trial.number} was failed by another worker: its heartbeat had stopped"
                ) from ended_by

    def watched(trial: optuna.Trial) -> float:
        try:
            value = objective(trial)
        except BaseException as error:  # however the run ended (a value, an error, pruned, Ctrl-C)
            check_not_taken_over(trial, error)
            raise
        check_not_taken_over(trial, None)
        return value

    while remaining > 0:
        try:
            study.optimize(
                interruptible(watched), n_trials=remaining, callbacks=callbacks, show_progress_bar=worker == 0
            )
            return
        except ValueError:
            # Optuna cannot record a trial that is already failed. A worker stalled past the heartbeat's grace
            # period (suspended, swapping) finds its trial failed and queued again by another: it moves on,
            # unless it was being stopped.
            if not taken_over:
                raise
            trial_id, ended_by = taken_over.pop()
            if isinstance(ended_by, KeyboardInterrupt):
                raise ended_by from None
            logger.warning(
                "worker %d: trial %d was failed and queued again by another worker (no heartbeat); going on",
                worker,
                study._storage.get_trial(trial_id).number,
            )
        remaining = n_trials - len(study.get_trials(states=FINISHED))


def _result(study: optuna.Study, **extra: Any) -> TuningResult:
    return TuningResult(
        study.study_name,
        dict(study.best_params),
        float(study.best_value),
        len(study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))),
        len(study.get_trials(states=(optuna.trial.TrialState.PRUNED,))),
        **extra,
    )


def profile_values(config: Settings, profile: str) -> dict[str, dict[str, Any]]:
    """The first candidate of every grid entry: a profile as fixed parameters."""
    return {
        learner: {name: values[0] for name, values in grid.items()} for learner, grid in config.grids(profile).items()
    }


def suggest_stack(
    trial: optuna.Trial | optuna.trial.FixedTrial,
    base: dict[str, dict[str, Any]],
    spaces: dict[str, dict[str, SearchSpace]],
) -> dict[str, dict[str, Any]]:
    """Every learner's parameters: the searched ones from the trial (named ``learner__param``), the rest
    from ``base``."""
    return {
        learner: {**params, **suggest(trial, spaces.get(learner, {}), f"{learner}__")}
        for learner, params in base.items()
    }


def make_stack_objective(
    folds: StackFolds,
    config: Settings,
    base: dict[str, dict[str, Any]],
    use_energy_star: bool,
    target_column: str,
    worker: int = 0,
) -> Callable[[optuna.Trial], float]:
    """Mean R2 of log energy over the benchmark's folds of one seed (``random_state``) of the training split.

    Only the training split (``stack_folds``): its test split is where ``train`` reports the chosen profile's
    metrics, so it must not have helped choose it.
    """

    def objective(trial: optuna.Trial) -> float:
        mark_trial_owner(trial, worker)
        params = suggest_stack(trial, base, config.tuning.stack_spaces)
        scores = []
        for step, model_input, held_out in folds:
            X, y = prepare_xy(model_input, target_column)
            model = build_stacking_pipeline(config, params, use_energy_star).fit(X, y)
            X_test, y_test = prepare_xy(held_out, target_column)
            scores.append(metrics_real(y_test.to_numpy(), model.predict(X_test))["r2_log"])
            trial.report(float(np.mean(scores)), step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return float(np.mean(scores))

    return objective


def stack_study_name(profile: str, target: str, use_energy_star: bool) -> str:
    # "train": scored on the training split's folds. A study of that name never resumes one that scored every
    # row, whose values are not comparable (and whose best was chosen with the test split).
    return f"{STACK}-{profile}-{target}-{'es' if use_energy_star else 'no-es'}-train"


def stack_identity(
    config: Settings, data_path: Path, profile: str, target: str, use_energy_star: bool
) -> dict[str, Any]:
    return study_identity(
        config,
        data_path,
        objective="stack_r2_log_trusted",
        profile=profile,
        profile_values=profile_values(config, profile),
        target=target,
        use_energy_star=use_energy_star,
        space={learner: _jsonable(space) for learner, space in sorted(config.tuning.stack_spaces.items())},
    )


def open_stack_study(
    name: str,
    storage: str,
    config: Settings,
    base: dict[str, dict[str, Any]],
    identity: dict[str, Any],
    worker: int = 0,
) -> optuna.Study:
    """The stack's study; a new one gets the ``base`` profile's own values as its first trial, so that the
    study can only improve on the profile."""
    study = open_study(name, storage, "maximize", config, worker, identity)
    if not study.trials:
        study.enqueue_trial(
            {
                f"{learner}__{param}": base[learner][param]
                for learner, space in config.tuning.stack_spaces.items()
                for param in space
                if param in base[learner]
            }
        )
    return study


def tune_stack(
    n_trials: int,
    storage: str | None = None,
    study_name: str | None = None,
    data_path: Path | None = None,
    use_energy_star: bool = True,
    target: str = "energy",
    worker: int = 0,
    config: Settings | None = None,
    profile: str = "full",
    parent_pid: int | None = None,
) -> TuningResult:
    """Run (or resume) the study of the whole stack until it has ``n_trials`` finished trials.

    The parameters in ``tuning.stack_spaces`` are searched and the others keep ``profile``'s values; the
    first trial of a new study is ``profile``'s values of the searched parameters (those it sets).
    """
    config = config or get_config()
    check_learner_params(config)
    base = profile_values(config, profile)
    name = study_name or stack_study_name(profile, target, use_energy_star)
    target_column = TARGET_COLUMNS[target]
    data = Path(data_path or config.paths.data)
    identity = stack_identity(config, data, profile, target, use_energy_star)
    # Read and validated before the study is opened, as in ``tune_learner``.
    folds = stack_folds(data, config, target_column)
    study = open_stack_study(name, storage or str(config.tuning.storage), config, base, identity, worker)
    run_study(
        study,
        make_stack_objective(folds, config, base, use_energy_star, target_column, worker),
        n_trials,
        worker,
        parent_pid,
    )
    best = suggest_stack(optuna.trial.FixedTrial(study.best_params), base, config.tuning.stack_spaces)
    logger.info("study %s: best R2 log %.4f (trial %d)", name, study.best_value, study.best_trial.number)
    return _result(
        study,
        objective="CV R2 log on trusted rows",
        best_profile={learner: {param: [value] for param, value in params.items()} for learner, params in best.items()},
    )


def rounded_profile(profile: dict[str, dict[str, list[Any]]]) -> dict[str, dict[str, list[Any]]]:
    """``profile`` with floats to 3 significant digits, as a person would write it in the config."""

    def rounded(value: Any) -> Any:
        return float(f"{value:.3g}") if isinstance(value, float) else value

    return {
        learner: {param: [rounded(v) for v in values] for param, values in grid.items()}
        for learner, grid in profile.items()
    }


def format_profile(profile: dict[str, dict[str, list[Any]]], name: str = "full") -> str:
    """A profile as the YAML of ``profiles:`` in the config, floats to 3 significant digits."""
    return yaml.safe_dump({name: rounded_profile(profile)}, sort_keys=False, default_flow_style=None)


def check_config_destination(path: Path) -> None:
    """Refuse, before a study runs, a destination ``write_config_with_profile`` would refuse after it."""
    if path.is_dir():
        raise ValueError(f"{path}: is a directory; give the configuration file's name")
    if path.exists() and path.resolve() == config_file().resolve():
        raise ValueError(f"{path} is the configuration in force; write the new one to another file")
    check_writable(path)


def write_config_with_profile(
    profile: dict[str, dict[str, list[Any]]], name: str, path: Path, config: Settings | None = None
) -> Path:
    """``config`` (the configuration in force, its file and environment overrides alike) with profile ``name``
    replaced by ``profile``, written to ``path``: ``BE_CONFIG=path building-energy train --profile name`` then
    trains with exactly the values the study scored, under the settings it scored them with. The admin token
    is left out (it belongs in the environment), and the file in force is never written over."""
    check_config_destination(path)
    document = (config or get_config()).model_dump(mode="json", exclude={"api": {"admin_token"}})
    document["profiles"][name] = profile
    Settings.model_validate(document)  # a profile the configuration would refuse is not written
    write_bytes_atomically(path, yaml.safe_dump(document, sort_keys=False, default_flow_style=None).encode())
    return path


def tune(learner: str, n_trials: int, **kwargs: Any) -> TuningResult:
    """The study of one learner, or of the whole stack when ``learner`` is ``stack``."""
    if learner == STACK:
        return tune_stack(n_trials, **kwargs)
    return tune_learner(learner, n_trials, **kwargs)


def _worker_entry(kwargs: dict[str, Any]) -> TuningResult:
    interrupt_on_sigterm()
    try:
        return tune(**kwargs)
    finally:
        # The stack's parallel fits leave joblib's process pool idling in this worker, and the worker's exit
        # would wait out the pool's idle timeout (300 s).
        get_reusable_executor().shutdown(wait=True)


def tune_in_workers(
    learner: str, n_trials: int, workers: int = 1, first_worker: int = 0, **kwargs: Any
) -> TuningResult:
    """Run ``workers`` processes on one study (a learner's or the stack's), numbered from ``first_worker``;
    each stops once the study holds ``n_trials`` finished trials.

    Commands started by hand on one study (on several machines, say) each take another ``first_worker``:
    the number seeds a worker's sampler, so two commands with the same one would propose the same trials.
    """
    if workers < 1:
        raise ValueError(f"--workers must be at least 1, got {workers}")
    if workers == 1:
        return tune(learner, n_trials, worker=first_worker, **kwargs)
    config = kwargs.get("config") or get_config()
    check_learner_params(config)
    storage = kwargs.pop("storage", None) or str(config.tuning.storage)
    target, use_energy_star = kwargs.get("target", "energy"), kwargs.get("use_energy_star", True)
    data = Path(kwargs.get("data_path") or config.paths.data)
    # Opened once before the workers start: they would race to create the study, to queue interrupted
    # trials again, and (the stack) to queue the profile as the first trial. The data is read and validated
    # first, as each worker does: a bad file must not create the study.
    if learner == STACK:
        profile = kwargs.get("profile", "full")
        name = kwargs.get("study_name") or stack_study_name(profile, target, use_energy_star)
        identity = stack_identity(config, data, profile, target, use_energy_star)
        stack_folds(data, config, TARGET_COLUMNS[target])
        open_stack_study(name, storage, config, profile_values(config, profile), identity, first_worker)
    elif learner in LEARNERS:
        name = kwargs.get("study_name") or learner_study_name(learner, target, use_energy_star)
        identity = learner_identity(config, data, learner, target, use_energy_star)
        learner_rows(data, config, TARGET_COLUMNS[target])
        open_study(
            name,
            storage,
            "minimize",
            config,
            first_worker,
            identity,
        )
    jobs = [
        {
            "learner": learner,
            "n_trials": n_trials,
            "storage": storage,
            "worker": first_worker + i,
            "parent_pid": os.getpid(),
            **kwargs,
        }
        for i in range(workers)
    ]
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        results = list(pool.map(_worker_entry, jobs))
    return max(results, key=lambda r: r.n_complete + r.n_pruned)
