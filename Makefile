# One command sets everything up and runs the main job (`make train`); one sets up and tests (`make test`).
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
UV_VERSION := 0.13.9
PROFILE ?= full

.PHONY: setup data train test pytest lint format lock bench clean

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
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/mypy src

pytest: data
	$(BIN)/pytest

test: lint pytest

format: setup
	$(BIN)/ruff format src tests
	$(BIN)/ruff check --fix src tests

# Re-resolve the pinned dependencies after editing pyproject.toml.
lock:
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 -o requirements.lock

bench: data
	$(BIN)/building-energy bench

clean:
	rm -rf artifacts .pytest_cache .mypy_cache .ruff_cache
