# Two commands a newcomer needs: `make run` and `make test`. Everything else is a convenience.
# With no DATABASE_URL both use an embedded PostgreSQL under .coalition/ (started on first use,
# left running for the CLI; `.venv/bin/coalition db stop` stops it).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
BENCH ?= earn

.PHONY: run test lint schema bench migration audit clean-db

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Reinstall only when the dependency list changed.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# A developer's gateway: logs as text, GraphiQL at http://127.0.0.1:8000/graphql (either can be
# overridden: LOG_FORMAT=json make run), the member app at http://127.0.0.1:8000/app/ as the demo
# registered it. Production settings leave all three at their defaults.
# Without SMTP_URL, members' mail (activation codes) lands in .coalition/mail/; serve says so.
run: $(STAMP)
	$(BIN)/coalition db upgrade
	$(BIN)/coalition demo
	MEMBER_APP_CLIENT_ID=$${MEMBER_APP_CLIENT_ID:-$$($(BIN)/coalition demo --app-client-id)} \
	LOG_FORMAT=$${LOG_FORMAT:-text} GRAPHQL_IDE=$${GRAPHQL_IDE:-on} $(BIN)/coalition serve

test: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

schema: $(STAMP)
	$(BIN)/coalition schema export

# bench/$(BENCH).py: earn (default), worker, settlement.
bench: $(STAMP)
	$(BIN)/python bench/$(BENCH).py

audit: $(STAMP)
	$(BIN)/coalition audit

# After changing models: make migration m="what changed". Autogenerate compares the models with a
# scratch database migrated to head (on DATABASE_URL's server, or the embedded one); review the
# new file in infra/migrations/versions before committing, then `coalition db upgrade`.
migration: $(STAMP)
	@test -n "$(m)" || { echo 'usage: make migration m="what changed"'; exit 2; }
	$(BIN)/coalition db revision -m "$(m)"
	$(BIN)/ruff check --fix --quiet infra/migrations/versions
	$(BIN)/ruff format --quiet infra/migrations/versions

# Throws away the embedded dev database (not a DATABASE_URL one); the next command starts afresh.
clean-db: $(STAMP)
	env -u DATABASE_URL $(BIN)/coalition db stop
	rm -rf .coalition/pgdata
