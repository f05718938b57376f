# The two commands of the README: `make run` and `make test`. Everything else helps them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000

.PHONY: run serve test fuzz concurrency bench lint format check clean screenshots host-check

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Stamp files: reinstall only when a requirements file changes.
$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@ $(VENV)/.installed

.env:
	cp .env.example .env

# In simulator mode this server is also Daraja and the callback target: tell it its own origin.
run: export MPESA_SIMULATOR_ORIGIN = http://127.0.0.1:$(PORT)
run: $(VENV)/.installed .env
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py mpesa_demo --base-url http://127.0.0.1:$(PORT)
	$(BIN)/python manage.py runserver 127.0.0.1:$(PORT)

# The production server (README, "Deployment"): refuses a DEBUG or incomplete configuration,
# then migrates, collects the static files (hashed, compressed) and runs gunicorn with
# gunicorn.conf.py. Reads the environment, or .env; never creates .env (that is make run's).
serve: $(VENV)/.installed
	$(BIN)/python scripts/serve_preflight.py
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	exec $(BIN)/gunicorn --config gunicorn.conf.py

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.installed-dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: lint
	$(BIN)/pytest -m "not fuzz and not concurrency"

# Garbage at every public URL, the API against its own schema, bodies through a real gunicorn.
fuzz: $(VENV)/.installed-dev
	$(BIN)/pytest -m fuzz

# Races with real threads; needs DATABASE_URL=postgres://... (skipped on SQLite).
concurrency: $(VENV)/.installed-dev
	$(BIN)/pytest -m concurrency

# The hot paths against bare Django baselines on gunicorn (4 sync workers) + PostgreSQL + Redis
# on loopback; prints one Markdown table (tests/perf/README.md). Creates and drops its own
# database (mpesa_bench) and empties Redis database 14. BENCH_QUICK=1 for small counts,
# BENCH_ROWS=10000,300000,1000000 for the 1M-row list figures.
bench: $(VENV)/.installed-dev
	$(BIN)/python -m tests.perf.run

check: $(VENV)/.installed-dev .env
	$(BIN)/python manage.py check
	$(BIN)/python manage.py makemigrations --check --dry-run

# The README's host-project guide on a fresh startproject: wheel, venv, migrate, one payment.
host-check: $(VENV)/.installed
	$(BIN)/python scripts/host_project_check.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

# Back-office screenshots for the README (needs Debian's chromium).
screenshots: $(VENV)/.installed-dev
	$(BIN)/python scripts/screenshots.py
