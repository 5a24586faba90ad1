"""Versions of the registered model, the ``@champion`` alias, and loading a model by ``models:/`` URI.

Integrity: every run logs ``artifacts/model.joblib`` and records its SHA-256 as the run tag
``model_sha256``. Loading ``models:/building-energy@champion`` resolves the version's run, downloads that
file and checks it against the tag *before* unpickling (``load_artifact``), so a model loaded by URI is
exactly the verified artifact a path gives, metadata included. The ``python_function`` model logged beside it
(``tracking.pyfunc``) is for MLflow's own tools (``mlflow.pyfunc.load_model``, ``mlflow models serve``).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import re
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

import numpy as np

from building_energy.config import Settings, get_config
from building_energy.logs import error_summary
from building_energy.models.artifacts import MODEL_FILE, ModelIntegrityError, ModelLoadError, load_artifact
from building_energy.models.loading import LoadedModel
from building_energy.tracking.store import (
    TrackingError,
    bounded_http,
    check_sqlite_access,
    client,
    resolve_tracking_uri,
    sqlite_path,
)

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

logger = logging.getLogger(__name__)

MODEL_SHA_TAG = "model_sha256"
CV_SCORE_METRIC = "cv_mean_neg_mae_log"
RUN_ARTIFACTS_DIR = "artifacts"
STATUS_TAG = "status"
REASON_TAG = "promotion_reason"
PROMOTION_LOCK_SUFFIX = ".promotion.lock"
# How often a promotion compares again when the champion moves while it compares; beyond that it gives up.
_MAX_DECISIONS = 5
# What MLflow answers for a version or alias that is not there (a SQLite store and a server alike); any
# other failure is the store's, not the user's reference.
_NOT_FOUND_CODES = frozenset({"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"})


def is_not_found(error: BaseException) -> bool:
    """Whether an MLflow error says the version or alias asked for does not exist (rather than that the store
    could not be reached or read)."""
    return getattr(error, "error_code", None) in _NOT_FOUND_CODES


def store_failure(store: str, error: BaseException, action: str = "read") -> str:
    """One line for a store that could not be reached, read or written (a dead server, a corrupt database, a
    read-only or locked one)."""
    return f"the MLflow store at {store} could not be {action}: {error_summary(error)}"


_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<version>\d+))$")


@dataclass(frozen=True)
class ModelReference:
    name: str
    alias: str | None = None
    version: str | None = None


@dataclass(frozen=True)
class PromotionDecision:
    promote: bool
    reason: str

    @property
    def status(self) -> str:
        return "champion" if self.promote else "challenger"


def parse_models_uri(uri: str) -> ModelReference:
    """``models:/name@alias`` or ``models:/name/version``."""
    match = _URI.match(uri)
    if match is None:
        raise ModelLoadError(
            f"{uri!r} is not a registry URI of the form models:/<name>@<alias> or models:/<name>/<version>"
        )
    return ModelReference(match["name"], match["alias"], match["version"])


def cv_score(metrics: dict[str, Any]) -> float:
    """The mean over base learners of their best CV score (negative mean absolute log error; higher is better).

    The stack itself is not cross-validated; its tuned learners are, on the same folds, which makes their
    average a fair yardstick between two trainings.
    """
    return float(np.mean([learner["mean_neg_mae_log"] for learner in metrics["cv"].values()]))


def decide_promotion(
    candidate_score: float,
    champion_score: float | None,
    tolerance: float,
    champion_version: str | None = None,
) -> PromotionDecision:
    """Promote unless the candidate's CV error exceeds the champion's by more than ``tolerance``."""
    if champion_score is None:
        return PromotionDecision(True, "first version: no champion yet")
    candidate_error, champion_error = -candidate_score, -champion_score
    comparison = (
        f"CV mean absolute log error {candidate_error:.4f} vs champion version {champion_version}'s "
        f"{champion_error:.4f} (tolerance {tolerance:g})"
    )
    if candidate_error <= champion_error + tolerance:
        return PromotionDecision(True, f"not worse: {comparison}")
    return PromotionDecision(False, f"worse by {candidate_error - champion_error:.4f}: {comparison}")


def champion_version(mlflow_client: MlflowClient, config: Settings, target: str = "energy") -> ModelVersion | None:
    """The version holding ``target``'s champion alias, or ``None`` when there is no model or no alias yet."""
    from mlflow.exceptions import MlflowException

    try:
        return mlflow_client.get_model_version_by_alias(
            config.tracking.model_name(target), config.tracking.champion_alias
        )
    except MlflowException as error:
        if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise


