# The few verbs a newcomer needs. Every target installs what it needs first.
export UV_PYTHON_DOWNLOADS := never
UV_RUN := uv run --no-sync

.PHONY: help bootstrap run test test-fast lint mypy format bench up down clean check-deploy
.DEFAULT_GOAL := help

help:  ## this list
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-13s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

bootstrap:  ## install system packages (if missing), the Python workspace and the Kafka jars
	@./scripts/bootstrap.sh

run: bootstrap  ## the whole platform locally: real Kafka, SQLite per service, demo data
	$(UV_RUN) fabrique-stack run

test: bootstrap  ## every test suite, on the real broker, SQLite and PostgreSQL
	$(UV_RUN) pytest

test-fast: bootstrap  ## unit tests only (no broker, no database server)
	$(UV_RUN) pytest -m "not kafka and not postgres and not e2e" shared/tests/test_events.py services/inventory/tests/test_domain.py services/leasing/tests/test_eligibility.py

lint: bootstrap  ## ruff, mypy, import-linter
	$(UV_RUN) ruff check .
	$(UV_RUN) ruff format --check .
	@$(MAKE) --no-print-directory mypy
	$(UV_RUN) lint-imports

mypy:
	$(UV_RUN) mypy shared/fabkit services/inventory/inventory services/leasing/leasing services/notifications/notifications services/portal/portal

format:  ## rewrite the code in the house format (ruff)
	$(UV_RUN) ruff format .
	$(UV_RUN) ruff check --fix .

check-deploy: bootstrap  ## deployment checks: manifests, compose, dashboards and rules, metrics really exported
	$(UV_RUN) pytest tests/deploy

bench: bootstrap  ## benchmarks on the local stack; writes docs/benchmarks.md
	$(UV_RUN) python -m bench -n 3000 --repeats 3 --postgres

up:  ## docker compose (needs a Docker engine)
	docker compose up --build

down:  ## stop docker compose and drop its volumes
	docker compose down -v

clean:  ## remove run data and tool caches
	rm -rf .run .pytest_cache .mypy_cache .ruff_cache
