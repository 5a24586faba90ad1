"""Each page of the dashboard, driven through the real app file with the session's real `fast` model."""

from __future__ import annotations

import io
import json
import logging
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from building_energy.cli import main
from building_energy.config import get_config
from building_energy.data.columns import BUILDING_ID, TARGET_KBTU
from building_energy.data.io import read_buildings_csv
from building_energy.models.compare_pipelines import recorded_split
from building_energy.models.loading import LoadedModel
from building_energy.models.predict import ERROR_COLUMN, LOWER_COLUMN, PREDICTION_COLUMN, UPPER_COLUMN, predict_frame
from building_energy.models.train import TARGET_COLUMNS, TrainingResult, prepare_xy
from building_energy.tracking.runs import track_training
from tests.dashboard.helpers import PAGES, metric, open_page, texts
from tests.tracking.helpers import copy_of, sqlite_uri

pytestmark = pytest.mark.slow

TITLES = {
    "Predict": "Predict one building",
    "Batch": "Score a file of buildings",
    "Model": "The model",
    "Data": "The City's buildings",
}
# What a user types for a building the City does not list: every form field, City column names.
TYPED_BUILDING = {
    "PrimaryPropertyType": "Hotel",
    "LargestPropertyUseType": "Hotel",
    "BuildingType": "NonResidential",
    "Neighborhood": "DOWNTOWN",
    "PropertyGFATotal": 120_000.0,
    "PropertyGFABuilding(s)": 110_000.0,
    "PropertyGFAParking": 10_000.0,
    "LargestPropertyUseTypeGFA": 110_000.0,
    "YearBuilt": 1985.0,
    "NumberofFloors": 8.0,
    "NumberofBuildings": 1.0,
    "ENERGYSTARScore": 60.0,
    "Latitude": 47.6105,
    "Longitude": -122.3370,
}


def _predict_cli(model_path: Path, rows: pd.DataFrame, folder: Path) -> tuple[Path, pd.DataFrame]:
    """``building-energy predict`` on ``rows`` written as a City CSV: the input file and the CLI's output."""
    source, output = folder / "buildings.csv", folder / "predictions.csv"
    rows.to_csv(source, index=False)
    assert main(["predict", "--model", str(model_path), "--input", str(source), "--output", str(output)]) == 0
    predictions = pd.read_csv(output)
    return source, predictions.assign(**{ERROR_COLUMN: predictions[ERROR_COLUMN].fillna("")})


@pytest.mark.parametrize("page", list(PAGES))
def test_page_renders_without_exception(dashboard_env: TrainingResult, page: str) -> None:
    app = open_page(page)
    assert texts(app.exception) == []
    assert texts(app.error) == []
    assert texts(app.title) == [TITLES[page]]


def test_model_page_shows_recorded_metrics_and_recomputed_test_split(dashboard_env: TrainingResult) -> None:
    app = open_page("Model")
    recorded = dashboard_env.metadata["metrics"]["test"]
    assert metric(app, "MAPE") == f"{recorded['mape']:.3f}"
    assert metric(app, "R²", exact=True) == f"{recorded['r2']:.3f}"
    assert any(
        text.startswith(f"{dashboard_env.metadata['n_test']} buildings recomputed") for text in texts(app.caption)
    )
    about = texts(app.markdown)[0]
    assert dashboard_env.metadata["trained_at"] in about
    assert str(dashboard_env.model_path) in about
    specs = [json.loads(chart.proto.spec) for chart in app.get("vega_lite_chart")]
    assert len(specs) == 4  # predicted vs actual, residuals, importance, ENERGY STAR
    scatter = json.dumps(specs[0])
    assert '"type": "log"' in scatter  # log axes


