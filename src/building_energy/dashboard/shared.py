"""What every page shares: the model (loaded once per process), the data, and the messages when either is missing."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pandas as pd
import streamlit as st

from building_energy.config import get_config
from building_energy.dashboard import analysis
from building_energy.data.columns import TARGET_KBTU
from building_energy.models.artifacts import ModelIntegrityError
from building_energy.models.loading import LoadedModel, load_model
from building_energy.models.predict import TARGET_UNITS
from building_energy.preprocessing.preprocessor import preprocess_data

logger = logging.getLogger(__name__)

TRAIN_COMMAND = "make train"
TRAIN_FAST_COMMAND = "building-energy train --profile fast"
FETCH_COMMAND = "building-energy fetch-data"


@st.cache_resource(show_spinner="Loading the model…")
def _load_model(source: str) -> LoadedModel:
    # The one place that resolves a model source (path or models:/ URI); failures are not cached, so a
    # model trained after a failed load is picked up on the next page view.
    return load_model(source)


def _stop(message: str, hint: str) -> NoReturn:
    st.error(message)
    st.info(hint)
    st.stop()


def require_model() -> LoadedModel:
    """The dashboard's model; without one the page shows how to train it and stops (never a traceback)."""
    source = analysis.model_source(get_config())
    try:
        return _load_model(source)
    except Exception as error:  # any failure to load is the same to the user: no model here
        logger.warning("no model from %s: %s", source, error)
        if isinstance(error, PermissionError):  # the model is there: training another would not help
            _stop(
                f"The model at `{source}` cannot be read by the dashboard's account: {error}",
                "Give that account read access to the model's folder and files, then reload this page, or point "
                "the dashboard at another model: `building-energy dashboard --model PATH_OR_URI`.",
            )
        if isinstance(error, ModelIntegrityError):  # the file is there but altered: retraining would hide that
            _stop(
                f"The model at `{source}` was refused: {error}",
                "Find out how it changed since training before trusting it; restore it from its training run, "
                "retrain it, or point the dashboard at another model: `building-energy dashboard --model "
                "PATH_OR_URI`.",
            )
        _stop(
            f"No model could be loaded from `{source}`: {error}",
            "Train one, then reload this page:\n\n"
            f"```bash\n{TRAIN_COMMAND}                        # the full model, into artifacts/\n"
            f"{TRAIN_FAST_COMMAND}   # a quick one\n```\n\n"
            "or point the dashboard at another model: `building-energy dashboard --model PATH_OR_URI` "
            "(or `BE_DASHBOARD__MODEL_SOURCE`).",
        )


def buildings_path() -> Path:
    """The file the dashboard's model was trained on, so the Data page shows the buildings it learned from;
    the configured data when no model loads (the page needs none) or its file is gone."""
    config = get_config()
    return Path(_recorded_data_path(analysis.model_source(config), str(config.paths.data)))


# Remembered for a while even when the model fails to load: the Data page must not wait for an unreachable
# registry on every view (a load failure is not cached by _load_model, so the model pages retry it).
@st.cache_data(ttl=300, show_spinner=False)
def _recorded_data_path(source: str, configured: str) -> str:
    try:
        loaded = _load_model(source)
    except Exception:  # the Data page works without a model; the pages that need one say why it failed
        return configured
    return str(analysis.training_data_path(loaded.metadata, get_config()))


def model_key(loaded: LoadedModel) -> str:
    """What identifies a model's cached diagnostics: its checksum (or source when it has none)."""
    return str(loaded.metadata.get("model_sha256") or loaded.source)


@st.cache_data(show_spinner="Reading the City's data…", max_entries=4)
def _clean_buildings(path: str, target: str) -> pd.DataFrame:
    return preprocess_data(Path(path), target=target)


def require_buildings(path: Path, target: str = TARGET_KBTU) -> pd.DataFrame:
    """The clean buildings of ``path``; when the file is missing or invalid the page says so and stops."""
    try:
        return _clean_buildings(str(path), target)
    except (FileNotFoundError, ValueError, OSError) as error:  # DataValidationError is a ValueError
        logger.warning("no data from %s: %s", path, error)
        _stop(f"The City's data could not be read from `{path}`: {error}", f"Fetch it with `{FETCH_COMMAND}`.")


@st.cache_data(show_spinner="Scoring the test buildings…", max_entries=4)
def holdout(_loaded: LoadedModel, key: str, data_path: str) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame]:
    """The recorded test split and the model's predictions on it (``key`` identifies ``_loaded``)."""
    buildings = _clean_buildings(data_path, analysis.target_column(_loaded.metadata))
    X, y = analysis.holdout_inputs(buildings, _loaded.metadata)
    return X, y, analysis.holdout_predictions(_loaded, X, y)


@st.cache_data(show_spinner="Computing the permutation importance…", max_entries=4)
def importance(_loaded: LoadedModel, key: str, data_path: str, repeats: int, random_state: int) -> pd.DataFrame:
    X, y, _ = holdout(_loaded, key, data_path)
    return analysis.permutation_importance(_loaded, X, y, repeats, random_state)


@st.cache_data(show_spinner="Computing the ENERGY STAR response…", max_entries=4)
def energy_star(_loaded: LoadedModel, key: str, data_path: str, scores: Sequence[float]) -> pd.DataFrame:
    X, _, _ = holdout(_loaded, key, data_path)
    return analysis.energy_star_effect(_loaded, X, list(scores))


@dataclass(frozen=True)
class RememberedUpload:
    """A file uploaded on the Batch page, kept in the session (defined here: a page script is re-executed on
    every run, and a class defined there would be a new class each time)."""

    name: str
    data: bytes
    allow_absent: bool
    # True while the uploader holds the file; False once it is shown from memory after another page.
    in_uploader: bool


@st.cache_data(show_spinner="Scoring the file…", max_entries=4)
def scored_upload(
    _loaded: LoadedModel, key: str, payload: bytes, filename: str, max_bytes: int, allow_absent_columns: bool
) -> analysis.BatchResult:
    """``analysis.score_upload``, once per model, file and choice: ticking a box or downloading the result
    reruns the page, and must not score the whole file again. A refused file is not cached."""
    return analysis.score_upload(_loaded, payload, filename, max_bytes, allow_absent_columns=allow_absent_columns)


def unit(metadata: dict[str, Any]) -> str:
    return TARGET_UNITS.get(analysis.target_name(metadata), "")
