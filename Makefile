# One command sets everything up and runs the main job (`make train`); one sets up and tests (`make test`).
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
UV_VERSION := 0.13.9
PROFILE ?= full

.PHONY: setup data train test pytest lint format lock bench clean ui compare notebook bench-api audit bench-load tune-stack

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "uv==$(UV_VERSION)"
	$(BIN)/uv pip sync --python $(BIN)/python requirements.lock
	$(BIN)/uv pip install --python $(BIN)/python --no-deps -e .
	touch $(STAMP)

setup: $(STAMP)

data: setup
	$(BIN)/building-energy fetch-data

train: data
	$(BIN)/building-energy train --profile $(PROFILE)

lint: setup
	$(BIN)/ruff check src tests scripts
	$(BIN)/ruff format --check src tests scripts
	$(BIN)/mypy src

pytest: data
	$(BIN)/pytest

test: lint audit pytest

# Known vulnerabilities of the pinned dependencies (pip-audit on requirements.lock); a vulnerability fails,
# unless scripts/pip_audit_ignore.txt lists its ID with a reason. AUDIT_STRICT=1: a package that could not
# be audited fails too.
audit: setup
	$(BIN)/python scripts/audit_deps.py $(if $(AUDIT_STRICT),--strict)

format: setup
	$(BIN)/ruff format src tests scripts
	$(BIN)/ruff check --fix src tests scripts

# Re-resolve the pinned dependencies after editing pyproject.toml.
lock:
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 -o requirements.lock

bench: data
	$(BIN)/building-energy bench --compare-energy-star --output reports/bench/folds.csv

# An Optuna study of the whole stack (CV of seed random_state on the training split, R2 log on trusted rows):
# where the `full` profile's values come from. About a minute per trial here (13 trials: 15 min); resumable;
# WORKERS=2 runs two processes on the study (each then trains on one core: no faster on this machine).
tune-stack: data
	$(BIN)/building-energy tune --learner stack $(if $(TRIALS),--trials $(TRIALS)) $(if $(WORKERS),--workers $(WORKERS))

# The prediction API over loopback HTTP: latency percentiles, throughput, errors, in-process ratios.
# Serves artifacts/model.joblib (a `fast` model is trained into a temp dir when there is none).
bench-api: data
	$(BIN)/python scripts/bench_api.py

# The API under load: 20,000 requests (single, batch of 100, malformed) at concurrency 32 against
# `building-energy serve --workers 2` on loopback; throughput, p50/p99, outcomes by kind, worker RSS growth.
# Serves artifacts/model.joblib (`make train` first). Minutes long: not part of `make test`.
bench-load: data
	$(BIN)/python scripts/bench_load.py

# The MLflow UI on the project's store (mlflow.db, or MLFLOW_TRACKING_URI): http://127.0.0.1:5000
ui: setup
	$(BIN)/building-energy ui

# Notebook prototype vs the trained model on the same split, plus the reproducibility check.
compare: data
	$(BIN)/building-energy compare

# Run the analysis notebook headless with the venv's kernel; the executed copy goes to reports/.
notebook: data
	mkdir -p reports
	cd notebooks && ../$(BIN)/jupyter-execute energy_01_analyse.ipynb --kernel_name=python3 \
		--output=../reports/energy_01_analyse

clean:
	rm -rf artifacts .pytest_cache .mypy_cache .ruff_cache
