# Lookout: `make run` starts the app, `make test` runs the tests, `make check` the quick
# checks (lint, types, the tests not marked slow). All set up everything first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8501
STAMP := $(VENV)/.installed

.PHONY: run test check setup seed lint bench clean browser

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

setup: $(STAMP)

seed: setup
	$(PY) -m analytics init-db
	$(PY) -m analytics seed --scale medium --if-empty

run: seed
	$(VENV)/bin/streamlit run app.py --server.headless true --server.port $(PORT)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy analytics ui bench

# The browser tests drive Debian's Chromium (Playwright's own download needs a network).
CHROMIUM ?= /usr/bin/chromium
browser:
	-@test -x $(CHROMIUM) || { echo "installing Debian's chromium for the browser tests"; \
	  apt-get install -y -q chromium >/dev/null 2>&1 || \
	  { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }; }

test: lint browser
	LOOKOUT_CHROMIUM=$(CHROMIUM) $(VENV)/bin/pytest -n 2 --dist loadgroup -q --durations=12

# The quick loop while working: everything `make test` runs but the tests marked slow
# (the browser, the command line in new processes, the long computations).
check: lint
	$(VENV)/bin/pytest -n 2 --dist loadgroup -q -m "not slow"

bench: setup
	$(PY) -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