def test_data_page_counts_and_filters(dashboard_env: TrainingResult, clean_buildings: pd.DataFrame) -> None:
    app = open_page("Data")
    assert metric(app, "Buildings") == f"{len(clean_buildings):,}"
    assert len(app.get("vega_lite_chart")) == 4  # the map and three distributions
    app.multiselect(key="types").set_value(["Hotel"]).run()
    hotels = clean_buildings.loc[clean_buildings["PrimaryPropertyType"].str.upper() == "HOTEL"]
    assert metric(app, "Buildings") == f"{len(hotels):,}"
    eui = hotels[TARGET_KBTU] / hotels["PropertyGFATotal"]
    assert metric(app, "Median EUI") == f"{eui.median():,.1f} kBtu/sq ft"
    assert texts(app.exception) == []


def _test_building(trained: TrainingResult, clean_buildings: pd.DataFrame, with_score: bool) -> int:
    rows = clean_buildings.loc[clean_buildings[BUILDING_ID].isin(trained.metadata["test_ids"])]
    has_score = rows["ENERGYSTARScore"].notna()
    return int(rows.loc[has_score if with_score else ~has_score, BUILDING_ID].iloc[0])


@pytest.mark.parametrize("with_score", [True, False], ids=["energy-star-score", "no-energy-star-score"])
def test_prefilled_form_gives_the_cli_prediction(
    dashboard_env: TrainingResult,
    app_config: Callable[..., None],
    loaded: LoadedModel,
    clean_buildings: pd.DataFrame,
    raw_buildings: pd.DataFrame,
    tmp_path: Path,
    with_score: bool,
) -> None:
    building_id = _test_building(dashboard_env, clean_buildings, with_score)
    app_config(BE_DASHBOARD__TOP_DRIVERS="7")
    app = open_page("Predict")
    app.selectbox(key="prefill").set_value(building_id).run()
    assert app.metric == [] and "prediction" not in app.session_state  # prefilling is not predicting
    app.button(key="predict").click().run()
    assert texts(app.exception) == [] and texts(app.error) == []

    raw_row = raw_buildings.loc[raw_buildings[BUILDING_ID] == building_id].iloc[[0]]
    source, cli_output = _predict_cli(dashboard_env.model_path, raw_row, tmp_path)
    cli_value = float(cli_output[PREDICTION_COLUMN].iloc[0])
    form_value = float(app.session_state["prediction"]["output"][PREDICTION_COLUMN].iloc[0])
    assert form_value == pytest.approx(cli_value, rel=1e-12)  # the CLI's CSV keeps every significant digit
    read_back, problems = read_buildings_csv(source)
    assert form_value == float(predict_frame(loaded, read_back, problems)[PREDICTION_COLUMN].iloc[0])
    assert metric(app, "Predicted", exact=True) == f"{cli_value:,.0f} kBtu"
    area = float(raw_row["PropertyGFATotal"].iloc[0])
    assert metric(app, "Predicted per sq ft") == f"{cli_value / area:,.1f} kBtu/sq ft"
    expected = predict_frame(loaded, read_back, problems)
    lower, upper = float(expected[LOWER_COLUMN].iloc[0]), float(expected[UPPER_COLUMN].iloc[0])
    assert metric(app, "Likely range") == f"{lower:,.0f} – {upper:,.0f} kBtu"
    assert "**Top drivers of this prediction**" in texts(app.markdown)
    shown = app.dataframe[0].value
    # As many as the configuration asks for (7 here, not the explainer's default 5), as the model explains.
    (expected_drivers,) = loaded.explain(read_back, top_k=7)
    assert shown["field"].tolist() == [d["field"] for d in expected_drivers]
    np.testing.assert_allclose(shown["factor"], [d["factor"] for d in expected_drivers], rtol=1e-9)


