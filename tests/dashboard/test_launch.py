"""How `building-energy dashboard` starts streamlit, and the pure helpers of the pages (no model needed)."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from building_energy.cli import build_parser
from building_energy.config import get_config
from building_energy.dashboard import APP_FILE, analysis
from building_energy.dashboard.launch import MODEL_SOURCE_ENV, dashboard_environment, streamlit_command
from building_energy.data.columns import MODEL_INPUTS, NUMERIC_INPUTS


def _option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def test_dashboard_subcommand_parses_its_options() -> None:
    args = build_parser().parse_args(["dashboard", "--model", "models:/building-energy@champion", "--port", "9123"])
    assert args.handler.__name__ == "_dashboard"
    assert (args.model, args.port, args.address) == ("models:/building-energy@champion", 9123, None)


def test_streamlit_command_serves_the_app_headless_without_usage_stats() -> None:
    command = streamlit_command("127.0.0.1", 9123, 7)
    assert command[1:5] == ["-m", "streamlit", "run", str(APP_FILE)]
    assert APP_FILE.is_file()
    assert _option(command, "--server.address") == "127.0.0.1"
    assert _option(command, "--server.port") == "9123"
    assert _option(command, "--server.headless") == "true"
    assert _option(command, "--browser.gatherUsageStats") == "false"
    assert _option(command, "--server.maxUploadSize") == "7"


def test_dashboard_on_a_port_in_use_exits_2_with_one_line_naming_it(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = int(holder.getsockname()[1])
        result = subprocess.run(
            [sys.executable, "-m", "building_energy.cli", "dashboard", "--address", "127.0.0.1", "--port", str(port)],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=300,
            check=False,
        )
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: cannot listen on 127.0.0.1:{port}: the port is already in use; stop what listens there or "
        "choose another --port"
    )


def test_amounts_keep_three_significant_digits_below_a_hundred() -> None:
    # A small building emits a fraction of a ton of CO2e: no decimals showed it as 0, its range as "0 – 1".
    assert analysis.amount_text(0.0421, "metric tons CO2e") == "0.0421 metric tons CO2e"
    assert analysis.amount_text(7_138_112.1, "kBtu") == "7,138,112 kBtu"
    assert analysis.range_text(0.0, 1.234, "metric tons CO2e") == "0 – 1.23 metric tons CO2e"


def test_model_source_reaches_the_app_through_its_environment() -> None:
    assert dashboard_environment("models:/m/1", base={})[MODEL_SOURCE_ENV] == "models:/m/1"
    assert MODEL_SOURCE_ENV not in dashboard_environment(None, base={})


def test_default_model_source_is_the_one_make_train_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MODEL_SOURCE_ENV, raising=False)
    get_config.cache_clear()
    try:
        config = get_config()
        expected = str(config.paths.artifacts / "model.joblib")
        assert analysis.model_source(config) == expected
    finally:
        get_config.cache_clear()


def test_category_choices_fold_the_citys_spellings() -> None:
    values = pd.Series(["DOWNTOWN", "Downtown", "DOWNTOWN", "Ballard", None, "  ballard "])
    choices = analysis.category_choices(values)
    assert choices == {"BALLARD": "Ballard", "DOWNTOWN": "DOWNTOWN"}
    assert analysis.display_category("downtown", choices) == "DOWNTOWN"
    assert analysis.display_category(np.nan, choices) is None


def test_building_row_is_one_city_record_with_typed_columns() -> None:
    base = pd.Series({"PrimaryPropertyType": "Hotel", "YearBuilt": 1950.0, "PropertyName": "not an input"})
    row = analysis.building_row({"YearBuilt": 1990, "PropertyGFATotal": 5000}, base)
    assert list(row.columns) == list(MODEL_INPUTS)
    assert len(row) == 1
    assert all(row[c].dtype == "float64" for c in NUMERIC_INPUTS)
    assert row["YearBuilt"].iloc[0] == 1990.0
    assert row["PrimaryPropertyType"].iloc[0] == "Hotel"
    assert row["Neighborhood"].iloc[0] is None
    with pytest.raises(ValueError, match="SiteEnergyUse"):
        analysis.building_row({"SiteEnergyUse(kBtu)": 1.0})


def test_interval_is_shown_only_when_predictions_carry_one() -> None:
    point = pd.DataFrame({"predicted_site_energy_kbtu": [10.0], "error": [""]})
    assert analysis.predicted_value(point) == 10.0
    assert analysis.prediction_interval(point) is None
    bounded = point.assign(lower_kbtu=[5.0], upper_kbtu=[20.0])
    assert analysis.prediction_interval(bounded) == (5.0, 20.0)
    assert analysis.prediction_interval(bounded.assign(lower_kbtu=[np.nan])) is None


def test_filter_view_keeps_everything_when_nothing_is_chosen() -> None:
    view = pd.DataFrame({"property_type": ["Hotel", "Office", "Hotel"], "neighborhood": ["A", "B", "B"]})
    assert len(analysis.filter_view(view, [], [])) == 3
    assert analysis.filter_view(view, ["Hotel"], ["B"]).index.tolist() == [2]
