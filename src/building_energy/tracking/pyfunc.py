"""The registered model as MLflow's ``python_function``: the package's own scoring behind MLflow's interface.

``mlflow.pyfunc.load_model("models:/building-energy@champion")``, ``mlflow models serve`` and Spark UDFs score
buildings exactly as ``building-energy predict`` does: the checksum-verified ``model.joblib``, each row checked
(a floor area of 0, a residential building, a use area far above the total are refused with the reason, not
given a number), and the conformal interval with every estimate.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from mlflow.pyfunc import PythonModel, PythonModelContext

from building_energy.models.loading import LoadedModel, load_model

# The names under which the run's files travel inside the logged model (``artifacts/`` of its folder).
MODEL_ARTIFACT = "model"
CHECKSUM_ARTIFACT = "model_sha256"


class ScoredBuildings(PythonModel):
    """One output row per input row, as ``predict_frame`` gives: the building's id, the estimate, its interval
    at the configured level, and the reason when the row could not be scored (blank otherwise)."""

    def load_context(self, context: PythonModelContext) -> None:
        # MLflow copies both artifacts into one folder under their own names, so the checksum sits beside the
        # model where ``load_artifact`` looks for it.
        self.loaded_: LoadedModel = load_model(Path(context.artifacts[MODEL_ARTIFACT]))

    def predict(
        self, context: PythonModelContext, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        # Imported on first use: scoring needs the data and model modules, not MLflow's logging side.
        from building_energy.models.predict import predict_frame

        # MLflow has already checked the columns against the signature, where only the fields a prediction
        # needs are required: the others may be left out, as the API allows.
        return predict_frame(self.loaded_, model_input, allow_absent_columns=True)
