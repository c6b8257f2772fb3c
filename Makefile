# tribes — the front door. `make` alone lists the targets.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export TRIBES_DB     ?= sqlite:///var/tribes.db
export TRIBES_MODELS ?= var/models
DEMO_USERS ?= 3000
HOST ?= 127.0.0.1
PORT ?= 8000
SOAK_MINUTES ?= 5

.DEFAULT_GOAL := help
.PHONY: help install serve demo test lint format bench soak clean pg-start pg-stop

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-10s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,notebook,spark]'
	@touch $(STAMP)

install: $(STAMP) ## Create .venv and install tribes editable with its extras (quick when nothing changed)

demo: $(STAMP) ## Build the demo data (generator -> ingest) into the store if it is empty
	@mkdir -p var
	$(BIN)/tribes demo --users $(DEMO_USERS)

serve: demo ## Build the demo (data + model) if needed, then start the API on $(HOST):$(PORT)
	TRIBES_BIND=$(HOST):$(PORT) $(BIN)/gunicorn -c gunicorn.conf.py wsgi:app

test: lint ## Lint, then run the whole test suite on SQLite and PostgreSQL (server started and stopped), notebooks included
	bash scripts/java.sh
	TRIBES_NB_USERS=400 scripts/postgres.sh run $(BIN)/python -m pytest -n 2 --dist loadgroup -q tests notebooks --nbmake

pg-start: ## Start the PostgreSQL test server on 127.0.0.1:54329 (installs it if missing); stays up
	scripts/postgres.sh start
	@echo "TRIBES_TEST_PG_URL=$$(scripts/postgres.sh url)"

pg-stop: ## Stop the PostgreSQL test server
	scripts/postgres.sh stop

LINTED := tribes api tests benchmarks wsgi.py gunicorn.conf.py

lint: $(STAMP) ## ruff check and format check (`make format` fixes what it can)
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)

format: $(STAMP) ## Apply ruff formatting and safe fixes
	$(BIN)/ruff check --fix $(LINTED)
	$(BIN)/ruff format $(LINTED)

bench: $(STAMP) ## Run the benchmarks and print figures (writes benchmarks/RESULTS.md)
	$(BIN)/python -m benchmarks

soak: $(STAMP) ## Soak the API for SOAK_MINUTES (5): gunicorn on 127.0.0.1, steady load + events, memory sampled
	$(BIN)/python -m benchmarks.soak --minutes $(SOAK_MINUTES)

clean: ## Remove the virtualenv and local data (var/, the test database server's too)
	-@scripts/postgres.sh stop 2>/dev/null
	rm -rf $(VENV) var
