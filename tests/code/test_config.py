"""The typed configuration: a broken file is refused at load time, naming the setting."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from building_energy.config import Settings, config_file


def _settings_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, edit: Callable[[dict[str, Any]], object]
) -> Settings:
    document = yaml.safe_load(config_file().read_text())
    edit(document)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(document))
    monkeypatch.setenv("BE_CONFIG", str(path))
    return Settings()


def test_the_packaged_defaults_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings_from(tmp_path, monkeypatch, lambda document: None)
    assert list(settings.grids("full")) == ["extra_trees", "xgboost", "lightgbm", "svr"]


def test_a_profile_without_a_learner_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError, match=r"profiles\.fast\.svr\n  Field required"):
        _settings_from(tmp_path, monkeypatch, lambda document: document["profiles"]["fast"].pop("svr"))


def test_a_profile_with_an_unknown_learner_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError, match=r"profiles\.fast\.catboost\n  Extra inputs are not permitted"):
        _settings_from(tmp_path, monkeypatch, lambda document: document["profiles"]["fast"].update(catboost={}))


def test_tuning_needs_a_space_for_each_learner_and_no_other(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def rename_svr(document: dict[str, Any]) -> None:
        document["tuning"]["spaces"]["svm"] = document["tuning"]["spaces"].pop("svr")

    with pytest.raises(
        ValidationError,
        match=r"tuning\.spaces\n  Value error, needs one space per learner.*missing \['svr'\], unknown \['svm'\]",
    ):
        _settings_from(tmp_path, monkeypatch, rename_svr)
    with pytest.raises(
        ValidationError,
        match=r"tuning\.stack_spaces\n  Value error, names learners the stack does not have: \['catboost'\]",
    ):
        _settings_from(tmp_path, monkeypatch, lambda document: document["tuning"]["stack_spaces"].update(catboost={}))


def test_a_grid_without_candidates_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def empty_candidates(document: dict[str, Any]) -> None:
        document["profiles"]["full"]["lightgbm"]["num_leaves"] = []

    with pytest.raises(ValidationError, match=r"profiles\.full\.lightgbm\.num_leaves\n  List should have at least 1"):
        _settings_from(tmp_path, monkeypatch, empty_candidates)


def test_an_unknown_profile_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings_from(tmp_path, monkeypatch, lambda document: None)
    with pytest.raises(ValueError, match=r"unknown profile 'quick'; choose one of \['fast', 'full', 'tiny'\]"):
        settings.grids("quick")
