# Two commands a newcomer needs: `make run` and `make test`. Everything else is a convenience.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: run test lint schema bench migration audit clean-db

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Reinstall only when the dependency list changed.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/coalition db upgrade
	$(BIN)/coalition demo
	$(BIN)/coalition serve

test: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

schema: $(STAMP)
	$(BIN)/coalition schema export

bench: $(STAMP)
	$(BIN)/python bench/earn.py

audit: $(STAMP)
	$(BIN)/coalition audit

migration: $(STAMP)
	$(BIN)/alembic -c infra/alembic.ini revision --autogenerate -m "$(m)"
