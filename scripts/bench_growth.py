"""How often a building's estimate falls when it gains floor area: ``make bench-growth``.

For every clean building of the City's file, adds a share of its total floor area in four ways and scores it
again with the saved model: every area field scaled (a larger twin, the growth the model is monotone in),
a use the building does not list (total and building(s) areas), more of its largest use (those and the
largest use's area), and parking (total and parking areas). Prints, per growth, how many estimates fell and
by how much at worst. Exit code 0: this measures, it does not judge.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from building_energy.config import get_config
from building_energy.models.artifacts import MODEL_FILE
from building_energy.models.loading import load_model
from building_energy.models.predict import ERROR_COLUMN, GHG_COLUMNS, PREDICTION_COLUMN, predict_frame
from building_energy.preprocessing.preprocessor import preprocess_data

AREA_FIELDS = (
    "PropertyGFATotal",
    "PropertyGFABuilding(s)",
    "PropertyGFAParking",
    "LargestPropertyUseTypeGFA",
    "SecondLargestPropertyUseTypeGFA",
    "ThirdLargestPropertyUseTypeGFA",
)
GROWTHS: dict[str, tuple[str, ...]] = {
    "every area field scaled": AREA_FIELDS,
    "a use it does not list": ("PropertyGFATotal", "PropertyGFABuilding(s)"),
    "more of its largest use": ("PropertyGFATotal", "PropertyGFABuilding(s)", "LargestPropertyUseTypeGFA"),
    "parking": ("PropertyGFATotal", "PropertyGFAParking"),
}


def grown(buildings: pd.DataFrame, growth: str, fraction: float) -> pd.DataFrame:
    """``buildings`` with ``fraction`` of each one's total floor area added the way ``growth`` says."""
    added = buildings["PropertyGFATotal"] * fraction
    if growth == "every area field scaled":
        return buildings.assign(**{field: buildings[field] * (1 + fraction) for field in AREA_FIELDS})
    # An area the record does not give stays unknown: growth does not make it known.
    return buildings.assign(**{field: buildings[field] + added for field in GROWTHS[growth]})


def measure(model_path: Path, data_path: Path, fractions: Sequence[float]) -> pd.DataFrame:
    """One row per (fraction, growth): buildings scored both ways, how many fell, the worst relative change."""
    model = load_model(model_path)
    # A greenhouse-gas model names its estimate after its unit.
    estimate = GHG_COLUMNS[PREDICTION_COLUMN] if model.metadata.get("target") == "ghg" else PREDICTION_COLUMN
    buildings = preprocess_data(data_path).reset_index(drop=True)
    before = predict_frame(model, buildings)
    rows = []
    for fraction in fractions:
        for growth in GROWTHS:
            after = predict_frame(model, grown(buildings, growth, fraction))
            scored = ((before[ERROR_COLUMN] == "") & (after[ERROR_COLUMN] == "")).to_numpy()
            change = (after[estimate] / before[estimate] - 1).to_numpy()[scored]
            rows.append(
                {
                    "added": f"{fraction:.0%}",
                    "growth": growth,
                    "buildings": int(scored.sum()),
                    "fell": int((change < 0).sum()),
                    "worst": f"{change.min():+.1%}",
                    "median": f"{np.median(change):+.1%}",
                }
            )
    return pd.DataFrame(rows)


def main(argv: Sequence[str] | None = None) -> int:
    config = get_config()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=config.paths.artifacts / MODEL_FILE)
    parser.add_argument("--data", type=Path, default=config.paths.data)
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.01, 0.1, 0.5])
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    print(measure(args.model, args.data, args.fractions).to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
