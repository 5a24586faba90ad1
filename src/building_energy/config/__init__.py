"""One typed configuration, read once from ``default.yaml`` (or ``BE_CONFIG``) and the environment."""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from building_energy.models.learners import LEARNERS

# A learner's own parameter names, each with the candidates its grid search tries.
ParamGrid = dict[str, Annotated[list[Any], Field(min_length=1)]]


class Section(BaseModel):
    """A section of the configuration: an unknown key is refused (a misspelt setting would fall back to its
    default without a word)."""

    model_config = ConfigDict(extra="forbid")


class ProfileGrids(BaseModel):
    """One training profile: a grid for each base learner of the stack, no more, no fewer."""

    model_config = ConfigDict(extra="forbid")

    extra_trees: ParamGrid
    xgboost: ParamGrid
    lightgbm: ParamGrid
    svr: ParamGrid


class Paths(Section):
    data: Path
    shared_data_dir: Path
    artifacts: Path
    data_url: str
    expected_sha256: str


class FeatureParams(Section):
    downtown_lat: float
    downtown_lon: float
    n_surface_clusters: int = Field(gt=1)
    # A use type gets its own 0/1 feature once this many training buildings list it.
    use_flag_min_count: int = Field(gt=0)
    # Ridge penalty pulling each use type's log intensity toward the average (UseMixIntensity).
    use_mix_shrinkage: float = Field(ge=0)
    # Spread of EPA's actual-to-predicted intensity ratio, through which a score maps back to a ratio.
    energy_star_gamma_shape: float = Field(gt=0)
    # Buildings' worth of weight pulling each use type's score baseline toward the overall one.
    energy_star_smoothing: float = Field(ge=0)
    # Largest use types Portfolio Manager gives a score to: a model trained without the score calibrates
    # its intervals for these buildings apart from the others.
    energy_star_scorable_use_types: list[str] = Field(min_length=1)


class DashboardSettings(Section):
    """The Streamlit dashboard: which model it shows and how it is served."""

    # A ``model.joblib`` path or a registry URI (``models:/name/version``); ``None``: paths.artifacts/model.joblib.
    model_source: str | None = None
    address: str
    port: int = Field(gt=0, lt=65536)
    max_upload_mb: int = Field(gt=0)
    importance_repeats: int = Field(gt=0)
    energy_star_grid: list[float] = Field(min_length=2)
    top_drivers: int = Field(gt=0)


class SearchSpace(Section):
    kind: Literal["int", "float"]
    low: float
    high: float
    log: bool = False


class TuningSettings(Section):
    """Optuna studies: where they are stored and what each learner's search space is."""

    # A journal file path (several local processes) or an RDB URL such as postgresql://... (a cluster).
    storage: str
    trials: int = Field(gt=0)
    # Random trials before TPE models the study.
    startup_trials: int = Field(ge=1)
    # The median pruner judges a trial once this many trials have finished, and after this many folds.
    pruner_startup_trials: int = Field(ge=0)
    pruner_warmup_folds: int = Field(ge=0)
    spaces: dict[str, dict[str, SearchSpace]]
    # An RDB storage's running trials beat every ``heartbeat_seconds``. A trial silent for the grace period,
    # its process dead on whichever machine ran it, is failed and queued again by the next trial of any
    # worker. The grace is long because a worker stalled longer than it (suspended, swapping) loses its trial.
    heartbeat_seconds: int = Field(gt=0)
    heartbeat_grace_seconds: int = Field(gt=0)
    # A trial of the whole stack is five fits of the stack (44 s here), so its study is shorter.
    stack_trials: int = Field(gt=0)
    # The learners' parameters searched together; the others keep the profile's values.
    stack_spaces: dict[str, dict[str, SearchSpace]]

    @model_validator(mode="after")
    def _grace_outlasts_a_heartbeat(self) -> TuningSettings:
        if self.heartbeat_grace_seconds <= self.heartbeat_seconds:
            raise ValueError(
                f"heartbeat_grace_seconds ({self.heartbeat_grace_seconds}) must be longer than heartbeat_seconds "
                f"({self.heartbeat_seconds}): a live trial would be failed between two of its beats"
            )
        return self

    @field_validator("spaces")
    @classmethod
    def _one_space_per_learner(cls, spaces: dict[str, dict[str, SearchSpace]]) -> dict[str, dict[str, SearchSpace]]:
        if set(spaces) != set(LEARNERS):
            raise ValueError(
                f"needs one space per learner, {list(LEARNERS)}; missing {sorted(set(LEARNERS) - set(spaces))}, "
                f"unknown {sorted(set(spaces) - set(LEARNERS))}"
            )
        return spaces

    @field_validator("stack_spaces")
    @classmethod
    def _known_learners(cls, spaces: dict[str, dict[str, SearchSpace]]) -> dict[str, dict[str, SearchSpace]]:
        unknown = sorted(set(spaces) - set(LEARNERS))
        if unknown:
            raise ValueError(f"names learners the stack does not have: {unknown}; known: {list(LEARNERS)}")
        return spaces


class IntervalParams(Section):
    level: float = Field(gt=0, lt=1)


