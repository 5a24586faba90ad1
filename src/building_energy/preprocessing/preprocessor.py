"""From raw to clean buildings: the rows and columns a model may learn from.

``raw_buildings`` (the City's CSV) -> ``clean_buildings`` (non-residential, positive target, one row per
building, meter columns kept only as the target) -> training rows without outliers.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd

from building_energy.data.columns import (
    BUILDING_ID,
    TARGET_KBTU,
    TARGET_LOG,
)
from building_energy.data.io import read_buildings_csv
from building_energy.data.schema import DataValidationError, validate_raw_buildings
from building_energy.preprocessing.categories import normalise_value

logger = logging.getLogger(__name__)


def load_raw_buildings(data_path: Path) -> pd.DataFrame:
    """Read and validate a training file; any unparseable cell or schema failure raises."""
    raw, problems = read_buildings_csv(Path(data_path))
    if problems:
        shown = "; ".join(
            f"CSV line {position + 2}: {', '.join(reasons)}" for position, reasons in sorted(problems.items())[:10]
        )
        raise DataValidationError(f"{data_path}: {len(problems)} row(s) with unreadable numbers: {shown}")
    return validate_raw_buildings(raw, for_training=True, source=str(data_path))


OUT_OF_SCOPE = "is residential: the model covers non-residential buildings only"


def _letters(value: object) -> str | None:
    """``value``'s letters, upper-cased: "Multi-family", "MultifamilyLR(1-4)" and "multifamily hr (10 +)" all
    read MULTIFAMILY..., so a hand-typed spelling is caught like the City's."""
    kind = normalise_value(value)
    return re.sub(r"[^A-Z]", "", kind.upper()) if isinstance(kind, str) else None


def _is_residential(letters: str) -> bool:
    return "MULTIFAMILY" in letters or "SINGLEFAMILY" in letters or letters == "RESIDENTIAL"


def is_residential_building_type(building_type: object) -> bool:
    """A multifamily, single-family or plain "Residential" ``BuildingType``, in any spelling. Not every type that
    mentions residents: "NonResidential", "Residential Care Facility", "Other - Lodging/Residential"."""
    return _is_residential(_letters(building_type) or "")


def is_residential_property_type(property_type: object) -> bool:
    """A multifamily, apartment, single-family or plain "Residential" ``PrimaryPropertyType``. Not "Residence
    Hall" nor "Residential Care Facility": non-residential buildings in the City's data and in Portfolio
    Manager."""
    letters = _letters(property_type) or ""
    return _is_residential(letters) or "APARTMENT" in letters


def residential_rows(building_type: pd.Series) -> np.ndarray:
    """Whether each ``BuildingType`` is residential (see ``is_residential_building_type``): the buildings the
    models leave out of training."""
    return np.array([is_residential_building_type(kind) for kind in building_type], dtype=bool)


def residential_reason(building_type: object, property_type: object) -> str | None:
    """Why a building is outside what the models estimate, or ``None``: a residential ``BuildingType``, or,
    when the building type is not given, a residential ``PrimaryPropertyType`` (a few campus and
    non-residential buildings have a multifamily property type, and say so by their building type)."""
    if _letters(building_type) is not None:
        if is_residential_building_type(building_type):
            return f"BuildingType {building_type!r} {OUT_OF_SCOPE}"
        return None
    if is_residential_property_type(property_type):
        return f"PrimaryPropertyType {property_type!r} without a BuildingType {OUT_OF_SCOPE}"
    return None


def scope_errors(raw_buildings: pd.DataFrame) -> dict[int, list[str]]:
    """Rows (by position) the models were not trained to estimate: residential buildings. Their estimates
    would look like any other, but on the City's 2016 multifamily rows they run about 1.5 times the meter."""
    absent = pd.Series(np.nan, index=raw_buildings.index, dtype=object)
    kinds = raw_buildings.get("BuildingType", absent)
    property_types = raw_buildings.get("PrimaryPropertyType", absent)
    reasons = (residential_reason(kind, prop) for kind, prop in zip(kinds, property_types, strict=True))
    return {position: [reason] for position, reason in enumerate(reasons) if reason is not None}


def preprocess_df(raw_buildings: pd.DataFrame, target: str = TARGET_KBTU) -> pd.DataFrame:
    """Keep non-residential buildings with a positive target, one row per ``OSEBuildingID``."""
    multifamily = pd.Series(residential_rows(raw_buildings["BuildingType"]), index=raw_buildings.index)
    measured = pd.to_numeric(raw_buildings[target], errors="coerce")
    # An infinite reading is no measurement: its log target would poison every fit it enters.
    measured = measured.where(np.isfinite(measured))
    keep = ~multifamily & (measured > 0)
    clean = raw_buildings.loc[keep].drop_duplicates(subset=BUILDING_ID, keep="first")
    logger.info(
        "clean_buildings: %d of %d rows (dropped %d multifamily, %d without a positive %s)",
        len(clean),
        len(raw_buildings),
        int(multifamily.sum()),
        int((~multifamily & ~(measured > 0)).sum()),
        target,
    )
    return add_log_features(clean.reset_index(drop=True), target=target)


def add_log_features(buildings: pd.DataFrame, target: str = TARGET_KBTU) -> pd.DataFrame:
    """Add the log target (``SiteEnergyUse_log`` for energy) and the log of the total floor area."""
    enriched = buildings.copy()
    log_name = TARGET_LOG if target == TARGET_KBTU else f"{target}_log"
    enriched[log_name] = np.log1p(enriched[target].astype(float))
    area = pd.to_numeric(enriched["PropertyGFATotal"], errors="coerce")
    enriched["PropertyGFATotal_log"] = np.log1p(area.where(np.isfinite(area) & (area >= 0)))
    return enriched


def remove_outliers(train_buildings: pd.DataFrame) -> pd.DataFrame:
    """Drop training rows whose reading the City flagged as a high or low outlier.

    The flag judges the meter reading, i.e. the target, so this is only ever applied to training rows.
    (A rule of our own on implausible intensity was benchmarked and did not help.)
    """
    flagged = train_buildings.get("Outlier", pd.Series(np.nan, index=train_buildings.index)).notna()
    logger.info("remove_outliers: dropped %d training rows the City flagged as outliers", int(flagged.sum()))
    return train_buildings.loc[~flagged]


def preprocess_data(data_path: Path, target: str = TARGET_KBTU) -> pd.DataFrame:
    """Read, validate and clean the City's CSV: ``clean_buildings`` ready to split."""
    raw_buildings = load_raw_buildings(data_path)
    # The schema requires the energy column; a GHG model needs its own target too.
    if target not in raw_buildings:
        raise DataValidationError(f"{data_path}: missing the target column {target!r}")
    return preprocess_df(raw_buildings, target=target)
