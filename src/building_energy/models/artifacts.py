"""Saving and loading the model artifact: atomic writes, and a checksum checked before unpickling."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import joblib

from building_energy.files import TEMPORARY_SUFFIX, write_bytes_atomically

logger = logging.getLogger(__name__)

MODEL_FILE = "model.joblib"
CHECKSUM_FILE = "model.joblib.sha256"
BEST_PARAMS_FILE = "best_params.joblib"
METRICS_FILE = "metrics.json"
ARTIFACT_KEYS = ("model", "encoder", "best_params", "metadata")
ARTIFACT_FILES = (MODEL_FILE, CHECKSUM_FILE, BEST_PARAMS_FILE, METRICS_FILE)
# The comparison reports and the plots land in the same directory after training, so their temporaries are
# this module's to clean too. compare_pipelines imports this module (not the reverse): its report names are
# repeated here and a test keeps them equal. tracking.plots takes its subfolder's name from here.
REPORT_FILES = ("compare_report.json", "compare_report.joblib")
PLOTS_SUBDIR = "plots"


class ModelLoadError(RuntimeError):
    """A model file that is missing, altered, truncated or not one of ours."""


class ModelIntegrityError(ModelLoadError):
    """A model file that is there but cannot be trusted: no recorded checksum, a mismatch, or not ours."""


class TrainingInProgressError(RuntimeError):
    """Another training holds the artifacts directory."""


def dump_joblib_bytes(obj: Any) -> bytes:
    buffer = io.BytesIO()
    joblib.dump(obj, buffer, compress=3)
    return buffer.getvalue()


def _checksum_lines(*digests: str) -> bytes:
    return "".join(f"{digest}  {MODEL_FILE}\n" for digest in dict.fromkeys(digests)).encode()


def save_artifacts(output_dir: Path, artifact: dict[str, Any], metrics: dict[str, Any]) -> Path:
    """Write ``model.joblib`` (+ its SHA-256), ``best_params.joblib`` and ``metrics.json`` atomically.

    Killed at any point, the directory holds a loadable model: the previous one or the new one. Of the
    exports, only ``metrics.json`` names the model it describes (by ``model_sha256``); ``best_params.joblib``
    holds the parameters alone, and after a crash between the renames it may belong to an unpublished model.
    """
    missing = [k for k in ARTIFACT_KEYS if k not in artifact]
    if missing:
        raise ValueError(f"artifact lacks keys {missing}")
    model_bytes = dump_joblib_bytes(artifact)
    digest = hashlib.sha256(model_bytes).hexdigest()
    output_dir = Path(output_dir)
    previous = recorded_checksums(output_dir / MODEL_FILE)
    write_bytes_atomically(output_dir / BEST_PARAMS_FILE, dump_joblib_bytes(artifact["best_params"]))
    exported = {**metrics, "model_sha256": digest}
    write_bytes_atomically(output_dir / METRICS_FILE, json.dumps(exported, indent=2, sort_keys=True).encode())
    # Model and checksum are two files and no rename swaps both: while the model is replaced the sidecar
    # accepts the new digest and the previous one, so a crash between the renames leaves a loadable pair.
    if previous:
        write_bytes_atomically(output_dir / CHECKSUM_FILE, _checksum_lines(digest, *previous))
    write_bytes_atomically(output_dir / MODEL_FILE, model_bytes)
    write_bytes_atomically(output_dir / CHECKSUM_FILE, _checksum_lines(digest))
    logger.info("saved %s (SHA-256 %s)", output_dir / MODEL_FILE, digest)
    return output_dir / MODEL_FILE


def recorded_checksums(model_path: Path) -> list[str]:
    """Every SHA-256 the sidecar accepts: one, or two while (or if a crash interrupted) a model replacement."""
    sidecar = Path(f"{model_path}.sha256")
    if not sidecar.is_file():
        return []
    return [line.split()[0] for line in sidecar.read_text(encoding="utf-8").splitlines() if line.strip()]


def recorded_checksum(model_path: Path) -> str | None:
    """The SHA-256 recorded for the newest model written to ``model_path``."""
    checksums = recorded_checksums(model_path)
    return checksums[0] if checksums else None


def load_artifact(model_path: Path, expected_sha256: str | None = None) -> dict[str, Any]:
    """Load a saved artifact after checking its SHA-256 against the recorded one; never unpickle a mismatch."""
    model_path = Path(model_path)
    if model_path.is_dir():
        raise ModelLoadError(f"{model_path}: is a directory; give the model file (e.g. {model_path / MODEL_FILE})")
    if not model_path.is_file():
        raise ModelLoadError(f"no model at {model_path}; train one with `building-energy train`")
    accepted = [expected_sha256] if expected_sha256 else recorded_checksums(model_path)
    if not accepted:
        raise ModelIntegrityError(f"{model_path}: no recorded SHA-256 ({model_path}.sha256 missing); refusing to load")
    payload = model_path.read_bytes()
    actual = hashlib.sha256(payload).hexdigest()
    if actual not in accepted:
        raise ModelIntegrityError(
            f"{model_path}: SHA-256 {actual} does not match the recorded {' or '.join(accepted)}; "
            "the file was altered or truncated"
        )
    artifact = joblib.load(io.BytesIO(payload))  # checksum verified above
    if not isinstance(artifact, dict) or any(k not in artifact for k in ARTIFACT_KEYS):
        raise ModelIntegrityError(f"{model_path}: not a building-energy model artifact")
    artifact["metadata"].setdefault("model_sha256", actual)
    return artifact


def remove_stale_temporaries(output_dir: Path) -> list[Path]:
    """Delete the half-written files a killed training left beside the artifacts; only call under the lock.

    These are ``write_bytes_atomically``'s temporaries of the artifacts, the comparison reports and the
    evaluation plots (in ``plots/``); nothing else in ``output_dir``, which may be a folder of the user's.
    """
    output_dir = Path(output_dir)
    patterns = [f".{name}.*{TEMPORARY_SUFFIX}" for name in (*ARTIFACT_FILES, *REPORT_FILES)]
    # Every plot is a PNG in a subfolder only write_evaluation_plots writes: any PNG temporary there was left by it.
    patterns.append(f"{PLOTS_SUBDIR}/.*.png.*{TEMPORARY_SUFFIX}")
    leftovers = {p for pattern in patterns for p in output_dir.glob(pattern) if p.is_file()}
    for leftover in sorted(leftovers):
        leftover.unlink(missing_ok=True)
        logger.warning("removed %s, left by an interrupted training", leftover)
    return sorted(leftovers)


@contextlib.contextmanager
def training_lock(output_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``output_dir`` so two trainings never write it at once."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    with (output_dir / ".train.lock").open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as error:
            raise TrainingInProgressError(
                f"another training is writing {output_dir}; wait for it to finish or use --output"
            ) from error
        remove_stale_temporaries(output_dir)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
