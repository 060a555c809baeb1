# Curbside: the two commands a newcomer needs.
#   make run   install, initialise the embedded database (Los Angeles pack + demo requests),
#              start the dashboard on http://localhost:8501
#   make test  install with the dev extras, run ruff, mypy and pytest, then build the wheel
#              and install and start it from a fresh venv (.ci/wheel_check.sh)

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8501
CITY ?= los_angeles

.PHONY: run test install install-dev lint typecheck pytest deps wheel-check audit bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $@ $(VENV)/.installed

install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev

run: install
	$(BIN)/dispatch --city $(CITY) init --demo
	CURBSIDE_DEMO=1 $(BIN)/streamlit run streamlit_app.py --server.headless true --server.port $(PORT) \
		--browser.gatherUsageStats false

lint: install-dev
	$(BIN)/ruff check .

typecheck: install-dev
	$(BIN)/mypy

pytest: install-dev
	$(BIN)/python -m pytest

# Installed packages agree with each other's requirements (works offline).
deps: install-dev
	$(BIN)/python -m pip check

# The wheel as a city installs it: built, installed into a fresh venv outside the checkout
# with the lowest allowed dependency versions, app and API tests run there, then
# `dispatch init --demo`, the API and the dashboard started and health-checked.
wheel-check: install-dev
	bash .ci/wheel_check.sh

# Known vulnerabilities (needs the PyPI/OSV vulnerability services; see docs/security.md).
audit: install-dev
	$(BIN)/python -m pip install --quiet pip-audit
	$(BIN)/pip-audit --skip-editable

test: lint typecheck deps pytest wheel-check

bench: install-dev
	$(BIN)/python -m bench

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