def test_typed_building_is_scored_only_on_submit_and_matches_the_cli(
    dashboard_env: TrainingResult,
    loaded: LoadedModel,
    clean_buildings: pd.DataFrame,
    raw_buildings: pd.DataFrame,
    tmp_path: Path,
) -> None:
    app = open_page("Predict")
    assert app.metric == [] and "prediction" not in app.session_state
    for column, value in TYPED_BUILDING.items():
        widget = app.selectbox(key=f"{column}@new") if isinstance(value, str) else app.number_input(key=f"{column}@new")
        widget.set_value(value)
    app.button(key="predict").click().run()
    assert texts(app.exception) == [] and texts(app.error) == []
    submitted = app.session_state["prediction"]["output"]

    # The same building as a row of the City's file: every column of the export, only the typed ones filled
    # (and no OSEBuildingID: a building the City does not list has none).
    city_row = pd.DataFrame([TYPED_BUILDING], columns=raw_buildings.columns.drop(BUILDING_ID))
    source, cli_output = _predict_cli(dashboard_env.model_path, city_row, tmp_path)
    read_back, problems = read_buildings_csv(source)
    expected = predict_frame(loaded, read_back, problems)
    value = float(expected[PREDICTION_COLUMN].iloc[0])
    assert expected[ERROR_COLUMN].iloc[0] == ""
    assert float(app.session_state["prediction"]["output"][PREDICTION_COLUMN].iloc[0]) == value
    assert float(cli_output[PREDICTION_COLUMN].iloc[0]) == pytest.approx(value, rel=1e-12)
    assert metric(app, "Predicted", exact=True) == f"{value:,.0f} kBtu"

    split = clean_buildings.loc[~clean_buildings[BUILDING_ID].isin(dashboard_env.metadata["test_ids"])]
    training = split.loc[split["Outlier"].isna()]  # the rows the model was fitted on
    hotels = training.loc[training["PrimaryPropertyType"].str.upper() == "HOTEL"]
    assert metric(app, f"Median of {len(hotels)} similar") == f"{hotels[TARGET_KBTU].median():,.0f} kBtu"
    per_sqft = (hotels[TARGET_KBTU] / hotels["PropertyGFATotal"]).median()
    assert metric(app, "Median per sq ft of similar") == f"{per_sqft:,.1f} kBtu/sq ft"

    # An st.form: changing a field reruns the page but predicts nothing until the next submit (the script
    # still sees the submitted values, and the result shown is theirs).
    app.number_input(key="NumberofFloors@new").set_value(30.0)
    app.run()
    assert app.session_state["prediction"]["output"] is submitted
    assert metric(app, "Predicted", exact=True) == f"{value:,.0f} kBtu"


def test_a_typed_building_and_its_result_are_still_there_after_another_page(
    dashboard_env: TrainingResult, clean_buildings: pd.DataFrame
) -> None:
    app = open_page("Predict")
    for column, value in TYPED_BUILDING.items():
        widget = app.selectbox(key=f"{column}@new") if isinstance(value, str) else app.number_input(key=f"{column}@new")
        widget.set_value(value)
    app.button(key="predict").click().run()
    predicted = metric(app, "Predicted", exact=True)

    app.switch_page(PAGES["Model"]).run()
    assert texts(app.exception) == []
    app.switch_page(PAGES["Predict"]).run()
    assert texts(app.exception) == []
    assert app.number_input(key="PropertyGFATotal@new").value == TYPED_BUILDING["PropertyGFATotal"]
    assert app.selectbox(key="Neighborhood@new").value == TYPED_BUILDING["Neighborhood"]
    assert metric(app, "Predicted", exact=True) == predicted
    # Another building picked since: the old result is not shown beside a form it does not belong to.
    app.selectbox(key="prefill").set_value(_test_building(dashboard_env, clean_buildings, True)).run()
    assert app.metric == []


def test_unscorable_building_gets_its_reason(dashboard_env: TrainingResult) -> None:
    app = open_page("Predict")
    app.number_input(key="PropertyGFATotal@new").set_value(0.0)
    app.button(key="predict").click().run()
    assert texts(app.exception) == []
    assert app.metric == []
    assert any("cannot be scored" in text and "PropertyGFATotal" in text for text in texts(app.error))


