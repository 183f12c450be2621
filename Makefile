# The two commands a newcomer needs: `make demo` and `make test`.
SHELL := /bin/bash
# The newest Python this machine offers among 3.12 and 3.11: on 3.12 coverage counts lines
# through sys.monitoring (COVERAGE_CORE=sysmon) at almost no cost, where 3.11's tracer doubled
# the suite's time. An existing .venv is kept as it is (`make clean` builds it again).
PYTHON ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.12*/bin/python3.12 \
                                 /usr/bin/python3.12 /usr/local/bin/python3.12) python3)
VENV := .venv
# Compiled modules are kept in __pycache__ (ignored by git). A machine that sets
# PYTHONDONTWRITEBYTECODE had every test process, worker and server compile the product again and
# pytest rewrite the asserts of every test module again: about two thirds of collecting the
# suite's CPU (16 s against 5 s), paid by each of the run's dozens of processes.
unexport PYTHONDONTWRITEBYTECODE
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
TEST_POSTGRES_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test

.PHONY: demo test lint typecheck services fonts chromium bench chaos clean translations

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP) $@

demo: $(STAMP) fonts
	$(BIN)/dunwell demo

# Final demands are PDFs set in DejaVu Sans (Debian's fonts-dejavu-core).
FONT := /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf
fonts:
	@test -f $(FONT) || { echo "installing fonts-dejavu-core"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-dejavu-core; }

# Browser tests drive Debian's Chromium through Playwright (no browser download of its own).
CHROMIUM := /usr/bin/chromium
chromium:
	@test -x $(CHROMIUM) || { echo "installing chromium"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

# Redis and PostgreSQL run on this machine kind; start them if they are down.
services:
	@redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 || { \
	  echo "starting Redis"; mkdir -p /var/lib/redis /var/log/redis; \
	  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
	    --dir /var/lib/redis --logfile /var/log/redis/ci.log; sleep 1; }
	@pg_isready -h 127.0.0.1 -p 5432 >/dev/null 2>&1 || { \
	  echo "starting PostgreSQL"; \
	  pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start; \
	  for i in $$(seq 30); do pg_isready -h 127.0.0.1 -p 5432 >/dev/null 2>&1 && break; sleep 1; done; }
	@redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null && pg_isready -h 127.0.0.1 -p 5432 >/dev/null

lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports

typecheck: $(DEV_STAMP)
	$(BIN)/mypy

# The whole suite on SQLite, then every test that uses a database (marked `db`, which
# tests/conftest.py derives from the fixtures) again on PostgreSQL; three workers (pytest-xdist:
# on two cores a third fills the time the others wait on servers and sleeps),
# each with a Redis server of its own; the chaos experiment (marked `first`) starts each pass.
# The few tests marked `serial` (throughput against real processes, no database) run alone
# between the two passes; each part says how long it took and names its 15 slowest tests.
# Coverage of every pass, per package, closes the run.
TEST_WORKERS ?= 3
# worksteal: a worker that runs out of tests takes some of the other's (the browser tests are long).
PARALLEL := -n $(TEST_WORKERS) --dist worksteal
PYTEST := $(BIN)/pytest -q -p no:cacheprovider --durations=15 --cov --cov-append --cov-report=
# sys.monitoring where the venv's Python has it (3.12+), else coverage's C tracer.
COVERAGE_CORE = $(shell $(BIN)/python -c 'import sys; print("sysmon" if sys.version_info >= (3, 12) else "ctrace")' 2>/dev/null)
export COVERAGE_CORE
SQLITE := DUNWELL_TEST_DATABASE=sqlite
POSTGRES := DUNWELL_TEST_DATABASE=postgresql TEST_POSTGRES_URL=$(TEST_POSTGRES_URL)
test: $(DEV_STAMP) services fonts chromium lint typecheck
	@rm -f .coverage .coverage.*
	time $(SQLITE) $(PYTEST) $(PARALLEL) -m "not serial"
	time $(SQLITE) $(PYTEST) -m serial
	time $(POSTGRES) DUNWELL_COVERAGE_SUMMARY=1 $(PYTEST) $(PARALLEL) -m db

# Every benchmark (benchmarks/report.py says which, at what size): benchmarks/results.json
# and the table in docs/performance.md. Redis db 6 is the benchmarks' own.
bench: $(DEV_STAMP) services
	REDIS_URL=$${BENCH_REDIS_URL:-redis://127.0.0.1:6379/6} $(BIN)/python -m benchmarks.report run

# The chaos experiment at the issue's scale (1,000 writebacks over 20 organisations, 4 workers)
# on both databases, each printing its figures as one JSON line: workers killed, paused past
# their lease and on a clock minutes fast, Redis flushed and killed for a minute, PostgreSQL
# backends terminated, first syncs interrupted (benchmarks/chaos.py). Each run starts a Redis
# server of its own; PostgreSQL gets a new database, dropped at the end. `make test` runs the
# same at a small size (tests/integration/test_chaos.py).
chaos: $(DEV_STAMP) services
	DATABASE_URL= $(BIN)/python -m benchmarks.chaos
	BENCH_POSTGRES_URL=$(TEST_POSTGRES_URL) $(BIN)/python -m benchmarks.chaos --fresh-postgres

# Interface strings: extract every _() / gettext / _l / ngettext from app/ and merge them into
# the four catalogues. Translations kept; new or changed strings arrive empty (no fuzzy guesses)
# and must be translated before tests/unit/test_translations.py passes. The template is a
# by-product and is not kept.
BABEL_KEYWORDS := -k _l -k lazy_gettext -k lazy_ngettext:1,2 -k lazy_pgettext:1c,2
translations: $(STAMP)
	@mkdir -p instance
	$(BIN)/pybabel extract -F babel.cfg $(BABEL_KEYWORDS) --no-wrap --sort-by-file \
	  --project Dunwell --version 1 -o instance/messages.pot .
	$(BIN)/pybabel update -i instance/messages.pot -d app/translations -D messages --no-wrap \
	  --no-fuzzy-matching --ignore-obsolete --ignore-pot-creation-date
	@rm -f instance/messages.pot

clean:
	rm -rf $(VENV) instance .pytest_cache .ruff_cache .mypy_cache .coverage .coverage.*
