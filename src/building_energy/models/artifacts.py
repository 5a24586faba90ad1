"""Saving and loading the model artifact: atomic writes, and a checksum checked before unpickling."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import joblib

logger = logging.getLogger(__name__)

MODEL_FILE = "model.joblib"
CHECKSUM_FILE = "model.joblib.sha256"
BEST_PARAMS_FILE = "best_params.joblib"
METRICS_FILE = "metrics.json"
ARTIFACT_KEYS = ("model", "encoder", "best_params", "metadata")
ARTIFACT_FILES = (MODEL_FILE, CHECKSUM_FILE, BEST_PARAMS_FILE, METRICS_FILE)


class ModelLoadError(RuntimeError):
    """A model file that is missing, altered, truncated or not one of ours."""


class ModelIntegrityError(ModelLoadError):
    """A model file that is there but cannot be trusted: no recorded checksum, a mismatch, or not ours."""


class TrainingInProgressError(RuntimeError):
    """Another training holds the artifacts directory."""


def write_bytes_atomically(path: Path, payload: bytes) -> None:
    """Write to a temporary file beside ``path``, fsync, then rename: a crash leaves old or new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    finally:
        Path(tmp_name).unlink(missing_ok=True)


def dump_joblib_bytes(obj: Any) -> bytes:
    buffer = io.BytesIO()
    joblib.dump(obj, buffer, compress=3)
    return buffer.getvalue()


def _checksum_lines(*digests: str) -> bytes:
    return "".join(f"{digest}  {MODEL_FILE}\n" for digest in dict.fromkeys(digests)).encode()


def save_artifacts(output_dir: Path, artifact: dict[str, Any], metrics: dict[str, Any]) -> Path:
    """Write ``model.joblib`` (+ its SHA-256), ``best_params.joblib`` and ``metrics.json`` atomically.

    Killed at any point, the directory holds a loadable model: the previous one or the new one. The
    exports ``metrics.json`` and ``best_params.joblib`` name the model they describe by ``model_sha256``.
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
    """Delete the half-written files a killed training left beside the artifacts; only call under the lock."""
    leftovers = {p for name in ARTIFACT_FILES for p in Path(output_dir).glob(f".{name}.*.tmp")}
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
