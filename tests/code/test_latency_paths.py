"""The fast paths of one-row prediction give exactly what the straightforward code gave."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.ensemble import HistGradientBoostingRegressor
from threadpoolctl import threadpool_info

from building_energy.models.pipeline import AREA_FEATURE, IntensityRegressor
from building_energy.preprocessing.categories import _ALIASES, normalise_category


def reference_normalise(values: pd.Series) -> pd.Series:
    """``normalise_category`` as pandas string operations (the implementation it replaced)."""
    text = values.astype("string").str.strip().str.upper()
    text = text.str.replace(r"\s+", " ", regex=True).str.replace(r"\s*/\s*", "/", regex=True)
    text = text.replace(_ALIASES)
    text = text.mask(text == "")
    return text.astype(object).where(text.notna(), np.nan)


values = st.one_of(
    st.none(),
    st.just(np.nan),
    st.text(alphabet=st.sampled_from(list("aBz /\t\n-é()\u00a0\u2003,")), max_size=12),
    st.sampled_from(["Hotel", " hotel ", "Office / Retail", "Delridge Neighborhoods", "K-12  School"]),
    st.integers(-5, 5),
    st.floats(allow_nan=True, allow_infinity=True),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(values, max_size=8))
def test_normalise_category_equals_the_pandas_string_version(items: list[object]) -> None:
    series = pd.Series(items, dtype=object, name="PrimaryPropertyType", index=range(10, 10 + len(items)))
    pd.testing.assert_series_equal(normalise_category(series), reference_normalise(series))


def test_normalise_category_equals_the_pandas_string_version_on_the_city_data(raw_buildings: pd.DataFrame) -> None:
    for column in ("BuildingType", "PrimaryPropertyType", "Neighborhood", "LargestPropertyUseType"):
        column_values = raw_buildings[column]
        pd.testing.assert_series_equal(normalise_category(column_values), reference_normalise(column_values))


def test_single_threaded_prediction_changes_no_prediction() -> None:
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(400, 5)), columns=["a", "b", "c", "d", AREA_FEATURE])
    y = X["a"] * 2 + X[AREA_FEATURE] + rng.normal(scale=0.1, size=400)
    model = IntensityRegressor(HistGradientBoostingRegressor(max_iter=30, random_state=0), monotone=False).fit(X, y)
    assert any(lib["user_api"] == "openmp" for lib in threadpool_info()), "the premise: an OpenMP runtime is loaded"
    threaded = model.estimator_.predict(X) + X[AREA_FEATURE].to_numpy()  # OpenMP threads as configured
    np.testing.assert_array_equal(model.predict(X), threaded)
    np.testing.assert_array_equal(model.predict(X.iloc[[3]]), threaded[[3]])
