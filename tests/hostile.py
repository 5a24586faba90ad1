"""Hypothesis strategies for hostile City records: every value a column of the schema's type can hold.

Rows start from real buildings and have a few cells replaced, so most examples stay close to real input
(and exercise the model) while each cell may be missing, zero, negative, huge, NaN, infinite, empty,
an unseen category or arbitrary Unicode.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from building_energy.data.columns import (
    BUILDING_ID,
    CATEGORICAL_INPUTS,
    MODEL_INPUTS,
    NUMERIC_INPUTS,
    TARGET_KBTU,
    TEXT_INPUTS,
)


def fuzz(max_examples: int) -> settings:
    """Bounded runs with a fixed derivation (no per-run seed) and no example database: CI sees the same cases."""
    return settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


EDGE_NUMBERS = (
    math.nan,
    math.inf,
    -math.inf,
    1e308,
    -1e308,
    0.0,
    -0.0,
    -1.0,
    5e-324,
    1e-300,
    2.0**53,
    2.0**63,
)
EDGE_TEXT = (
    "",
    "   ",
    "\x00",
    "\t\n",
    "NaN",
    "None",
    "null",
    "(",
    "Hotel, (Office, Retail",
    "Bureau d'études énergétiques",
    "办公室",
    "🏢🔥",
    "\u202eOffice",  # right-to-left override
    "x" * 5000,
)


def numbers() -> st.SearchStrategy[float | None]:
    """Any float a numeric column may hold; half the draws are the awkward ones."""
    return st.one_of(
        st.sampled_from((None, *EDGE_NUMBERS)),
        st.one_of(
            st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=True),
            st.integers(-(10**9), 10**9).map(float),
        ),
    )


def texts(known: tuple[str, ...] = ()) -> st.SearchStrategy[str | None]:
    """Any text a category column may hold: edge strings, known values in odd spellings, unseen Unicode."""
    others: list[st.SearchStrategy[Any]] = [st.text(max_size=40)]
    if known:
        others.append(st.sampled_from(known).map(lambda v: f"  {v.lower()} "))
    return st.one_of(st.sampled_from((None, *EDGE_TEXT)), st.one_of(*others))


def untyped() -> st.SearchStrategy[Any]:
    """Values of the wrong type, as a JSON body or a hand-edited upload can carry them."""
    return st.one_of(
        st.sampled_from(["abc", "1,000", " 42 ", "1e3", "-", "∞", "", "True"]),
        st.booleans(),
        st.integers(-(10**20), 10**20),
    )


def cell(column: str, known: dict[str, tuple[str, ...]], *, wrong_types: bool) -> st.SearchStrategy[Any]:
    typed = numbers() if column in (*NUMERIC_INPUTS, BUILDING_ID, TARGET_KBTU) else texts(known.get(column, ()))
    return st.one_of(typed, untyped()) if wrong_types else typed


def hostile_rows(
    data: st.DataObject,
    base: pd.DataFrame,
    *,
    max_rows: int = 4,
    max_edits: int = 5,
    columns: tuple[str, ...] = (BUILDING_ID, *MODEL_INPUTS),
    wrong_types: bool = False,
) -> pd.DataFrame:
    """A frame of 1..max_rows real rows of ``base``, each with up to ``max_edits`` cells made hostile."""
    known = {c: tuple(sorted(base[c].dropna().astype(str).unique())) for c in (*CATEGORICAL_INPUTS, *TEXT_INPUTS)}
    n_rows = data.draw(st.integers(1, max_rows), label="rows")
    rows = []
    for _ in range(n_rows):
        row = base.iloc[data.draw(st.integers(0, len(base) - 1), label="base row")].to_dict()
        edited = data.draw(st.lists(st.sampled_from(columns), max_size=max_edits, unique=True), label="columns")
        for column in edited:
            row[column] = data.draw(cell(column, known, wrong_types=wrong_types), label=column)
        rows.append(row)
    frame = pd.DataFrame(rows, columns=list(base.columns))
    dropped = data.draw(st.lists(st.sampled_from(columns), max_size=2, unique=True), label="dropped columns")
    return frame.drop(columns=dropped)


def edge_grid(
    row: pd.Series, columns: tuple[str, ...] = (BUILDING_ID, *MODEL_INPUTS)
) -> tuple[pd.DataFrame, list[str]]:
    """Every single-cell edit of ``row`` by an edge value of its column's type, one row each (deterministic).

    Returns the frame and, per row, the column that was edited.
    """
    rows, edited = [], []
    for column in columns:
        values = EDGE_NUMBERS if column in (*NUMERIC_INPUTS, BUILDING_ID, TARGET_KBTU) else EDGE_TEXT
        for value in (None, *values):
            rows.append({**row.to_dict(), column: value})
            edited.append(column)
    return pd.DataFrame(rows, columns=list(row.index)), edited
