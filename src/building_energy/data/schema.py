"""The declared shape of the City's data, and the checks a file must pass before it is used."""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from building_energy.data.columns import (
    BUILDING_ID,
    PREDICTION_REQUIRED,
    TARGET_KBTU,
    TRAINING_REQUIRED,
)


class DataValidationError(ValueError):
    """A data file or frame that does not fit the schema; the message names column, rows or file."""


def _number(
    low: float | None = None,
    high: float | None = None,
    *,
    low_strict: bool = False,
    whole: bool = False,
) -> pa.Column:
    checks = []
    if whole:
        checks.append(pa.Check(lambda values: values % 1 == 0, name="whole_number"))
    if low is not None:
        checks.append(pa.Check.gt(low) if low_strict else pa.Check.ge(low))
    if high is not None:
        checks.append(pa.Check.le(high))
    return pa.Column(float, checks=checks, nullable=True, required=False)


def _text() -> pa.Column:
    return pa.Column(object, nullable=True, required=False)


TOTAL_AREA = "PropertyGFATotal"
# Floor areas that are a part of the total: its building(s) and parking, and each listed use.
PART_AREAS: tuple[str, ...] = (
    "PropertyGFABuilding(s)",
    "PropertyGFAParking",
    "LargestPropertyUseTypeGFA",
    "SecondLargestPropertyUseTypeGFA",
    "ThirdLargestPropertyUseTypeGFA",
)
# The smallest building of the City's 2016 file has 11,285 sq ft. A total under a tenth of that is a typo or a
# unit slip, which the model (it learnt energy per square foot) would turn into a confident estimate for a shed.
MIN_TOTAL_AREA_SQFT = 1_000.0
# A part of the total can exceed it: the City's use areas do (a campus counting buildings its total leaves out),
# by at most 6.4 times in 2016; ten times is no longer a building but a wrong field.
MAX_USE_AREA_TO_TOTAL = 10.0
USE_AREA_CHECK = f"less_than_or_equal_to({MAX_USE_AREA_TO_TOTAL:g} x {TOTAL_AREA})"

# Ranges are what is physically plausible for a Seattle building, wide enough for every real row. Counts, years
# and the district are whole numbers, as the API types them: a file and a request must not disagree on a row.
_COLUMNS: dict[str, pa.Column] = {
    # An identifier, not a quantity: a whole number a float64 and an Int64 column both hold exactly.
    BUILDING_ID: _number(0, 2.0**53, low_strict=True, whole=True),
    "BuildingType": _text(),
    "PrimaryPropertyType": _text(),
    "Neighborhood": _text(),
    "LargestPropertyUseType": _text(),
    "SecondLargestPropertyUseType": _text(),
    "ThirdLargestPropertyUseType": _text(),
    "ListOfAllPropertyUseTypes": _text(),
    "CouncilDistrictCode": _number(1, 7, whole=True),
    "Latitude": _number(47.0, 48.5),
    "Longitude": _number(-123.0, -121.5),
    "YearBuilt": _number(1800, 2030, whole=True),
    "NumberofBuildings": _number(0, 1000, whole=True),
    "NumberofFloors": _number(0, 200, whole=True),
    TOTAL_AREA: _number(MIN_TOTAL_AREA_SQFT, 1e8, low_strict=True),
    "PropertyGFAParking": _number(0, 1e8),
    # A building has some floor area, and so has its largest use (the API says so too); parking and the
    # smaller uses may be 0.
    "PropertyGFABuilding(s)": _number(0, 1e8, low_strict=True),
    "LargestPropertyUseTypeGFA": _number(0, 1e8, low_strict=True),
    "SecondLargestPropertyUseTypeGFA": _number(0, 1e8),
    "ThirdLargestPropertyUseTypeGFA": _number(0, 1e8),
    "ENERGYSTARScore": _number(0, 100),
    TARGET_KBTU: _number(None, 1e11),
}


@functools.cache
def raw_buildings_schema(*, for_training: bool) -> pa.DataFrameSchema:
    """Schema of a raw frame: for training every required column is present and ids are unique.

    Built once per kind (scoring a row is on the API's hot path); never mutate the result.
    """
    required = TRAINING_REQUIRED if for_training else PREDICTION_REQUIRED
    columns = {}
    for name, declared in _COLUMNS.items():
        # A copy: ``set_name`` returns the declared column itself, and the training schema's ``required``
        # would otherwise leak into every prediction schema built later in the process.
        column = copy.deepcopy(declared).set_name(name)
        if name in required:
            column.required = True
            column.nullable = name not in (BUILDING_ID, "PrimaryPropertyType", TOTAL_AREA)
        columns[name] = column
    return pa.DataFrameSchema(
        columns,
        unique=[BUILDING_ID] if for_training else None,
        strict=False,
        name="raw_buildings",
    )


