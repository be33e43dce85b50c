# The two commands a new user needs: `make run` and `make test`. Each creates the virtual
# environment in .venv and installs what it needs on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8000

.PHONY: run test security lint format typecheck check openapi db-upgrade db-revision bench bench-cpu bench-parts fault clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed-run

run: $(VENV)/.installed-run
	$(BIN)/supportdesk serve --port $(PORT)

test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest

# The attack cases alone (bodies before auth, uploads, SSRF, CSV formulas, out-of-range
# instants, order of checks, the runtime role and the ledger): tests marked `security`.
security: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -m security

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.installed-dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy --strict src

check: lint typecheck
	$(BIN)/supportdesk db check

openapi: $(VENV)/.installed-dev
	$(BIN)/supportdesk openapi > openapi/openapi.json

db-upgrade: $(VENV)/.installed-run
	$(BIN)/supportdesk db upgrade

db-revision: $(VENV)/.installed-dev
	$(BIN)/alembic revision --autogenerate -m "$(m)"
	$(BIN)/ruff format migrations

# The HTTP load benchmark on PostgreSQL with wrk: seeds, serves --workers 2, prints the
# table with ratios to the two ceilings (bench/results/http.json). Under 10 minutes.
bench: $(VENV)/.installed-dev
	$(BIN)/python bench/bench_http.py

# CPU per request of each hot path, in-process through the ASGI app, as a ratio to the
# trivial endpoint (bench/results/cpu.json). PostgreSQL, 100,000 tickets, under 2 minutes;
# `--quick`, `--sqlite`, `--profile SCENARIO` by hand.
bench-cpu: $(VENV)/.installed-dev
	$(BIN)/python bench/bench_cpu.py

# The focused benchmarks: the domain core, one hot ledger account, the queue, a 1 GiB
# upload's memory and a 100,000-session statement.
bench-parts: $(VENV)/.installed-dev
	$(BIN)/python bench/bench_domain.py
	$(BIN)/python bench/bench_ledger.py
	$(BIN)/python bench/bench_queue.py
	$(BIN)/python bench/bench_upload.py
	$(BIN)/python bench/bench_statement.py

# Not part of `make test` or `make bench`: three to four minutes, on PostgreSQL. One replica
# (`serve --workers 2`), then two replicas on one database (webhooks, SLA sweep, a replica
# killed mid-delivery); both run, and the target fails if either does.
fault: $(VENV)/.installed-dev
	$(BIN)/python bench/fault.py; one=$$?; \
	$(BIN)/python bench/fault.py --replicas 2; two=$$?; \
	test $$one -eq 0 -a $$two -eq 0

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
