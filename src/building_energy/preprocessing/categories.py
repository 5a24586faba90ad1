"""One spelling per category: the City writes ``DOWNTOWN`` and ``Downtown``, ``Delridge`` and ``DELRIDGE``."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

_ALIASES = {"DELRIDGE NEIGHBORHOODS": "DELRIDGE"}
_SPACES = re.compile(r"\s+")
_SPACED_SLASH = re.compile(r"\s*/\s*")


def normalise_value(value: Any) -> object:
    """One category value as ``normalise_category`` spells it (NaN when missing or blank)."""
    if not isinstance(value, str) and pd.isna(value) is True:
        return np.nan
    text = _SPACED_SLASH.sub("/", _SPACES.sub(" ", str(value).strip().upper()))
    text = _ALIASES.get(text, text)
    return text if text else np.nan


def normalise_category(values: pd.Series) -> pd.Series:
    """Upper-case, trimmed, single-spaced, no spaces around '/', known aliases folded; missing stays NaN."""
    # Value by value: a handful of pandas string operations per column cost milliseconds even for the one
    # row a prediction request scores.
    return pd.Series([normalise_value(v) for v in values], index=values.index, name=values.name, dtype=object)


_USE_TYPE_SEPARATOR = re.compile(r",\s*(?![^()]*\))")


def split_use_types(listing: object) -> list[str]:
    """Split ``ListOfAllPropertyUseTypes``; commas inside parentheses belong to a use type's name."""
    if not isinstance(listing, str) or not listing.strip():
        return []
    return [part.strip() for part in _USE_TYPE_SEPARATOR.split(listing) if part.strip()]