def test_batch_scores_a_city_file_like_the_cli(
    dashboard_env: TrainingResult, raw_buildings: pd.DataFrame, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    non_residential = raw_buildings.loc[~raw_buildings["BuildingType"].str.startswith("Multifamily")]
    rows = non_residential.sample(20, random_state=1).reset_index(drop=True).astype(object)
    rows.loc[3, "PropertyGFATotal"] = "lots"
    rows.loc[7, "PrimaryPropertyType"] = None
    rows.loc[12, "BuildingType"] = "Multifamily LR (1-4)"  # the model was not trained on residential buildings
    source, cli_output = _predict_cli(dashboard_env.model_path, rows, tmp_path)

    app = open_page("Batch")
    app.file_uploader(key="upload").upload("buildings.csv", source.read_bytes(), "text/csv")
    app.run()
    assert texts(app.exception) == [] and texts(app.error) == []
    assert texts(app.success) == ["17 of 20 rows scored, 3 could not be."]
    shown, failed = (frame.value for frame in app.dataframe)
    pd.testing.assert_frame_equal(
        shown.reset_index(drop=True).astype({BUILDING_ID: "int64"}),
        cli_output.astype({BUILDING_ID: "int64"}),
        check_dtype=False,
    )
    assert failed["csv_line"].tolist() == [5, 9, 14]  # header is line 1: rows 3, 7 and 12 of the frame
    assert "PropertyGFATotal" in failed[ERROR_COLUMN].iloc[0]
    assert "PrimaryPropertyType" in failed[ERROR_COLUMN].iloc[1]
    assert "is residential: the model covers non-residential buildings only" in failed[ERROR_COLUMN].iloc[2]
    assert np.isnan(failed[PREDICTION_COLUMN].astype(float)).all()
    assert [record for record in caplog.records if "3 of 20 rows could not be scored" in record.getMessage()]
    # A rerun (ticking a box, a download) shows the same result without scoring the whole file again.
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="building_energy.models.predict"):
        app.run()
    assert texts(app.success) == ["17 of 20 rows scored, 3 could not be."]
    assert [record for record in caplog.records if "could not be scored" in record.getMessage()] == []


def _workbook() -> bytes:
    """A zip archive with a worksheet's XML, as an .xlsx is: what a user picks instead of the CSV export."""
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as workbook:
        workbook.writestr("xl/worksheets/sheet1.xml", "<worksheet><sheetData/></worksheet>")
    return archive.getvalue()


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"", "empty"),
        (b"OSEBuildingID,PrimaryPropertyType,PropertyGFATotal,YearBuilt\n", "no rows"),
        (b"name,colour\nfoo,blue\n", "missing required column"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00", "a binary file (or UTF-16 without a byte-order mark)"),
        (_workbook(), "an Excel workbook or other zip archive, not a CSV"),
        (
            b'PrimaryPropertyType,PropertyGFATotal,YearBuilt\n"Hotel,1000,1990\nOffice,"2000,1980\n',
            "spanning several lines",
        ),
    ],
    ids=["empty", "header-only", "wrong-columns", "binary", "workbook", "broken-quotes"],
)
def test_batch_reports_a_malformed_file(dashboard_env: TrainingResult, payload: bytes, reason: str) -> None:
    app = open_page("Batch")
    app.file_uploader(key="upload").upload("buildings.csv", payload, "text/csv")
    app.run()
    assert texts(app.exception) == []
    assert len(app.error) == 1
    assert reason in texts(app.error)[0]
    assert app.dataframe == []


