"""The analysis notebook: committed without outputs, runs headless, and its prototype is the compared one."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from building_energy.config import get_config
from building_energy.data.columns import TARGET_KBTU
from building_energy.models.compare_pipelines import run_prototype
from building_energy.models.train import split_buildings
from building_energy.preprocessing.preprocessor import preprocess_data

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "energy_01_analyse.ipynb"
CELL_TIMEOUT_SECONDS = 600


def test_the_notebook_is_committed_without_outputs() -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    dirty = [i for i, c in enumerate(notebook.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
    assert dirty == [], f"cells {dirty} hold outputs: clear them (Jupyter: Edit > Clear Outputs) before committing"


@pytest.mark.slow
@pytest.mark.integration
def test_the_notebook_runs_headless_and_its_prototype_matches_the_package_split(
    data_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BE_PATHS__DATA", str(data_path))  # the kernel inherits the environment
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    # "python3" is the venv's own kernel: jupyter_client starts it with this interpreter.
    client = NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT_SECONDS,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    client.execute()

    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert not [o.text for o in outputs if o.output_type == "stream" and o.name == "stderr"]
    figures = [o for o in outputs if o.output_type == "display_data" and "image/png" in o.data]
    assert len(figures) >= 8

    tagged = next(c for c in notebook.cells if "prototype-metrics" in c.metadata.get("tags", []))
    printed = json.loads("".join(o.text for o in tagged.outputs if o.output_type == "stream"))
    train_rows, test_rows = split_buildings(preprocess_data(data_path), get_config())
    _, expected, _ = run_prototype(train_rows, test_rows, TARGET_KBTU)
    assert printed["prototype_test_metrics"] == pytest.approx(expected)
