"""Experiment tracking and the model registry (MLflow), kept outside training so it can never break it.

- ``store``: which MLflow store (``MLFLOW_TRACKING_URI`` or config ``tracking.uri``), its experiment.
- ``runs``: one MLflow run per training (params, metrics, tags, artifacts, the logged model).
- ``registry``: versions of ``building-energy``, the ``@champion`` alias, loading ``models:/`` URIs.
- ``plots``: the evaluation plots logged with a run.
- ``record``: what ``building-energy train`` does after training: compare, plot, track, promote.
- ``ui``: the MLflow UI on the project's store.

Modules import MLflow themselves; importing this package stays cheap.
"""