def test_batch_refuses_a_file_over_the_size_cap(dashboard_env: TrainingResult, app_config: Callable[..., None]) -> None:
    app_config(BE_DASHBOARD__MAX_UPLOAD_MB="1")
    app = open_page("Batch")
    header = b"PrimaryPropertyType,PropertyGFATotal,YearBuilt\n"
    payload = header + b"Hotel,50000,1990\n" * (1024 * 1024 // 17 + 1)
    app.file_uploader(key="upload").upload("big.csv", payload, "text/csv")
    app.run()
    assert texts(app.exception) == []
    assert any("upload limit" in text for text in texts(app.error))


@pytest.mark.parametrize("page", ["Predict", "Batch", "Model"])
def test_missing_model_says_how_to_train_one(
    page: str, data_path: Path, tmp_path: Path, app_config: Callable[..., None]
) -> None:
    absent = tmp_path / "nowhere" / "model.joblib"
    app_config(BE_DASHBOARD__MODEL_SOURCE=str(absent), BE_PATHS__DATA=str(data_path))
    app = open_page(page)
    assert texts(app.exception) == []
    assert any(str(absent) in text for text in texts(app.error))
    assert any("make train" in text and "building-energy train" in text for text in texts(app.info))


def test_an_altered_model_is_reported_as_refused_not_missing(
    trained: TrainingResult, data_path: Path, tmp_path: Path, app_config: Callable[..., None]
) -> None:
    folder = tmp_path / "artifacts"
    folder.mkdir()
    for name in ("model.joblib", "model.joblib.sha256"):
        (folder / name).write_bytes((trained.model_path.parent / name).read_bytes())
    with (folder / "model.joblib").open("ab") as model:
        model.write(b"\0")
    app_config(BE_DASHBOARD__MODEL_SOURCE=str(folder / "model.joblib"), BE_PATHS__DATA=str(data_path))
    app = open_page("Predict")
    assert texts(app.exception) == []
    assert any("was refused" in text and "does not match" in text for text in texts(app.error)), texts(app.error)
    # Retraining over it would hide that the file changed: the hint is to find out how, not "make train".
    assert not any("make train" in text for text in texts(app.info))


def test_data_page_needs_no_model(data_path: Path, tmp_path: Path, app_config: Callable[..., None]) -> None:
    app_config(BE_DASHBOARD__MODEL_SOURCE=str(tmp_path / "none.joblib"), BE_PATHS__DATA=str(data_path))
    app = open_page("Data")
    assert texts(app.exception) == [] and texts(app.error) == []
    assert len(app.get("vega_lite_chart")) == 4


def test_data_page_shows_the_models_training_file(
    trained: TrainingResult, data_path: Path, tmp_path: Path, app_config: Callable[..., None]
) -> None:
    """Started away from the configured data (another folder, say), the page reads the file the model records."""
    app_config(BE_DASHBOARD__MODEL_SOURCE=str(trained.model_path), BE_PATHS__DATA=str(tmp_path / "absent.csv"))
    app = open_page("Data")
    assert texts(app.exception) == [] and texts(app.error) == []
    assert str(data_path) in app.caption[0].value
    assert len(app.get("vega_lite_chart")) == 4


@pytest.mark.integration
def test_model_from_the_registry(
    trained: TrainingResult, data_path: Path, tmp_path: Path, app_config: Callable[..., None]
) -> None:
    """A ``models:/`` URI goes through the same ``load_model``: the session model, registered in a real store."""
    uri = sqlite_uri(tmp_path / "store")
    _, test_rows = recorded_split(trained.metadata, data_path, get_config())
    inputs = prepare_xy(test_rows, TARGET_COLUMNS[trained.metadata["target"]])[0]
    tracked = track_training(copy_of(trained, tmp_path / "artifacts"), inputs, tracking_uri=uri)
    tracking = get_config().tracking
    source = f"models:/{tracking.registered_model}/{tracked.model_version}"
    app_config(MLFLOW_TRACKING_URI=uri, BE_DASHBOARD__MODEL_SOURCE=source, BE_PATHS__DATA=str(data_path))

    app = open_page("Model")
    assert texts(app.exception) == [] and texts(app.error) == []
    assert source in texts(app.markdown)[0]
    assert metric(app, "MAPE") == f"{trained.metadata['metrics']['test']['mape']:.3f}"
    assert len(app.get("vega_lite_chart")) == 4


def _batch_with_a_file_lacking_a_column(raw_buildings: pd.DataFrame) -> AppTest:
    """The Batch page after uploading five City rows without ``LargestPropertyUseTypeGFA`` as renamed.csv."""
    rows = raw_buildings.loc[raw_buildings["BuildingType"] == "NonResidential"].head(5)
    payload = rows.drop(columns="LargestPropertyUseTypeGFA").to_csv(index=False).encode()
    app = open_page("Batch")
    app.file_uploader(key="upload").upload("renamed.csv", payload, "text/csv")
    return app.run()


def test_batch_refuses_a_file_without_a_column_the_model_reads_until_allowed(
    dashboard_env: TrainingResult, raw_buildings: pd.DataFrame
) -> None:
    app = _batch_with_a_file_lacking_a_column(raw_buildings)
    assert texts(app.exception) == [] and texts(app.success) == []
    (error,) = texts(app.error)
    assert error.startswith("This file cannot be scored: renamed.csv: no column for ['LargestPropertyUseTypeGFA']")
    assert error.endswith("or allow absent columns (tick the box above).")
    app.checkbox(key="allow_absent").check().run()
    assert texts(app.error) == []
    assert texts(app.success) == ["5 of 5 rows scored, 0 could not be."]


def test_an_uploaded_file_and_its_result_are_still_there_after_another_page(
    dashboard_env: TrainingResult, raw_buildings: pd.DataFrame
) -> None:
    app = _batch_with_a_file_lacking_a_column(raw_buildings)
    app.checkbox(key="allow_absent").check().run()
    scored = app.dataframe[0].value

    app.switch_page(PAGES["Data"]).run()
    app.switch_page(PAGES["Batch"]).run()
    assert texts(app.exception) == [] and texts(app.error) == []
    assert any("`renamed.csv`" in text for text in texts(app.info))
    assert app.checkbox(key="allow_absent").value  # the choice it was scored with
    pd.testing.assert_frame_equal(app.dataframe[0].value, scored)
    app.run()  # any rerun (a download, the checkbox) keeps it
    assert texts(app.success) == ["5 of 5 rows scored, 0 could not be."]
    app.checkbox(key="allow_absent").uncheck().run()
    assert "no column for ['LargestPropertyUseTypeGFA']" in texts(app.error)[0]

    app.button(key="forget_upload").click().run()
    assert app.dataframe == [] and texts(app.info) == [] and texts(app.error) == []


def test_a_file_taken_out_of_the_uploader_is_forgotten(
    dashboard_env: TrainingResult, raw_buildings: pd.DataFrame
) -> None:
    payload = raw_buildings.loc[raw_buildings["BuildingType"] == "NonResidential"].head(5).to_csv(index=False).encode()
    app = open_page("Batch")
    app.file_uploader(key="upload").upload("buildings.csv", payload, "text/csv")
    app.run()
    assert texts(app.success) == ["5 of 5 rows scored, 0 could not be."]
    app.file_uploader(key="upload").clear().run()
    assert app.dataframe == [] and texts(app.info) == []
    app.switch_page(PAGES["Model"]).run()
    app.switch_page(PAGES["Batch"]).run()
    assert app.dataframe == [] and texts(app.info) == []


def test_per_square_foot_figures_keep_three_significant_digits_when_small() -> None:
    from building_energy.dashboard.analysis import per_sqft_text

    # 37 t of CO2e over 48,789 sq ft: one decimal showed it as 0.0.
    assert per_sqft_text(37 / 48_789, "metric tons CO2e") == "0.000758 metric tons CO2e/sq ft"
    assert per_sqft_text(48.04, "kBtu") == "48.0 kBtu/sq ft"
    assert per_sqft_text(1234.56, "kBtu") == "1,234.6 kBtu/sq ft"
