# Omnigate: `make run` serves the demo, `make test` passes the tests. Both set themselves up.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test test-postgres lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

## Serve GraphQL with demo data on the embedded database: http://127.0.0.1:8000/graphql
run: $(STAMP)
	$(BIN)/python -m gateway serve --demo

## The whole suite, on SQLite unless OMNIGATE_TEST_DATABASE_URL names a PostgreSQL server.
test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## The suite on the local PostgreSQL.
test-postgres: $(STAMP)
	OMNIGATE_TEST_DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/test $(BIN)/python -m pytest $(PYTEST_ARGS)

## Lint and types: ruff (rules in pyproject.toml) and mypy (strict for core, vault, policies, commerce).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy core vault policies commerce gateway schema migrations tests bench

## Benchmarks (print their figures; see bench/README.md).
bench: $(STAMP)
	$(BIN)/python bench/storefront.py
	$(BIN)/python bench/cart.py

clean:
	rm -rf $(VENV) var .pytest_cache
