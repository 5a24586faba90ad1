"""The trained artifact: its content, its honesty and its behaviour."""

from __future__ import annotations

import itertools
import json
import re
import shutil
import subprocess
from collections.abc import Callable
from importlib import metadata as package_metadata
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.compose import TransformedTargetRegressor
from sklearn.ensemble import StackingRegressor
from sklearn.preprocessing import TargetEncoder

from building_energy.data.columns import METER_COLUMNS, QUALITY_COLUMNS
from building_energy.data.schema import DataValidationError
from building_energy.models import train as train_module
from building_energy.models.artifacts import ARTIFACT_KEYS, load_artifact
from building_energy.models.metadata import git_commit
from building_energy.models.train import TrainingResult, train_model
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.slow

AREA_COLUMNS = [
    "PropertyGFATotal",
    "PropertyGFAParking",
    "PropertyGFABuilding(s)",
    "LargestPropertyUseTypeGFA",
    "SecondLargestPropertyUseTypeGFA",
    "ThirdLargestPropertyUseTypeGFA",
]


def test_artifact_has_the_documented_keys(trained: TrainingResult) -> None:
    artifact = load_artifact(trained.model_path)
    assert set(ARTIFACT_KEYS) <= set(artifact)
    assert isinstance(artifact["encoder"], TargetEncoder)
    assert set(artifact["best_params"]) == {"extra_trees", "xgboost", "lightgbm", "svr"}
    metadata = artifact["metadata"]
    for key in ("versions", "data_sha256", "git_commit", "metrics", "feature_names", "training_seconds"):
        assert key in metadata
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert metadata["git_commit"].removesuffix("-dirty") == head.stdout.strip()
    for package in ("scikit-learn", "numpy", "scipy", "mlflow"):
        assert metadata["versions"][package] == package_metadata.version(package)
    assert metadata["data_sha256"] == "e0736a3096f5f0b1a6c408622c70d2643cdad68904cd4a7e5b7c3cafb393194a"
    assert joblib.load(trained.model_path.parent / "best_params.joblib") == artifact["best_params"]
    saved_metrics = json.loads((trained.model_path.parent / "metrics.json").read_text())
    assert saved_metrics["test"]["mape"] == pytest.approx(trained.metrics["test"]["mape"])


def test_final_estimator_is_a_stack_inside_the_log_target(trained: TrainingResult) -> None:
    model = load_artifact(trained.model_path)["model"]
    assert isinstance(model, TransformedTargetRegressor)
    stack = model.regressor_.steps[-1][1]
    assert isinstance(stack, StackingRegressor)
    assert [name for name, _ in stack.estimators] == ["extra_trees", "xgboost", "lightgbm", "svr"]
    # A negative weight would turn a learner's monotone constraints around.
    assert (stack.final_estimator_.estimator_.coef_ >= 0).all()


def test_metrics_are_computed_on_kbtu(trained: TrainingResult) -> None:
    test = trained.metrics["test"]
    assert 0 < test["median_ape"] < test["mape"] < 1.5
    assert 0.5 < test["r2_log"] <= 1
    assert test["rmse"] > test["mae"] > 1e5
    assert "Hotel" in test["mape_by_property_type"]


def test_prediction_ignores_meter_readings(trained: TrainingResult, sample_buildings: pd.DataFrame) -> None:
    model = load_artifact(trained.model_path)["model"]
    without = sample_buildings.drop(columns=[c for c in METER_COLUMNS + QUALITY_COLUMNS if c in sample_buildings])
    scrambled = sample_buildings.copy()
    for column in METER_COLUMNS:
        if column in scrambled:
            scrambled[column] = scrambled[column].sample(frac=1.0, random_state=1).to_numpy()
    reference = model.predict(sample_buildings)
    np.testing.assert_array_equal(model.predict(without), reference)
    np.testing.assert_array_equal(model.predict(scrambled), reference)


def test_renaming_a_building_does_not_change_its_prediction(
    trained: TrainingResult, sample_buildings: pd.DataFrame
) -> None:
    model = load_artifact(trained.model_path)["model"]
    renamed = sample_buildings.assign(PropertyName="Renamed building", Address="1 Nowhere St")
    np.testing.assert_array_equal(model.predict(renamed), model.predict(sample_buildings))


def test_category_spelling_does_not_change_a_prediction(
    trained: TrainingResult, sample_buildings: pd.DataFrame
) -> None:
    model = load_artifact(trained.model_path)["model"]
    respelled = sample_buildings.assign(
        Neighborhood=sample_buildings["Neighborhood"].str.title(),
        PrimaryPropertyType=sample_buildings["PrimaryPropertyType"].str.lower() + " ",
    )
    np.testing.assert_array_equal(model.predict(respelled), model.predict(sample_buildings))


def test_doubling_floor_area_never_lowers_a_prediction(trained: TrainingResult, sample_buildings: pd.DataFrame) -> None:
    model = load_artifact(trained.model_path)["model"]
    doubled = sample_buildings.copy()
    doubled[AREA_COLUMNS] = doubled[AREA_COLUMNS] * 2
    before, after = model.predict(sample_buildings), model.predict(doubled)
    assert (after >= before).all()
    assert (after > before).mean() > 0.9