def _csv_lines(positions: Iterable[object], limit: int = 10) -> str:
    lines = sorted({int(p) + 2 for p in positions if isinstance(p, (int, float)) and p == p})  # noqa: PLR0124
    shown = ", ".join(str(line) for line in lines[:limit])
    more = f" and {len(lines) - limit} more" if len(lines) > limit else ""
    return f"CSV line(s) {shown}{more}" if lines else "the whole frame"


def describe_failures(failure_cases: pd.DataFrame, source: str) -> str:
    """One readable line per failed (column, check): what, where, and a few offending values."""
    messages = []
    for (column, check), cases in failure_cases.groupby(["column", "check"], dropna=False, sort=True):
        where = _csv_lines(cases["index"].tolist())
        values = ", ".join(repr(v) for v in cases["failure_case"].head(3).tolist())
        column_name = column if isinstance(column, str) else "<frame>"
        messages.append(f"column {column_name!r} fails {check} at {where} (values: {values})")
    return f"{source}: " + "; ".join(messages)


def validate_raw_buildings(frame: pd.DataFrame, *, for_training: bool, source: str = "data") -> pd.DataFrame:
    """Validate a raw frame (rows indexed by position); raise ``DataValidationError`` naming the problems."""
    missing = [c for c in (TRAINING_REQUIRED if for_training else PREDICTION_REQUIRED) if c not in frame]
    if missing:
        raise DataValidationError(f"{source}: missing required column(s) {missing}")
    validated, failures = _validate(frame, for_training=for_training)
    if len(failures):
        raise DataValidationError(describe_failures(failures, source))
    return validated


def _validate(frame: pd.DataFrame, *, for_training: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The validated frame (``frame`` itself when it fails) and every failure case: the schema's own and
    the cross-field rule's, in pandera's failure-case shape."""
    failures = use_area_failures(frame)
    try:
        return raw_buildings_schema(for_training=for_training).validate(frame, lazy=True), failures
    except SchemaErrors as errors:
        return frame, _together(errors.failure_cases, failures)


def use_area_exceeds(area: Any, total: Any) -> Any:
    """Whether a part's floor area (``PART_AREAS``) is over ``MAX_USE_AREA_TO_TOTAL`` times the total (arrays
    or numbers).

    Divided rather than the total multiplied, which could overflow; an unknown (NaN) area compares False, so
    it breaks no rule.
    """
    return area / MAX_USE_AREA_TO_TOTAL > total


def use_area_failures(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows where a part's floor area (``PART_AREAS``) is over ``MAX_USE_AREA_TO_TOTAL`` times the total, in the
    shape of pandera's failure cases (``column``, ``check``, ``failure_case``, ``index``): a column's own checks never
    see another column.

    A total outside its own bounds is not compared with, since it is already refused on its own.
    """
    rows: list[tuple[str, str, float, object]] = []
    if TOTAL_AREA in frame:
        total = pd.to_numeric(frame[TOTAL_AREA], errors="coerce").to_numpy(dtype=float)
        judged = np.isfinite(total) & (total > MIN_TOTAL_AREA_SQFT)
        for column in (c for c in PART_AREAS if c in frame):
            area = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
            for position in map(int, np.flatnonzero(judged & use_area_exceeds(area, total))):
                rows.append((column, USE_AREA_CHECK, float(area[position]), frame.index[position]))
    return pd.DataFrame(rows, columns=["column", "check", "failure_case", "index"])


def _together(*failure_cases: pd.DataFrame) -> pd.DataFrame:
    # pandas warns on concatenating an empty frame.
    return pd.concat([cases for cases in failure_cases if len(cases)] or failure_cases[:1], ignore_index=True)


def row_errors(frame: pd.DataFrame) -> dict[int, list[str]]:
    """Per-row problems of a frame to be scored: the rows a prediction cannot be made for, with why.

    Rows are keyed by position (the caller passes a frame with a RangeIndex). A required column absent
    from the frame is missing in every row.
    """
    absent = [f"{column} is missing" for column in PREDICTION_REQUIRED if column not in frame]
    problems: dict[int, list[str]] = {position: list(absent) for position in range(len(frame))} if absent else {}
    _, cases = _validate(frame, for_training=False)
    for _, case in cases.iterrows():
        index = case["index"]
        if not isinstance(index, (int, float)) or index != index:  # noqa: PLR0124 (NaN check)
            continue
        reason = (
            f"{case['column']} is missing"
            if case["check"] == "not_nullable"
            else f"{case['column']} fails {case['check']} (value {case['failure_case']!r})"
        )
        problems.setdefault(int(index), []).append(reason)
    return problems
