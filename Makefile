# One target per test tier; scripts/test is the whole suite (what CI runs).
.PHONY: test test-unit test-integration test-e2e lint bench schemas

test:
	scripts/test

test-unit:
	scripts/test tests/unit

test-integration:
	scripts/test tests/integration

test-e2e:
	scripts/test tests/e2e

lint:
	scripts/bootstrap && .venv/bin/ruff check src tests bench processors && .venv/bin/mypy && .venv/bin/lint-imports

bench:
	scripts/bootstrap && .venv/bin/python bench/run.py

schemas:
	scripts/bootstrap && .venv/bin/python -m stockflow.contract.schemas schemas
