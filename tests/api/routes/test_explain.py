"""POST /predict/explain: an estimate and its top drivers, the same as the package's own explanation."""

from __future__ import annotations

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from building_energy.models.loading import LoadedModel
from tests.api.conftest import building_payload

pytestmark = pytest.mark.slow


def test_explain_matches_the_package(client: TestClient, loaded: LoadedModel, sample_buildings: pd.DataFrame) -> None:
    row = sample_buildings.iloc[0]
    response = client.post("/predict/explain?top=3", json=building_payload(row))
    assert response.status_code == 200, response.text
    body = response.json()
    expected = loaded.explain(sample_buildings.iloc[[0]], top_k=3)[0]
    assert [d["field"] for d in body["drivers"]] == [d["field"] for d in expected]
    for got, want in zip(body["drivers"], expected, strict=True):
        assert got["factor"] == pytest.approx(want["factor"], rel=1e-6)
    assert body["prediction"]["prediction"] == pytest.approx(float(loaded.predict(sample_buildings.iloc[[0]])[0]))


def test_explain_refuses_a_bad_top(client: TestClient, sample_buildings: pd.DataFrame) -> None:
    response = client.post("/predict/explain?top=0", json=building_payload(sample_buildings.iloc[0]))
    assert response.status_code == 422
    assert "top" in response.text
