"""The model the API serves: loaded once, verified, and asked only through ``score_frame``.

Nothing here engineers a feature. A request becomes a raw City record (``buildings_frame``) and goes
through the same ``score_frame`` as ``building-energy predict``; the only thing looked at inside the
fitted pipeline is which categories its target encoder saw, to warn about the ones it did not.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio.to_thread
import numpy as np
import pandas as pd
from anyio import CapacityLimiter, Lock

from building_energy.api.schemas import (
    BuildingIn,
    DriverOut,
    ExplanationOut,
    FieldError,
    PredictionOut,
    buildings_frame,
)
from building_energy.models.artifacts import ModelIntegrityError, ModelLoadError
from building_energy.models.loading import LoadedModel, load_model
from building_energy.models.metadata import recorded_target
from building_energy.models.predict import (
    ERROR_COLUMN,
    GHG_COLUMNS,
    LOWER_COLUMN,
    PREDICTION_COLUMN,
    TARGET_UNITS,
    UPPER_COLUMN,
    score_frame,
)
from building_energy.preprocessing.categories import normalise_category

logger = logging.getLogger(__name__)

ENERGY_STAR = "ENERGYSTARScore"
# The error type of a valid building the model raised on: the server's fault, answered with a 500.
MODEL_ERROR = "model_error"
# What a client is told instead of the exception, which names the server's internals; the log has it all.
MODEL_ERROR_MESSAGE = "the model failed on this building; the error is in the server's log"
T = TypeVar("T")


def model_version(metadata: dict[str, Any]) -> str:
    """``name/version`` of a registry model, else ``sha256:`` and the first 12 hex digits of the file's hash."""
    registry = metadata.get("registry")
    if isinstance(registry, dict) and registry.get("version") is not None:
        return f"{registry.get('name', 'model')}/{registry['version']}"
    digest = metadata.get("model_sha256")
    return f"sha256:{digest[:12]}" if isinstance(digest, str) else "unknown"


def seen_categories(model: Any) -> dict[str, frozenset[str]] | None:
    """The normalised categories the fitted target encoder saw, per column; ``None`` if it cannot be found."""
    try:
        encoder = model.regressor_.named_steps["encode"].named_transformers_["target"]
        columns, categories = encoder.feature_names_in_, encoder.categories_
    except (AttributeError, KeyError) as error:
        logger.warning("no fitted target encoder in the model (%r): unseen categories will not be reported", error)
        return None
    return {
        str(column): frozenset(str(value) for value in values if isinstance(value, str))
        for column, values in zip(columns, categories, strict=True)
    }


def finite_or_none(value: Any) -> float | None:
    """JSON has no NaN or infinity: a bound that is not finite is reported as unknown."""
    number = float(value)
    return number if math.isfinite(number) else None


def is_integrity_error(error: BaseException) -> bool:
    """Whether a load failure (or any error it was raised from) says the model file cannot be trusted."""
    current: BaseException | None = error
    while current is not None:
        if isinstance(current, ModelIntegrityError):
            return True
        current = current.__cause__
    return False