def test_a_better_energy_star_score_never_raises_a_prediction(
    trained: TrainingResult, sample_buildings: pd.DataFrame
) -> None:
    model = load_artifact(trained.model_path)["model"]
    estimates = [model.predict(sample_buildings.assign(ENERGYSTARScore=score)) for score in (5, 35, 65, 95)]
    for worse, better in itertools.pairwise(estimates):
        assert (better <= worse).all()
    assert (estimates[-1] < estimates[0]).mean() > 0.9


def test_two_trainings_give_identical_predictions(
    trained: TrainingResult, train_fast: Callable[..., TrainingResult], sample_buildings: pd.DataFrame
) -> None:
    again = train_fast()
    first = load_artifact(trained.model_path)["model"].predict(sample_buildings)
    second = load_artifact(again.model_path)["model"].predict(sample_buildings)
    np.testing.assert_array_equal(first, second)
    assert again.metrics["test"] == trained.metrics["test"]
    # The recorded fingerprint of what the model computes agrees; the files' checksums need not (pickling).
    assert again.metadata["predictions_sha256"] == trained.metadata["predictions_sha256"]


def test_the_same_system_trains_for_greenhouse_gas(
    train_fast: Callable[..., TrainingResult], sample_buildings: pd.DataFrame, clean_buildings: pd.DataFrame
) -> None:
    from building_energy.models.loading import load_model
    from building_energy.models.predict import predict_frame

    ghg = train_fast(target="ghg")
    assert ghg.metadata["target"] == "ghg"
    assert ghg.metrics["test"]["r2_log"] > 0.5
    model = load_model(ghg.model_path)
    out = predict_frame(model, sample_buildings.head(10))
    assert list(out.columns[1:4]) == ["predicted_ghg_tco2e", "lower_tco2e", "upper_tco2e"]
    ratio = out["predicted_ghg_tco2e"] / sample_buildings["TotalGHGEmissions"].head(10)
    assert ratio.between(0.05, 20).all()

    # Tonnes, unlike kBtu, come close to 0: a log-scale interval must still stop there, for the City's
    # buildings and for a small office well below the smallest of them.
    everyone = predict_frame(model, clean_buildings)
    assert (everyone["error"] == "").all()
    assert (everyone["lower_tco2e"] >= 0).all()
    small = clean_buildings.head(1).assign(
        PrimaryPropertyType="Small- and Mid-Sized Office",
        LargestPropertyUseType="Office",
        **{area: 1_500.0 for area in ("PropertyGFATotal", "PropertyGFABuilding(s)", "LargestPropertyUseTypeGFA")},
        PropertyGFAParking=0.0,
        SecondLargestPropertyUseTypeGFA=np.nan,
        ThirdLargestPropertyUseTypeGFA=np.nan,
    )
    tiny = predict_frame(model, small).iloc[0]
    if tiny["error"]:
        assert re.fullmatch(r"prediction -?[0-9.e+-]+ metric tons CO2e is out of range .*", tiny["error"]), tiny[
            "error"
        ]
    else:
        assert 0 <= tiny["lower_tco2e"] < tiny["predicted_ghg_tco2e"] < tiny["upper_tco2e"]


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


def test_the_commit_is_dirty_for_any_change_that_can_change_a_model(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "src").mkdir(parents=True)
    (repo / "src" / "module.py").write_text("A = 1\n")
    _git(repo, "init", "-q")
    _git(repo, "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-q", "--allow-empty", "-m", "empty")
    _git(repo, "add", "src/module.py")
    _git(repo, "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-q", "-m", "module")
    assert not git_commit(repo).endswith("-dirty")
    (repo / "notes.txt").write_text("a scratch file outside the package\n")
    assert not git_commit(repo).endswith("-dirty")
    (repo / "src" / "new_module.py").write_text("B = 2\n")  # imported by the package, held by no commit
    assert git_commit(repo).endswith("-dirty")
    (repo / "src" / "new_module.py").unlink()
    (repo / "src" / "module.py").write_text("A = 2\n")
    assert git_commit(repo).endswith("-dirty")


def test_data_changed_while_training_is_refused_and_nothing_is_saved(
    data_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "buildings.csv"
    shutil.copyfile(data_path, data)
    real_preprocess = train_module.preprocess_data

    def preprocess_then_replace_the_file(*args: Any, **kwargs: Any) -> pd.DataFrame:
        # The file is replaced after it was read, as a `fetch-data` of another export would.
        clean = real_preprocess(*args, **kwargs)
        data.write_bytes(data.read_bytes() + b"\n")
        return clean

    monkeypatch.setattr(train_module, "preprocess_data", preprocess_then_replace_the_file)
    output = tmp_path / "artifacts"
    with pytest.raises(DataValidationError, match="changed while the model was training"):
        train_model(data_path=data, output_dir=output, profile="fast")
    assert not (output / "model.joblib").exists()