def promotion_lock_path(store: str) -> Path | None:
    """The lock file serialising promotions in a local store (beside its database), ``None`` for a server."""
    database = sqlite_path(store)
    return None if database is None else database.with_name(database.name + PROMOTION_LOCK_SUFFIX)


@contextlib.contextmanager
def promotion_lock(store: str) -> Iterator[None]:
    """Hold the exclusive promotion lock of a local store for the duration; for a server, nothing.

    ``flock`` serialises the processes of one host on a local file system; no lock spans hosts, so a
    server's promotions only get the re-read in ``promote_if_not_worse``.
    """
    path = promotion_lock_path(store)
    if path is None:
        yield
        return
    # The file is never removed: a process could lock a path another has just unlinked and recreated.
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            logger.info("waiting for another promotion in %s to finish (lock %s)", store, path)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _registry_uri(mlflow_client: MlflowClient) -> str:
    # MlflowClient has no public accessor for its registry URI, which is where the aliases live; ``client``
    # makes it the tracking URI, the fallback.
    return str(getattr(mlflow_client, "_registry_uri", None) or mlflow_client.tracking_uri)


def _version_number(version: ModelVersion | None) -> str | None:
    # MLflow returns versions as int or str depending on the store; callers pass str.
    return None if version is None else str(version.version)


def _decide_against(
    mlflow_client: MlflowClient, version: str, candidate_score: float, champion: ModelVersion | None, config: Settings
) -> PromotionDecision:
    if champion is None:
        return decide_promotion(candidate_score, None, config.tracking.promotion_tolerance)
    if _version_number(champion) == version:
        return PromotionDecision(True, "already the champion")
    champion_score = mlflow_client.get_run(str(champion.run_id)).data.metrics.get(CV_SCORE_METRIC)
    if champion_score is None:
        return PromotionDecision(
            True, f"champion version {champion.version} has no {CV_SCORE_METRIC} to compare with; replaced"
        )
    return decide_promotion(
        candidate_score, champion_score, config.tracking.promotion_tolerance, _version_number(champion)
    )


def promote_if_not_worse(
    mlflow_client: MlflowClient,
    version: str,
    candidate_score: float,
    config: Settings,
    target: str = "energy",
    veto: str | None = None,
) -> PromotionDecision:
    """Move ``target``'s champion alias to ``version`` if its CV score is within tolerance of the champion's.

    A ``veto`` (why this version may not be champion whatever its score, e.g. its refit was not identical)
    leaves it a challenger with that reason, without a look at the champion.

    Each target has its own registered model (``TrackingSettings.model_name``), so only models of one
    target are ever compared.

    Two trainings finishing together must not both compare with the same old champion, the worse one
    moving the alias last. In a local store the whole read-compare-set holds ``promotion_lock``. A server
    has no lock spanning hosts and MLflow no compare-and-set of an alias, so there the alias is read again
    just before it is moved, and the comparison repeated if it moved meanwhile: that narrows the window
    without closing it (two promotions that both re-read before either moves the alias still race, the
    last one winning). Raises ``TrackingError`` if the champion keeps moving, leaving ``version`` as it is.
    """
    name = config.tracking.model_name(target)
    version = str(version)
    if veto is not None:
        decision = PromotionDecision(
            False, f"{veto}; not promoted (`building-energy promote --target {target} --version {version}` overrides)"
        )
        _tag_decision(mlflow_client, name, version, decision)
        logger.warning("%s version %s: %s (%s)", name, version, decision.status, decision.reason)
        return decision
    with promotion_lock(_registry_uri(mlflow_client)):
        champion = champion_version(mlflow_client, config, target)
        for _ in range(_MAX_DECISIONS):
            decision = _decide_against(mlflow_client, version, candidate_score, champion, config)
            current = champion_version(mlflow_client, config, target)
            if _version_number(current) == _version_number(champion):
                break
            logger.info(
                "%s's champion moved from version %s to %s while version %s was compared; comparing again",
                name,
                _version_number(champion),
                _version_number(current),
                version,
            )
            champion = current
        else:
            raise TrackingError(
                f"{name}'s champion moved {_MAX_DECISIONS} times while version {version} was compared with it; "
                "not promoted (decide with `building-energy promote`)"
            )
        if decision.promote:
            move_champion_alias(
                mlflow_client,
                name,
                config.tracking.champion_alias,
                version,
                champion,
                lambda: _tag_decision(mlflow_client, name, version, decision),
            )
        else:
            _tag_decision(mlflow_client, name, version, decision)
    logger.info("%s version %s: %s (%s)", name, version, decision.status, decision.reason)
    return decision