@dataclass(frozen=True)
class ServedModel:
    loaded: LoadedModel
    version: str
    categories: dict[str, frozenset[str]] | None
    interval_level: float

    @classmethod
    def load(cls, source: str, interval_level: float) -> ServedModel:
        """Load (checksum verified) through ``load_model``, the one place that resolves a model source."""
        loaded = load_model(source)
        served = cls(loaded, model_version(loaded.metadata), seen_categories(loaded.model), interval_level)
        logger.info("serving %s (version %s, target %s)", source, served.version, served.target)
        return served

    @property
    def metadata(self) -> dict[str, Any]:
        return self.loaded.metadata

    @property
    def target(self) -> str:
        return recorded_target(self.metadata)

    @property
    def unit(self) -> str:
        return TARGET_UNITS.get(self.target, "")

    def warnings(self, frame: pd.DataFrame) -> list[list[str]]:
        """Per row: what the model will not use as given (an unseen category, a score it was trained without)."""
        found: list[list[str]] = [[] for _ in range(len(frame))]
        for column, seen in (self.categories or {}).items():
            if column not in frame:
                continue
            normalised = normalise_category(frame[column])
            for position in np.flatnonzero(normalised.notna().to_numpy()):
                value = normalised.iloc[position]
                if value not in seen:
                    found[position].append(
                        f"{column} {frame[column].iloc[position]!r} is not a category the model was trained on; "
                        "it counts as the average of all buildings"
                    )
        if self.metadata.get("use_energy_star") is False and ENERGY_STAR in frame:
            for position in np.flatnonzero(frame[ENERGY_STAR].notna().to_numpy()):
                found[position].append(f"{ENERGY_STAR} is ignored: this model was trained without it")
        return found

    def predict(self, buildings: list[BuildingIn]) -> list[PredictionOut | list[FieldError]]:
        """Score validated buildings (CPU-bound: run it in a worker thread); per building an answer or its errors."""
        if not buildings:
            return []
        frame = buildings_frame(buildings)
        outcome = score_frame(self.loaded, frame, interval_level=self.interval_level)
        scored = outcome.table
        # score_frame names its columns after the model's target.
        names = GHG_COLUMNS if self.target == "ghg" else {column: column for column in GHG_COLUMNS}
        warnings = self.warnings(frame)
        results: list[PredictionOut | list[FieldError]] = []
        for position, building in enumerate(buildings):
            row = scored.iloc[position]
            if position in outcome.model_failures:
                results.append([FieldError(field=None, message=MODEL_ERROR_MESSAGE, type=MODEL_ERROR)])
                continue
            if row[ERROR_COLUMN]:
                results.append([FieldError(field=None, message=str(row[ERROR_COLUMN]), type="prediction_error")])
                continue
            results.append(
                PredictionOut(
                    building_id=building.ose_building_id,
                    target="ghg" if self.target == "ghg" else "energy",
                    unit=self.unit,
                    # score_frame turns a non-finite or implausible prediction into a row error (above).
                    prediction=float(row[names[PREDICTION_COLUMN]]),
                    lower=finite_or_none(row[names[LOWER_COLUMN]]),
                    upper=finite_or_none(row[names[UPPER_COLUMN]]),
                    interval_level=self.interval_level,
                    model_version=self.version,
                    warnings=warnings[position],
                )
            )
        return results

    def explain(self, building: BuildingIn, top_k: int) -> ExplanationOut | list[FieldError]:
        """The estimate of one building and its ``top_k`` drivers; the building's errors if it has no estimate."""
        (scored,) = self.predict([building])
        if not isinstance(scored, PredictionOut):
            return scored
        (drivers,) = self.loaded.explain(buildings_frame([building]), top_k=top_k)
        return ExplanationOut(prediction=scored, drivers=[DriverOut.model_validate(d) for d in drivers])


@dataclass
class ServingState:
    """What the app serves: the model, or why there is none. Filled in by the lifespan."""

    source: str
    max_concurrent_predictions: int
    model: ServedModel | None = None
    reason: str | None = "the model has not been loaded yet"
    startup_error: BaseException | None = None
    # Whether ``load`` has run: ``serve`` loads before uvicorn starts, and the app's start must not try again
    # (a missing model, or an unreachable registry, would be looked for twice).
    attempted: bool = False
    _limiter: CapacityLimiter | None = field(default=None, repr=False)
    # One admin reload at a time: two at once could end on the older model, whichever loaded slower.
    reload_lock: Lock = field(default_factory=Lock, repr=False)

    def load(self, interval_level: float) -> None:
        """Load the model. A missing one leaves the app up without it (503 and the reason); a model file that
        fails its checksum raises: serving it, or serving nothing silently, would both be wrong."""
        self.attempted = True
        try:
            self.model = ServedModel.load(self.source, interval_level)
            self.reason = None
        except Exception as error:
            if is_integrity_error(error) or not isinstance(error, ModelLoadError):
                self.startup_error = error
                raise
            self.reason = str(error)
            logger.warning("no model served: %s", error)

    @property
    def version(self) -> str | None:
        return self.model.version if self.model is not None else None

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        """Run CPU-bound ``function`` in a worker thread, at most ``max_concurrent_predictions`` at a time,
        so the event loop keeps accepting and answering requests meanwhile."""
        if self._limiter is None:
            # Created on first use: an anyio limiter belongs to the running event loop.
            self._limiter = CapacityLimiter(self.max_concurrent_predictions)
        return await anyio.to_thread.run_sync(function, *args, limiter=self._limiter)
