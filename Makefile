# VoxRelay: `make demo` runs the main job on the local stack; `make test` runs every test.
VENV ?= .venv
PY := $(VENV)/bin/python
FILE ?=

.PHONY: setup up demo test test-unit lint schema synth clean

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
	$(VENV)/bin/mypy voxrelay lambdas sfu gpu_service devstack bench cdk

schema: setup
	$(PY) -m voxrelay.protocol > schema/protocol.schema.json

synth: setup
	CDK_DISABLE_VERSION_CHECK=true CDK_DISABLE_CLI_TELEMETRY=true \
		npx --yes aws-cdk@2.1148.1 synth --no-notices --quiet

clean:
	rm -rf .run .pytest_cache .mypy_cache .ruff_cache