class TrackingSettings(Section):
    """Where MLflow records runs and registers models, and when a new version becomes the champion."""

    # ``MLFLOW_TRACKING_URI`` overrides it; a relative SQLite path is relative to the working directory.
    uri: str
    # Run artifacts of a local (SQLite) store; a relative folder is relative to the database file's folder.
    artifact_location: str
    experiment: str
    run_name: str
    # The energy model's name; a model of another target is registered as ``<name>-<target>``, with a
    # champion of its own.
    registered_model: str
    champion_alias: str
    # A version is promoted when its CV mean absolute log error exceeds the champion's by no more than this.
    promotion_tolerance: float = Field(ge=0)
    # Bounded HTTP retries/timeout towards a tracking server (MLflow's defaults wait minutes on a dead one).
    http_max_retries: int = Field(ge=0)
    http_timeout_seconds: int = Field(gt=0)
    ui_host: str
    ui_port: int = Field(gt=0, lt=65536)
    # One person's local UI: one server worker is plenty (MLflow's default starts several).
    ui_workers: int = Field(gt=0)

    def model_name(self, target: str = "energy") -> str:
        """The registered model of ``target``: a GHG model must never become the energy model's champion."""
        return self.registered_model if target == "energy" else f"{self.registered_model}-{target}"


class PrototypeParams(Section):
    """The notebook's prototype LightGBM, the baseline ``building-energy compare`` measures the package against."""

    n_estimators: int = Field(gt=0)
    learning_rate: float = Field(gt=0)
    num_leaves: int = Field(gt=1)


class CompareSettings(Section):
    # The package's test MAE may exceed the prototype's by at most this fraction.
    mae_tolerance: float = Field(ge=0)
    prototype: PrototypeParams


class ApiSettings(Section):
    """The prediction API (``building-energy serve``): which model it serves and what a request may be."""

    # A ``model.joblib`` path or a registry URI (``models:/name@alias``); ``None``: paths.artifacts/model.joblib.
    model_source: str | None = None
    host: str
    port: int = Field(gt=0, lt=65536)
    # Buildings per ``/predict/batch`` request, and bytes per request body (checked before parsing).
    max_batch: int = Field(gt=0)
    max_body_bytes: int = Field(gt=0)
    # Predictions running at once in worker threads (CPU-bound: about the number of cores).
    max_concurrent_predictions: int = Field(gt=0)
    graceful_shutdown_seconds: int = Field(gt=0)
    # A body refused for size is still read (and dropped) up to this many bytes, so that the client gets the
    # 413 instead of a connection reset while it is sending; a larger one is cut off.
    refused_body_drain_bytes: int = Field(ge=0)
    # Levels of JSON nesting a request body may have, checked before parsing ({"buildings": [{...}]} is 3).
    max_json_depth: int = Field(gt=0)
    # Origins whose browsers may call the API; empty: CORS stays closed (no Access-Control-* headers).
    cors_origins: list[str] = Field(default_factory=list)
    # Bearer token of the admin routes (model reload), from the environment: BE_API__ADMIN_TOKEN.
    # Unset: the admin routes do not exist.
    admin_token: SecretStr | None = None


class Settings(BaseSettings):
    """Everything tunable. Environment variables ``BE_<FIELD>`` override the YAML file."""

    model_config = SettingsConfigDict(env_prefix="BE_", env_nested_delimiter="__", extra="forbid")

    random_state: int = 42
    cv_folds: int = Field(5, ge=2)
    test_size: float = Field(0.2, gt=0, lt=1)
    use_energy_star: bool = True
    n_jobs: int = 1
    reference_year: int = 2016
    target: Literal["energy", "ghg"] = "energy"
    paths: Paths
    features: FeatureParams
    intervals: IntervalParams
    tuning: TuningSettings
    dashboard: DashboardSettings
    tracking: TrackingSettings
    compare: CompareSettings
    api: ApiSettings
    profiles: dict[str, ProfileGrids]

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, YamlConfigSettingsSource(settings_cls, yaml_file=config_file()))

    def grids(self, profile: str) -> dict[str, ParamGrid]:
        if profile not in self.profiles:
            raise ValueError(f"unknown profile {profile!r}; choose one of {sorted(self.profiles)}")
        return self.profiles[profile].model_dump()


def config_file() -> Path:
    """The YAML file in force: ``BE_CONFIG`` when set, else the packaged defaults."""
    override = os.environ.get("BE_CONFIG")
    return Path(override) if override else Path(str(resources.files(__package__) / "default.yaml"))


class ConfigError(ValueError):
    """A configuration that cannot be read: a malformed file, or an environment variable naming no setting."""


def unknown_environment_settings(environ: Mapping[str, str]) -> list[str]:
    """``BE_*`` variables (bar ``BE_CONFIG``) whose top-level name is no setting: pydantic-settings reads only
    the names it knows, so ``BE_CV_FOLD=3`` would leave ``cv_folds`` at its default without a word. (A
    misspelt key inside a section, ``BE_API__PROT``, is refused by the section itself.)"""
    return sorted(
        name
        for name in environ
        if name.upper().startswith("BE_")
        and name.upper() != "BE_CONFIG"
        and name[3:].lower().split("__")[0] not in Settings.model_fields
    )


@functools.cache
def get_config() -> Settings:
    """The project's configuration, loaded once per process."""
    path = config_file()
    if path.is_dir():
        raise ConfigError(f"{path} is a directory, not a configuration file")
    if not path.is_file():
        raise FileNotFoundError(f"configuration file not found: {path}")
    unknown = unknown_environment_settings(os.environ)
    if unknown:
        raise ConfigError(
            f"{', '.join(unknown)}: no such setting (BE_<SETTING>, or BE_<SECTION>__<KEY>; settings: "
            f"{', '.join(sorted(Settings.model_fields))})"
        )
    try:
        return Settings()
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML ({' '.join(str(error).split())})") from error
    except TypeError as error:  # a YAML list or scalar where the settings' mapping should be
        raise ConfigError(f"{path}: the file must map setting names to values ({error})") from error
