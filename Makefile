# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PACKAGES := -e libs/common -e gateway -e services/intake -e services/vouchers -e services/documents -e .
STAMP := $(VENV)/.installed
ASSETS := libs/common/src/ambito_common/static/vendor/.installed

.PHONY: run test setup lint bench clean

run: setup  ## start the whole platform in embedded mode (SQLite, filesystem broker)
	$(BIN)/ambito run

test: setup  ## install what the tests need and run the whole suite
	$(BIN)/ruff check .
	$(BIN)/pytest

setup: $(STAMP) $(ASSETS)

$(STAMP): requirements.lock pyproject.toml libs/common/pyproject.toml gateway/pyproject.toml \
          services/intake/pyproject.toml services/vouchers/pyproject.toml services/documents/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -c requirements.lock -r requirements.lock $(PACKAGES)
	touch $@

$(ASSETS): package.json package-lock.json scripts/vendor_assets.py
	npm ci --no-audit --no-fund --loglevel=error
	$(BIN)/python scripts/vendor_assets.py
	touch $@

lint: setup
	$(BIN)/ruff check .

bench: setup  ## each benchmark prints a ratio against a baseline measured in the same run
	$(BIN)/python bench/bench_documents_pipeline.py
	$(BIN)/python bench/bench_vouchers_ledger.py

clean:
	rm -rf var
