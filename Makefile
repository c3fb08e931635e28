# VoxRelay: `make demo` runs the main job on the local stack; `make test` runs every test.
VENV ?= .venv
PY := $(VENV)/bin/python
FILE ?=

.PHONY: setup up demo test test-unit lint schema clean

setup:
	@bash scripts/bootstrap.sh

up: setup
	$(PY) -m devstack up

demo: setup
	$(PY) -m devstack demo $(if $(FILE),--file "$(FILE)")

test: setup
	$(PY) -m pytest

test-unit: setup
	$(PY) -m pytest tests/unit

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy voxrelay lambdas sfu gpu_service devstack bench

schema: setup
	$(PY) -m voxrelay.protocol > schema/protocol.schema.json

clean:
	rm -rf .run .pytest_cache .mypy_cache .ruff_cache
