# skewless developer commands. `make help` lists them.
SHELL := /bin/bash
VENV := .venv/bin
PYTEST_ARGS ?=
LOCK_ARGS ?=

.PHONY: help setup lock demo test lint typecheck unit integration e2e reliability bench proto clean

help: ## List the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

setup: ## Install everything (.venv exactly as uv.lock, Delta jars); idempotent
	@scripts/setup.sh

# `make lock LOCK_ARGS=--upgrade` also moves every package to its newest allowed version.
lock: ## Refresh uv.lock from pyproject.toml
	@scripts/setup.sh --lock $(LOCK_ARGS)

demo: setup ## Set up, then run the example feature_repo end to end
	$(VENV)/python feature_repo/demo/run_demo.py

# docker-compose.yml is checked by `docker-compose config`, which needs no Docker engine.
lint: setup ## ruff (lint + format check), the gRPC stubs' drift check, docker-compose.yml's check
	$(VENV)/ruff check src tests feature_repo benchmarks
	$(VENV)/ruff format --check src tests feature_repo benchmarks
	@scripts/gen_proto.sh --check
	@command -v docker-compose >/dev/null || { echo "docker-compose is missing: make setup installs it as root, or apt-get install docker-compose"; exit 1; }
	docker-compose -f docker-compose.yml config -q

proto: setup ## Regenerate the gRPC stubs from proto/
	@scripts/gen_proto.sh

typecheck: setup ## mypy, strict on src/ and benchmarks/
	$(VENV)/mypy

test: setup lint typecheck ## Set up, then lint, type-check and run the whole test suite
	@scripts/pytest.sh tests $(PYTEST_ARGS)

unit: setup ## Unit tests only (no JVM, no network)
	@scripts/pytest.sh tests/unit $(PYTEST_ARGS)

integration: setup ## Integration tests (real Spark + Delta)
	@scripts/pytest.sh tests/integration $(PYTEST_ARGS)

e2e: setup ## End-to-end tests over feature_repo/
	@scripts/pytest.sh tests/e2e $(PYTEST_ARGS)

# `make test` runs the short variants; the report: .venv/bin/python -m benchmarks.reliability
reliability: setup ## The reliability suite's long variants (Redis killed, fuzz, kill -9...)
	@scripts/pytest.sh tests/reliability -m reliability_long $(PYTEST_ARGS)

SCALE ?= small
bench: setup ## skewless vs Feast vs the floors, one run: make bench SCALE=small|medium
	$(VENV)/python -m benchmarks.run --scale $(SCALE)

clean: ## Remove generated data (keeps .venv and the jar cache)
	rm -rf feature_repo/data benchmarks/data .pytest_cache .mypy_cache .ruff_cache .hypothesis
