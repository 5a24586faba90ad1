# One command sets everything up and runs the main job (`make train`); one sets up and tests (`make test`).
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
UV_VERSION := 0.13.9
PROFILE ?= full

.PHONY: setup data train test pytest lint format lock bench clean ui compare notebook bench-api audit bench-load bench-growth tune-stack browser postgres

# The venv and the pinned uv that installs everything else (and re-resolves the lock).
$(BIN)/uv:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "uv==$(UV_VERSION)"

$(STAMP): requirements.lock pyproject.toml $(BIN)/uv
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

# The tuning tests start a real PostgreSQL server on loopback (an Optuna study shared by a cluster).
postgres:
	@if ! command -v initdb >/dev/null && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing postgresql for the tuning tests"; \
	    apt-get update -qq </dev/null >/dev/null && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql </dev/null >/dev/null; \
	  else \
	    echo "the tuning tests need PostgreSQL's server (initdb, postgres): sudo apt-get install -y postgresql" >&2; \
	    exit 1; \
	  fi; \
	fi

pytest: data browser postgres
	$(BIN)/pytest

# The dashboard's browser test drives Debian's Chromium (a real browser, not a stand-in). Installed when
# missing if we may (root with apt-get, as CI runs); otherwise the one line saying what to install.
CHROMIUM := /usr/bin/chromium
browser:
	@if [ ! -x $(CHROMIUM) ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing chromium for the dashboard's browser test"; \
	    apt-get update -qq </dev/null >/dev/null && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium </dev/null >/dev/null; \
	  else \
	    echo "the dashboard's browser test needs $(CHROMIUM): sudo apt-get install -y chromium" >&2; exit 1; \
	  fi; \
	fi

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
lock: $(BIN)/uv
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

# How often an estimate falls when a building gains floor area, four ways (artifacts/model.joblib).
bench-growth: data
	$(BIN)/python scripts/bench_growth.py

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
