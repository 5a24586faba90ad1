"""One spelling per category: the City writes ``DOWNTOWN`` and ``Downtown``, ``Delridge`` and ``DELRIDGE``."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

_ALIASES = {"DELRIDGE NEIGHBORHOODS": "DELRIDGE"}


def normalise_category(values: pd.Series) -> pd.Series:
    """Upper-case, trimmed, single-spaced, no spaces around '/', known aliases folded; missing stays NaN."""
    text = values.astype("string").str.strip().str.upper()
    text = text.str.replace(r"\s+", " ", regex=True).str.replace(r"\s*/\s*", "/", regex=True)
    text = text.replace(_ALIASES)
    text = text.mask(text == "")
    return text.astype(object).where(text.notna(), np.nan)


_USE_TYPE_SEPARATOR = re.compile(r",\s*(?![^()]*\))")


def split_use_types(listing: object) -> list[str]:
    """Split ``ListOfAllPropertyUseTypes``; commas inside parentheses belong to a use type's name."""
    if not isinstance(listing, str) or not listing.strip():
        return []
    return [part.strip() for part in _USE_TYPE_SEPARATOR.split(listing) if part.strip()]
