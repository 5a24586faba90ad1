"""What is recorded with every model: versions, data checksum, git commit."""

from __future__ import annotations

import logging
import platform
import subprocess
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

_TRACKED_PACKAGES = (
    "building-energy",
    "scikit-learn",
    "xgboost-cpu",
    "lightgbm",
    "pandas",
    "numpy",
    "joblib",
    "scipy",  # the use-mix and ENERGY STAR encoders fit with scipy.optimize and scipy.stats
    "threadpoolctl",
    "mlflow",
)


def recorded_target(model_metadata: Mapping[str, Any]) -> str:
    """The target a model was trained for (``energy`` or ``ghg``); models saved before the GHG target record none."""
    return str(model_metadata.get("target", "energy"))


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in _TRACKED_PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def git_commit(cwd: Path | None = None) -> str:
    """The checked-out commit, with ``-dirty`` when the tree has changes; ``unknown`` outside git."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],  # noqa: S607
            cwd=cwd,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=all"],  # noqa: S607
            cwd=cwd,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.splitlines()
    except (OSError, subprocess.SubprocessError):
        logger.warning("git commit unknown (not a git checkout or git missing)")
        return "unknown"
    return f"{commit}-dirty" if is_dirty(status) else commit


def is_dirty(porcelain_status: list[str]) -> bool:
    """Whether the tree differs from its commit in a way that can change a model: any change to a tracked
    file, or a new file under ``src/`` (a module the package imports that the commit does not hold)."""
    return any(not line.startswith("?? ") or line[3:].strip('"').startswith("src/") for line in porcelain_status)