def move_champion_alias(
    mlflow_client: MlflowClient,
    name: str,
    alias: str,
    version: str,
    previous: ModelVersion | None,
    write_tags: Callable[[], None],
) -> None:
    """Point ``alias`` at ``version``, then ``write_tags`` (the new champion's) and mark ``previous`` a
    challenger; if a tag cannot be written, point the alias back at ``previous``.

    The alias is what serving loads and the status tags what the tables show: a promotion whose tags could not
    be written is undone rather than left half made. Either way the ``TrackingError`` says where the alias is.
    """
    mlflow_client.set_registered_model_alias(name, alias, version)
    try:
        write_tags()
        if previous is not None and _version_number(previous) != version:
            _mark(mlflow_client, name, previous, "challenger")
            # Its old reason ("first version: no champion yet") would contradict the status beside it.
            mlflow_client.set_model_version_tag(
                name, str(previous.version), REASON_TAG, f"replaced as {alias} by version {version}"
            )
    except Exception as error:
        failure = store_failure(_registry_uri(mlflow_client), error, "written")
        before = _version_number(previous)
        try:
            if before is None:
                mlflow_client.delete_registered_model_alias(name, alias)
            else:
                mlflow_client.set_registered_model_alias(name, alias, before)
        except Exception as undo_error:
            raise TrackingError(
                f"{failure}; moving {name}@{alias} back to {_alias_target(before)} failed too "
                f"({error_summary(undo_error)}): {name}@{alias} is left on version {version}, whose status tags "
                "are stale"
            ) from error
        raise TrackingError(
            f"{failure}; {name}@{alias} is back on {_alias_target(before)} (version {version} not promoted)"
        ) from error


def _alias_target(version: str | None) -> str:
    return "no version" if version is None else f"version {version}"


def _tag_decision(mlflow_client: MlflowClient, name: str, version: str, decision: PromotionDecision) -> None:
    mlflow_client.set_model_version_tag(name, version, STATUS_TAG, decision.status)
    mlflow_client.set_model_version_tag(name, version, REASON_TAG, decision.reason)


def _mark(mlflow_client: MlflowClient, name: str, version: ModelVersion, status: str) -> None:
    """A version's status tag, mirrored on its run so that the runs table shows the champion too."""
    mlflow_client.set_model_version_tag(name, str(version.version), STATUS_TAG, status)
    if version.run_id:
        mlflow_client.set_tag(version.run_id, STATUS_TAG, status)


def promote_version(
    version: int | str, config: Settings | None = None, tracking_uri: str | None = None, target: str = "energy"
) -> str | None:
    """Make ``version`` of ``target``'s model the champion unconditionally (rollback); return the previous
    champion's version."""
    config = config or get_config()
    uri = resolve_tracking_uri(config, tracking_uri)
    name = config.tracking.model_name(target)
    # Before MLflow is imported (seconds): a store that cannot be used is refused at once.
    check_sqlite_access(uri, "write")
    database = sqlite_path(uri)
    if database is not None and not database.is_file():
        # MLflow would create an empty store here and then report the version missing.
        raise TrackingError(f"no MLflow store at {database}; train a model with `building-energy train` first")
    from mlflow.exceptions import MlflowException
    from sqlalchemy.exc import SQLAlchemyError

    with bounded_http(config), promotion_lock(uri):
        try:
            mlflow_client = client(uri)
            chosen = mlflow_client.get_model_version(name, str(version))
        except MlflowException as error:
            if is_not_found(error):
                raise TrackingError(f"{name} has no version {version} in {uri}: {error.message}") from error
            raise TrackingError(store_failure(uri, error)) from error
        except SQLAlchemyError as error:  # a corrupt or foreign SQLite file
            raise TrackingError(store_failure(uri, error)) from error
        try:
            previous = champion_version(mlflow_client, config, target)

            def tag_promotion() -> None:
                _mark(mlflow_client, name, chosen, "champion")
                mlflow_client.set_model_version_tag(name, str(version), REASON_TAG, "promoted by hand")

            move_champion_alias(
                mlflow_client, name, config.tracking.champion_alias, str(version), previous, tag_promotion
            )
        except (MlflowException, SQLAlchemyError) as error:  # read-only, locked, or a server refusing writes
            raise TrackingError(store_failure(uri, error, "written")) from error
    logger.info("%s@%s -> version %s", name, config.tracking.champion_alias, version)
    return _version_number(previous)


