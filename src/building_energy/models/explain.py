"""Why a building gets its estimate: SHAP contributions of the stacked pipeline, per input field.

Each base learner's contributions on log intensity (tree SHAP for the trees, ``MonotoneSVR.contributions``
for the kernel learner) are combined through the meta-learner's linear weights, the floor-area offset every
base learner adds back is credited to the floor area, and the engineered features are summed into the City's
fields a user recognises.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import shap

from building_energy.data.columns import MODEL_INPUTS
from building_energy.features.energy_star import SCORABLE_COLUMN
from building_energy.features.use_flags import FLAG_PREFIX
from building_energy.models.monotone_svr import MonotoneSVR
from building_energy.models.pipeline import AREA_FEATURE

# SimpleImputer's name for the column that says a value was missing.
MISSING_PREFIX = "missingindicator_"
# The group covers every field that places the building: it is unknown only when none of them is given.
LOCATION = "Location (neighbourhood, council district, coordinates)"
USE_TYPES = "Use types and their floor areas"
# Engineered feature -> the input field (or group of fields) it is computed from.
FIELD_OF_FEATURE = {
    "PropertyGFATotal_log": "PropertyGFATotal",
    "BuildingGFAPerFloor_log": "PropertyGFABuilding(s)",
    "ParkingShare": "PropertyGFAParking",
    "LargestUseShare": USE_TYPES,
    "SecondUseShare": USE_TYPES,
    "UseMixIntensity": USE_TYPES,
    "SurfaceCluster": USE_TYPES,
    "LargestPropertyUseType": USE_TYPES,
    "SecondLargestPropertyUseType": USE_TYPES,
    "ThirdLargestPropertyUseType": USE_TYPES,
    "LargestPropertyUseTypeGFA": USE_TYPES,
    "SecondLargestPropertyUseTypeGFA": USE_TYPES,
    "ThirdLargestPropertyUseTypeGFA": USE_TYPES,
    "NumberOfUseTypes": USE_TYPES,
    "ListOfAllPropertyUseTypes": USE_TYPES,
    # Whether EPA scores the largest use type (a model trained without the score): read from that use type.
    SCORABLE_COLUMN: USE_TYPES,
    "EnergyStarIntensity": "ENERGYSTARScore",
    "Floors_log": "NumberofFloors",
    "BuildingAge": "YearBuilt",
    "DistanceToDowntownKm": LOCATION,
    "BearingToDowntown": LOCATION,
    "LatPlusLon": LOCATION,
    "LatMinusLon": LOCATION,
    "Latitude": LOCATION,
    "Longitude": LOCATION,
    "CouncilDistrictCode": LOCATION,
    "Neighborhood": LOCATION,
}


def input_field(feature: object) -> str:
    """The input field (or group of fields) a model feature is computed from."""
    name = str(feature).removeprefix(MISSING_PREFIX)
    if name.startswith(FLAG_PREFIX):
        return USE_TYPES
    return FIELD_OF_FEATURE.get(name, name)


@dataclass
class Explanation:
    """Per row: log-scale contribution of each input field, the baseline they start from, and which fields the
    row did not give (their contribution is the effect of their being unknown)."""

    contributions: pd.DataFrame  # rows x fields, log1p(kBtu) units
    baseline: np.ndarray  # log1p(kBtu) of the reference building
    unknown: pd.DataFrame  # rows x fields, True where every City column behind the field is missing

    def top(self, row: int, k: int = 5) -> list[dict[str, float | str | bool]]:
        """The ``k`` fields that move this row's estimate most, as multiplicative factors."""
        values = self.contributions.iloc[row]
        order = values.abs().sort_values(ascending=False).index[:k]
        return [
            {
                "field": str(field),
                "contribution_log": float(values[field]),
                "factor": float(np.exp(values[field])),
                "unknown": bool(self.unknown.iloc[row][field]),
            }
            for field in order
        ]


def _missing(values: pd.Series) -> np.ndarray:
    blank = values.map(lambda value: isinstance(value, str) and not value.strip())
    return np.asarray(values.isna() | blank, dtype=bool)


def unknown_fields(raw_buildings: pd.DataFrame, fields: pd.Index) -> pd.DataFrame:
    """Per row and field: whether every City column the field is computed from is missing (or absent)."""
    unknown = pd.DataFrame(False, index=raw_buildings.index, columns=fields)
    for field in fields:
        sources = [column for column in MODEL_INPUTS if input_field(column) == field]
        if sources:
            absent = np.ones(len(raw_buildings), dtype=bool)
            missing = [_missing(raw_buildings[c]) if c in raw_buildings else absent for c in sources]
            unknown[field] = np.logical_and.reduce(missing)
    return unknown


def _meta_weights(stack: Any) -> tuple[np.ndarray, float]:
    """Linear weights of the meta-learner on each base prediction, and its intercept."""
    meta = stack.final_estimator_.estimator_
    return np.asarray(meta.coef_, dtype=float), float(meta.intercept_)


def _learner_contributions(estimator: Any, features: pd.DataFrame) -> tuple[np.ndarray, np.ndarray | float]:
    """One base learner's per-feature contributions (on log intensity) and the baseline they start from."""
    if isinstance(estimator, MonotoneSVR):
        return estimator.contributions(features)
    explainer = shap.TreeExplainer(estimator)
    return np.asarray(explainer.shap_values(features), dtype=float), float(np.ravel(explainer.expected_value)[0])


def explain(model: Any, raw_buildings: pd.DataFrame) -> Explanation:
    """SHAP contributions of every input field for each row of ``raw_buildings`` (log scale)."""
    pipeline = getattr(model, "model", model).regressor_
    preprocess, stack = pipeline[:-1], pipeline.steps[-1][1]
    features = preprocess.transform(raw_buildings)
    weights, intercept = _meta_weights(stack)

    by_feature = np.zeros(features.shape)
    baseline = np.full(len(features), intercept)
    for weight, learner in zip(weights, stack.estimators_, strict=True):
        learner_by_feature, learner_baseline = _learner_contributions(learner.estimator_, features)
        by_feature += weight * learner_by_feature
        baseline += weight * learner_baseline
    # Each learner predicts intensity and adds log floor area back: credit that to the floor area,
    # measured from the median training building (the imputer's statistic).
    imputer = preprocess.named_steps["impute"]
    area_position = list(features.columns).index(AREA_FEATURE)
    reference_area = float(imputer.statistics_[area_position])
    by_feature[:, area_position] += weights.sum() * (features[AREA_FEATURE].to_numpy() - reference_area)
    baseline += weights.sum() * reference_area

    contributions = pd.DataFrame(by_feature, columns=features.columns, index=raw_buildings.index)
    grouped = contributions.T.groupby(input_field, sort=False).sum().T
    return Explanation(grouped, baseline, unknown_fields(raw_buildings, grouped.columns))
