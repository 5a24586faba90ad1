"""The command line: exit codes, per-row errors, and artifacts that bad input never touches."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from building_energy.cli import build_parser, main
from building_energy.config import Settings, config_file, get_config
from building_energy.models.train import TrainingResult

pytestmark = pytest.mark.slow


@pytest.fixture
def artifacts(trained: TrainingResult, tmp_path: Path) -> Path:
    """A copy of a real artifacts directory, to check that failed runs leave it as it was."""
    target = tmp_path / "artifacts"
    shutil.copytree(trained.model_path.parent, target)
    return target


def _snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


def _write_csv(data_path: Path, path: Path, edit: str) -> Path:
    frame = pd.read_csv(data_path, dtype=str, keep_default_na=False)
    if edit == "missing-column":
        frame = frame.drop(columns="PropertyGFATotal")
    elif edit == "non-numeric-area":
        frame.loc[4, "PropertyGFATotal"] = "forty thousand"
    if edit == "empty":
        path.write_text("")
    else:
        frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ("missing-column", r"missing required column\(s\) \['PropertyGFATotal'\]"),
        ("non-numeric-area", r"CSV line 6: PropertyGFATotal='forty thousand' is not a number"),
        ("empty", r"the file is empty"),
    ],
)
def test_bad_training_data_fails_clearly_and_keeps_artifacts(
    data_path: Path, artifacts: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], edit: str, message: str
) -> None:
    before = _snapshot(artifacts)
    bad = _write_csv(data_path, tmp_path / f"{edit}.csv", edit)
    code = main(["train", "--data", str(bad), "--output", str(artifacts), "--profile", "fast"])
    assert code != 0
    assert re.search(message, capsys.readouterr().err)
    assert _snapshot(artifacts) == before


@pytest.mark.integration
def test_console_script_reports_errors_with_exit_code(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "building-energy"),
            "train",
            "--data",
            str(empty),
            "--output",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    # One line, once: not a log record and then the same message again.
    assert result.stderr.splitlines() == [f"error: {empty}: the file is empty"]


def _console(*args: str, **environment: str) -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).parent / "building-energy"), *args]
    env = {**os.environ, **environment}
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False, env=env)


@pytest.mark.integration
def test_a_bad_setting_is_one_line_naming_it_even_for_help(tmp_path: Path) -> None:
    result = _console("--help", BE_API__PORT="abc")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "error: configuration: api.port: Input should be a valid integer, unable to parse string as an integer "
        "(got 'abc')"
    ]
    result = _console("predict", "--help", BE_CONFIG=str(tmp_path / "nowhere.yaml"))
    assert (result.returncode, result.stderr.splitlines()) == (
        2,
        [f"error: configuration file not found: {tmp_path / 'nowhere.yaml'}"],
    )
    partial = tmp_path / "partial.yaml"
    partial.write_text("random_state: 7\n")
    result = _console("--help", BE_CONFIG=str(partial))
    assert result.returncode == 2
    assert result.stderr.startswith("error: configuration: paths: Field required; ")
    assert "Traceback" not in result.stderr


@pytest.mark.integration
def test_a_misspelt_or_malformed_setting_is_refused_not_ignored(tmp_path: Path) -> None:
    """Before, each of these left the default in force without a word, or printed a YAML traceback."""
    misspelt_key = tmp_path / "misspelt.yaml"
    document = yaml.safe_load(config_file().read_text())
    document["features"]["n_surfce_clusters"] = 9
    misspelt_key.write_text(yaml.safe_dump(document))
    not_yaml, a_list = tmp_path / "broken.yaml", tmp_path / "list.yaml"
    not_yaml.write_text("a: [1,\n")
    a_list.write_text("- 1\n")
    cases = [
        ({"BE_CONFIG": str(misspelt_key)}, "error: configuration: features.n_surfce_clusters: Extra inputs are not"),
        ({"BE_DASHBOARD__PROT": "1"}, "error: configuration: dashboard.prot: Extra inputs are not permitted"),
        ({"BE_CV_FOLD": "3"}, "error: configuration: BE_CV_FOLD: no such setting"),
        ({"BE_CONFIG": str(not_yaml)}, f"error: configuration: {not_yaml}: not valid YAML ("),
        ({"BE_CONFIG": str(a_list)}, f"error: configuration: {a_list}: the file must map setting names to values"),
        ({"BE_CONFIG": str(tmp_path)}, f"error: configuration: {tmp_path} is a directory, not a configuration file"),
    ]
    for environment, message in cases:
        result = _console("--help", **environment)
        assert result.returncode == 2, (environment, result.stderr)
        assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith(message), result.stderr


@pytest.mark.integration
def test_a_parameter_no_learner_has_is_refused_before_any_work(tmp_path: Path) -> None:
    """LightGBM and XGBoost take any keyword: a misspelt one left the default in force without a word."""
    document = yaml.safe_load(config_file().read_text())
    document["profiles"]["tiny"]["lightgbm"]["num_leafs"] = [4]
    document["tuning"]["spaces"]["xgboost"]["max_dpeth"] = {"kind": "int", "low": 2, "high": 4}
    typo = tmp_path / "typo.yaml"
    typo.write_text(yaml.safe_dump(document))
    artifacts, journal = tmp_path / "artifacts", tmp_path / "journal.log"
    commands = [
        ["train", "--profile", "tiny", "--output", str(artifacts)],
        ["tune", "--learner", "lightgbm", "--trials", "1", "--storage", str(journal)],
        ["tune", "--learner", "stack", "--trials", "1", "--storage", str(journal), "--workers", "2"],
        ["bench", "--profile", "tiny", "--seeds", "1", "--folds", "2"],
    ]
    for argv in commands:
        result = _console(*argv, BE_CONFIG=str(typo))
        assert result.returncode == 2, (argv, result.stderr)
        assert result.stderr.splitlines() == [
            "error: configuration names parameters the learners do not have: profiles.tiny.lightgbm.num_leafs, "
            "tuning.spaces.xgboost.max_dpeth (names as the learner's get_params() lists them; library aliases "
            "such as XGBoost's eta are not taken)"
        ], argv
    assert not artifacts.exists() and not journal.exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["serve", "--port", "99999"], "argument --port: must be a port from 1 to 65535, got 99999"),
        (["dashboard", "--port", "0"], "argument --port: must be a port from 1 to 65535, got 0"),
        (["tune", "--trials", "0"], "argument --trials: must be 1 or more, got 0"),
        (["bench", "--folds", "1"], "argument --folds: must be 2 or more, got 1"),
        (["bench", "--seeds", "-1"], "argument --seeds: must be 0 or more, got -1"),
        (["bench", "--seeds", "4294967296"], "argument --seeds: must be a seed from 0 to 4294967295, got 4294967296"),
        (["serve", "--workers", "0"], "argument --workers: must be 1 or more, got 0"),
    ],
)
def test_numbers_out_of_range_are_refused_before_anything_runs(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_bench_refuses_a_directory_as_output_before_it_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # A missing data file as well: had the benchmark run first, that would be the error.
    argv = ["bench", "--profile", "tiny", "--data", str(tmp_path / "absent.csv"), "--output", str(tmp_path)]
    assert main(argv) == 2
    assert capsys.readouterr().err.strip() == f"error: {tmp_path}: is a directory; give the per-fold CSV's file name"


@pytest.mark.parametrize(
    ("given", "message"), [("-3", "must be 0 or more, got -3"), ("abc", "must be a whole number, got 'abc'")]
)
def test_explain_takes_a_count_of_drivers(capsys: pytest.CaptureFixture[str], given: str, message: str) -> None:
    argv = ["predict", "--model", "m.joblib", "--input", "in.csv", "--output", "out.csv", "--explain"]
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, given])
    assert exit_info.value.code == 2
    assert f"argument --explain: {message}" in capsys.readouterr().err
    assert build_parser().parse_args([*argv, "0"]).explain == 0  # the default, stated: no drivers


def test_training_on_too_few_buildings_names_the_file(
    data_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    few = tmp_path / "few.csv"
    pd.read_csv(data_path, dtype=str, keep_default_na=False).head(60).to_csv(few, index=False)
    output = tmp_path / "artifacts"
    assert main(["train", "--data", str(few), "--output", str(output), "--profile", "tiny"]) == 2
    error = capsys.readouterr().err
    assert re.search(rf"error: {re.escape(str(few))}: \d+ buildings to train on .*; at least 100 are needed", error)
    assert not output.exists()


def test_predict_scores_every_row_in_order(trained: TrainingResult, data_path: Path, tmp_path: Path) -> None:
    frame = pd.read_csv(data_path, dtype=str, keep_default_na=False).head(30)
    meter = [c for c in frame.columns if "kBtu" in c or "kWh" in c or "therms" in c or "GHG" in c]
    frame = frame.drop(columns=meter)
    frame.loc[3, "PropertyGFATotal"] = "n/a?"
    frame.loc[5, "YearBuilt"] = "1066"
    frame.loc[7, "PrimaryPropertyType"] = ""
    source, output = tmp_path / "in.csv", tmp_path / "out.csv"
    frame.to_csv(source, index=False)

    assert main(["predict", "--model", str(trained.model_path), "--input", str(source), "--output", str(output)]) == 0

    result = pd.read_csv(output, keep_default_na=False)
    assert list(result.columns) == ["OSEBuildingID", "predicted_site_energy_kbtu", "lower_kbtu", "upper_kbtu", "error"]
    assert result["OSEBuildingID"].astype(str).tolist() == frame["OSEBuildingID"].tolist()
    failed = result["error"] != ""
    # Row 9 is the City's first multifamily building: the model was never trained on residential ones.
    assert frame.loc[9, "BuildingType"] == "Multifamily MR (5-9)"
    assert failed.tolist() == [i in (3, 5, 7, 9) for i in range(30)]
    assert "PropertyGFATotal" in result.loc[3, "error"]
    assert "YearBuilt" in result.loc[5, "error"]
    assert "PrimaryPropertyType is missing" in result.loc[7, "error"]
    assert result.loc[9, "error"] == (
        "BuildingType 'Multifamily MR (5-9)' is residential: the model covers non-residential buildings only"
    )
    assert (result.loc[failed, "predicted_site_energy_kbtu"] == "").all()
    scored = result.loc[~failed].apply(pd.to_numeric, errors="coerce")
    assert (scored["predicted_site_energy_kbtu"] > 0).all()
    assert (scored["lower_kbtu"] < scored["predicted_site_energy_kbtu"]).all()
    assert (scored["predicted_site_energy_kbtu"] < scored["upper_kbtu"]).all()


def _predict(model: Path, source: Path, output: Path, *extra: str) -> int:
    return main(["predict", "--model", str(model), "--input", str(source), "--output", str(output), *extra])


def test_predict_refuses_a_file_without_a_column_the_model_reads_unless_allowed(
    trained: TrainingResult, data_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = pd.read_csv(data_path, dtype=str, keep_default_na=False).head(8)
    # The 2017 export's name for this column is not one the reader knows: read as is, the column is absent.
    renamed = frame.rename(columns={"LargestPropertyUseTypeGFA": "Largest Property Use Type - Gross Floor Area"})
    source, output = tmp_path / "in.csv", tmp_path / "out.csv"
    renamed.to_csv(source, index=False)
    output.write_text("earlier predictions\n")

    assert _predict(trained.model_path, source, output) == 2
    error = capsys.readouterr().err
    assert f"{source}: no column for ['LargestPropertyUseTypeGFA'], which the model reads" in error
    assert "--allow-absent-columns" in error
    assert output.read_text() == "earlier predictions\n"

    assert _predict(trained.model_path, source, output, "--allow-absent-columns") == 0
    assert len(pd.read_csv(output)) == 8
    # Without ids the output keeps its columns, the id blank.
    frame.drop(columns="OSEBuildingID").to_csv(source, index=False)
    assert _predict(trained.model_path, source, output) == 0
    without_ids = pd.read_csv(output)
    assert list(without_ids.columns)[:2] == ["OSEBuildingID", "predicted_site_energy_kbtu"]
    assert without_ids["OSEBuildingID"].isna().all()
    # A blank column is each building's own unknown, not a missing field: scored without the flag.
    frame.assign(LargestPropertyUseTypeGFA="").to_csv(source, index=False)
    assert _predict(trained.model_path, source, output) == 0


def test_a_model_trained_without_the_score_does_not_ask_a_file_for_it(
    trained: TrainingResult,
    trained_without_score: TrainingResult,
    data_path: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    frame = pd.read_csv(data_path, dtype=str, keep_default_na=False)
    frame = frame.loc[frame["BuildingType"] == "NonResidential"].head(8)
    source, output = tmp_path / "in.csv", tmp_path / "out.csv"
    frame.drop(columns="ENERGYSTARScore").to_csv(source, index=False)

    assert _predict(trained_without_score.model_path, source, output) == 0
    scored = pd.read_csv(output)
    assert len(scored) == 8 and scored["error"].isna().all()
    # The same file is refused by a model that reads the score.
    assert _predict(trained.model_path, source, tmp_path / "refused.csv") == 2
    assert "no column for ['ENERGYSTARScore']" in capsys.readouterr().err


def test_predict_explain_marks_the_fields_a_row_did_not_give(
    trained: TrainingResult, data_path: Path, tmp_path: Path
) -> None:
    source, output = tmp_path / "in.csv", tmp_path / "out.csv"
    frame = pd.read_csv(data_path, dtype=str, keep_default_na=False).head(6)
    frame.assign(ENERGYSTARScore=["", "", "", "80", "80", "80"]).to_csv(source, index=False)
    assert _predict(trained.model_path, source, output, "--explain", "40") == 0
    drivers = pd.read_csv(output)["top_drivers"].tolist()
    for row, listed in enumerate(drivers):
        fields = dict(driver.rsplit(" x", 1) for driver in listed.split("; "))
        assert ("ENERGYSTARScore (unknown)" in fields) == (row < 3), listed
        assert ("ENERGYSTARScore" in fields) == (row >= 3), listed
        assert "PropertyGFATotal" in fields, listed


def test_predict_never_writes_over_its_input(
    trained: TrainingResult, data_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "buildings.csv"
    pd.read_csv(data_path, dtype=str, keep_default_na=False).head(5).to_csv(source, index=False)
    before = source.read_bytes()
    (tmp_path / "sub").mkdir()
    (tmp_path / "link.csv").symlink_to(source)
    # Other spellings of the input's path: through a parent folder, and through a symbolic link.
    for output in (tmp_path / "sub" / ".." / "buildings.csv", tmp_path / "link.csv"):
        assert _predict(trained.model_path, source, output) == 2
        assert "the output would replace the input file" in capsys.readouterr().err
        assert source.read_bytes() == before


def test_predict_never_writes_over_the_model_it_scores(
    artifacts: Path, data_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "buildings.csv"
    pd.read_csv(data_path, dtype=str, keep_default_na=False).head(5).to_csv(source, index=False)
    model = artifacts / "model.joblib"
    before = _snapshot(artifacts)
    for output in (model, artifacts / "model.joblib.sha256", artifacts / "." / "model.joblib"):
        assert _predict(model, source, output) == 2
        assert capsys.readouterr().err.splitlines()[-1] == (
            f"error: {output}: the output would replace the model being scored; choose another path"
        )
    assert _snapshot(artifacts) == before
    assert _predict(model, source, artifacts / "predictions.csv") == 0


def test_predict_keeps_a_read_only_file_even_when_run_as_root(
    trained: TrainingResult, data_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # CI runs as root, for whom the kernel allows any write: the mode the user gave the file must still hold.
    source, output = tmp_path / "buildings.csv", tmp_path / "kept.csv"
    pd.read_csv(data_path, dtype=str, keep_default_na=False).head(5).to_csv(source, index=False)
    output.write_text("earlier predictions\n")
    output.chmod(0o444)
    assert _predict(trained.model_path, source, output) == 2
    assert capsys.readouterr().err.splitlines()[-1] == f"error: {output}: the file is read-only; not replaced"
    assert output.read_text() == "earlier predictions\n"


def test_a_bad_cell_in_a_column_the_model_does_not_read_costs_no_row(
    trained: TrainingResult, data_path: Path, tmp_path: Path
) -> None:
    frame = pd.read_csv(data_path, dtype=str, keep_default_na=False)
    frame = frame.loc[frame["BuildingType"] == "NonResidential"].head(6).reset_index(drop=True)
    clean, messy = tmp_path / "clean.csv", tmp_path / "messy.csv"
    frame.to_csv(clean, index=False)
    # A ZIP+4 code, and the blanks of other exports in the meter columns and the year of the data.
    frame.loc[0, "ZipCode"] = "98101-1234"
    frame.loc[1, "Electricity(kWh)"] = "n.a."
    frame.loc[2, "TotalGHGEmissions"] = "Not Available"
    frame.loc[3, "DataYear"] = "FY2016"
    # In a field the model reads, the same kind of cell is still the row's error.
    frame.loc[4, "NumberofFloors"] = "two"
    frame.to_csv(messy, index=False)

    assert _predict(trained.model_path, clean, tmp_path / "clean_out.csv") == 0
    assert _predict(trained.model_path, messy, tmp_path / "messy_out.csv") == 0
    expected = pd.read_csv(tmp_path / "clean_out.csv", keep_default_na=False)
    scored = pd.read_csv(tmp_path / "messy_out.csv", keep_default_na=False)
    assert scored["error"].tolist() == ["", "", "", "", "NumberofFloors='two' is not a number", ""]
    kept = [0, 1, 2, 3, 5]
    numbers = ["OSEBuildingID", "predicted_site_energy_kbtu", "lower_kbtu", "upper_kbtu"]
    pd.testing.assert_frame_equal(scored.loc[kept, numbers].astype(float), expected.loc[kept, numbers].astype(float))


def test_a_fraction_in_a_count_year_or_district_is_the_rows_error_as_in_the_api(
    trained: TrainingResult, data_path: Path, tmp_path: Path
) -> None:
    frame = pd.read_csv(data_path, dtype=str, keep_default_na=False)
    frame = frame.loc[frame["BuildingType"] == "NonResidential"].head(5).reset_index(drop=True)
    edits = {"YearBuilt": "1927.5", "NumberofFloors": "2.5", "NumberofBuildings": "1.5", "CouncilDistrictCode": "3.5"}
    for row, (column, value) in enumerate(edits.items()):
        frame.loc[row, column] = value
    source, output = tmp_path / "in.csv", tmp_path / "out.csv"
    frame.to_csv(source, index=False)
    assert _predict(trained.model_path, source, output) == 0
    errors = pd.read_csv(output, keep_default_na=False)["error"].tolist()
    assert errors == [f"{column} fails whole_number (value {float(value)!r})" for column, value in edits.items()] + [""]


def test_predict_exits_1_when_no_row_could_be_scored(
    trained: TrainingResult, data_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = pd.read_csv(data_path, dtype=str, keep_default_na=False).head(4).assign(PropertyGFATotal="")
    source, output = tmp_path / "in.csv", tmp_path / "out.csv"
    frame.to_csv(source, index=False)
    assert _predict(trained.model_path, source, output) == 1
    assert "0 of 4 rows scored, 4 with errors" in capsys.readouterr().out
    assert (pd.read_csv(output, keep_default_na=False)["error"] != "").all()


def test_predict_writes_through_a_symlink_and_refuses_a_directory(
    trained: TrainingResult, data_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "buildings.csv"
    pd.read_csv(data_path, dtype=str, keep_default_na=False).head(5).to_csv(source, index=False)
    shared = tmp_path / "shared" / "predictions.csv"
    shared.parent.mkdir()
    shared.write_text("old\n")
    link = tmp_path / "predictions.csv"
    link.symlink_to(shared)
    assert _predict(trained.model_path, source, link) == 0
    assert link.is_symlink()
    assert len(pd.read_csv(shared)) == 5

    assert _predict(trained.model_path, source, tmp_path / "shared") == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"error: {tmp_path / 'shared'}: is a directory; give the predictions file's name"
    )


def test_predict_keeps_earlier_predictions_when_writing_the_new_ones_fails(
    trained: TrainingResult, data_path: Path, tmp_path: Path
) -> None:
    source, output = tmp_path / "in.csv", tmp_path / "out.csv"
    pd.read_csv(data_path, dtype=str, keep_default_na=False).head(200).to_csv(source, index=False)
    output.write_text("earlier predictions\n")
    # A real write failure part-way: the process may not write a file over 4 KiB (200 rows take ~16 KiB), as on
    # a disk that fills up. Written in place, the earlier file would be cut to a partial one.
    script = (
        "import resource, signal, sys\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))\n"
        "from building_energy.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    argv = ["predict", "--model", str(trained.model_path), "--input", str(source), "--output", str(output)]
    result = subprocess.run(
        [sys.executable, "-c", script, *argv], check=False, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 2, result.stderr
    assert f"error: {output}: File too large" in result.stderr
    assert "Traceback" not in result.stderr
    assert output.read_text() == "earlier predictions\n"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["in.csv", "out.csv"]


def test_evaluate_reproduces_the_recorded_test_metrics(
    trained: TrainingResult, data_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["evaluate", "--model", str(trained.model_path), "--data", str(data_path)]) == 0
    printed = json.loads(capsys.readouterr().out)
    # Recomputed from the saved model on the recorded test buildings, not read back from the metadata.
    for metric in ("mape", "r2", "r2_log", "mae", "median_ape"):
        assert printed["test"][metric] == pytest.approx(trained.metrics["test"][metric], rel=1e-9), metric
    assert printed["test"]["n_rows"] == trained.metrics["test"]["n_rows"]
    assert printed["data"]["same_as_training"] is True
    assert printed["data"]["test_buildings_found"] == printed["data"]["test_buildings_recorded"]


def test_evaluate_on_other_data_says_so(
    trained: TrainingResult, data_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A re-export with one test building's reading corrected is scored, and labelled as other data."""
    frame = pd.read_csv(data_path, dtype=str, keep_default_na=False)
    corrected = frame["OSEBuildingID"].astype(int).isin(trained.metadata["test_ids"]).to_numpy().nonzero()[0][0]
    target = "SiteEnergyUse(kBtu)"
    frame.loc[corrected, target] = str(float(frame.loc[corrected, target]) * 3)
    other = tmp_path / "re_export.csv"
    frame.to_csv(other, index=False)

    assert main(["evaluate", "--model", str(trained.model_path), "--data", str(other)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["data"]["same_as_training"] is False
    assert printed["data"]["trained_on_sha256"] == trained.metadata["data_sha256"] != printed["data"]["sha256"]
    assert printed["test"]["mape"] != pytest.approx(trained.metrics["test"]["mape"], rel=1e-9)

    without_test_buildings = tmp_path / "no_test_buildings.csv"
    frame[~frame["OSEBuildingID"].astype(int).isin(trained.metadata["test_ids"])].to_csv(
        without_test_buildings, index=False
    )
    assert main(["evaluate", "--model", str(trained.model_path), "--data", str(without_test_buildings)]) == 2
    assert f"{without_test_buildings}: none of the" in capsys.readouterr().err


def test_a_model_folder_instead_of_its_file_says_which_file(
    artifacts: Path, data_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "buildings.csv"
    pd.read_csv(data_path, dtype=str, keep_default_na=False).head(2).to_csv(source, index=False)
    assert _predict(artifacts, source, tmp_path / "out.csv") == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"error: {artifacts}: is a directory; give the model file (e.g. {artifacts / 'model.joblib'})"
    )


def test_missing_model_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["predict", "--model", str(tmp_path / "none.joblib"), "--input", "x.csv", "--output", "y.csv"])
    assert code == 2
    assert "train one with `building-energy train`" in capsys.readouterr().err


def test_tune_stack_prints_the_best_trial_as_a_profile_and_writes_a_config_with_it(
    data_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = str(tmp_path / "journal.log")
    argv = ["tune", "--learner", "stack", "--trials", "1", "--storage", journal, "--data", str(data_path)]
    with pytest.raises(SystemExit) as exit_info:  # refused as the command line is read, like train's
        main([*argv, "--profile", "no-such-profile"])
    assert exit_info.value.code == 2
    assert "argument --profile: invalid choice: 'no-such-profile'" in capsys.readouterr().err

    written = tmp_path / "tuned.yaml"
    for refused, message in [
        (["--learner", "svr", "--write-config", str(written)], "--write-config needs --learner stack"),
        (["--write-config", str(tmp_path)], f"{tmp_path}: is a directory"),
    ]:
        assert main([*argv, "--profile", "tiny", *refused]) == 2
        assert message in capsys.readouterr().err
    assert main([*argv, "--profile", "tiny", "--write-config", str(written)]) == 0
    out = capsys.readouterr().out
    assert "stack: study stack-tiny-energy-es-train, 1 complete + 0 pruned trials" in out
    printed = yaml.safe_load(out[out.index("tiny:") :])["tiny"]
    # One trial is the profile itself: the printed profile is the tiny one, every value a single candidate.
    assert printed["xgboost"]["max_depth"] == [1] and printed["svr"]["C"] == [0.001]
    assert set(printed) == {"extra_trees", "xgboost", "lightgbm", "svr"}
    # The file written is the configuration in force with that profile: train reads it through BE_CONFIG.
    monkeypatch.setenv("BE_CONFIG", str(written))
    from building_energy.models.tuning import rounded_profile

    assert rounded_profile(Settings().grids("tiny")) == printed  # the file holds the exact values
    assert Settings().grids("full") == get_config().grids("full")