def _unreadable_local_model(artifact_uri: str) -> str | None:
    """Why a run's model file in a local artifact folder cannot be read (``path: reason``), if it cannot.

    MLflow's download of a run's artifact logs the cause at debug level and raises only "please ensure that
    the path is correct", which sends the user looking for a wrong path when the file is there, unreadable.
    """
    location = urlparse(artifact_uri)
    if location.scheme != "file":
        return None
    path = Path(unquote(location.path)) / RUN_ARTIFACTS_DIR / MODEL_FILE
    try:
        with path.open("rb"):
            return None
    except OSError as error:
        return f"{path}: {error.strerror}"


def load_registered_model(uri: str, config: Settings | None = None, tracking_uri: str | None = None) -> LoadedModel:
    """Load ``models:/name@alias`` or ``models:/name/version``: the run's ``model.joblib``, checksum verified."""
    config = config or get_config()
    reference = parse_models_uri(uri)
    store = resolve_tracking_uri(config, tracking_uri)
    # Before MLflow is imported (seconds): a store that cannot be used is refused at once.
    try:
        check_sqlite_access(store, "read")
    except TrackingError as error:
        raise ModelLoadError(f"{uri}: {error}") from error
    database = sqlite_path(store)
    if database is not None and not database.is_file():
        # MLflow would create an empty store here and then report the model missing.
        raise ModelLoadError(f"{uri}: no MLflow store at {database}; train a model with `building-energy train`")
    import mlflow
    from mlflow.exceptions import MlflowException
    from sqlalchemy.exc import SQLAlchemyError

    with bounded_http(config):
        try:
            mlflow_client = client(store)
            version = (
                mlflow_client.get_model_version_by_alias(reference.name, reference.alias)
                if reference.alias is not None
                else mlflow_client.get_model_version(reference.name, str(reference.version))
            )
            run = mlflow_client.get_run(str(version.run_id))
        except MlflowException as error:
            if is_not_found(error):
                raise ModelLoadError(f"{uri}: not found in the registry at {store}: {error.message}") from error
            raise ModelLoadError(f"{uri}: {store_failure(store, error)}") from error
        except SQLAlchemyError as error:  # a corrupt or foreign SQLite file
            raise ModelLoadError(f"{uri}: {store_failure(store, error)}") from error
        expected = run.data.tags.get(MODEL_SHA_TAG)
        if not expected:
            raise ModelIntegrityError(f"{uri}: run {version.run_id} records no {MODEL_SHA_TAG}; refusing to load")
        with tempfile.TemporaryDirectory(prefix="building-energy-model-") as folder:
            try:
                local = mlflow.artifacts.download_artifacts(
                    run_id=version.run_id,
                    artifact_path=f"{RUN_ARTIFACTS_DIR}/{MODEL_FILE}",
                    dst_path=folder,
                    tracking_uri=store,
                )
            except (MlflowException, OSError) as error:
                why = _unreadable_local_model(run.info.artifact_uri) or error
                raise ModelLoadError(f"{uri}: cannot download {MODEL_FILE} of run {version.run_id}: {why}") from error
            try:
                artifact = load_artifact(Path(local), expected_sha256=expected)
            except ModelLoadError as error:  # same kind (integrity or not), told which registry entry
                raise type(error)(f"{uri} (run {version.run_id}): {error}") from error
    metadata = {
        **artifact["metadata"],
        "registry": {
            "uri": uri,
            "name": reference.name,
            "version": version.version,
            "aliases": list(version.aliases or []),
            "run_id": version.run_id,
            "tracking_uri": store,
        },
    }
    logger.info("loaded %s (version %s, run %s)", uri, version.version, version.run_id)
    return LoadedModel(artifact["model"], metadata, uri)
