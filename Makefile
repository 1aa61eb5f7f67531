# Two commands that work on a fresh machine with only Python 3.11:
#   make demo   creates .venv, installs jopt, trains on scikit-learn's digits
#   make test   creates .venv, installs jopt with its test extras, runs the suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test test-newest-jax bench docs notebooks lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.demo-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[demo]"
	touch $@

# The test venv pins pyproject's lower bounds (.ci/oldest-supported.txt): the oldest stack a user
# may have is the one tested here; the newest is tested by test-newest-jax.
$(VENV)/.test-installed: pyproject.toml .ci/oldest-supported.txt | $(BIN)/python
	$(BIN)/pip install --quiet -c .ci/oldest-supported.txt -e ".[demo,test]"
	touch $@

demo: $(VENV)/.demo-installed
	$(BIN)/python -m jopt.demo

test: $(VENV)/.test-installed
	$(BIN)/python -m pytest -n 2 --dist worksteal -q

# The newest JAX needs Python >= 3.12: a second venv where pip resolves the newest releases
# inside pyproject's ranges, and the whole suite again on them. `.ci/run` calls this when a
# Python 3.12 exists.
PY312 ?= python3.12
VENV312 := .venv312
$(VENV312)/.test-installed: pyproject.toml
	$(PY312) -m venv $(VENV312)
	$(VENV312)/bin/python -m pip install --quiet --upgrade pip
	$(VENV312)/bin/pip install --quiet --upgrade -e ".[demo,test]"
	touch $@

test-newest-jax: $(VENV312)/.test-installed
	$(VENV312)/bin/python -c "import sys, jax; print('newest-jax leg: Python', sys.version.split()[0], 'jax', jax.__version__)"
	$(VENV312)/bin/python -m pytest -n 2 --dist worksteal -q

bench: $(VENV)/.test-installed
	$(BIN)/python -m benchmarks --out benchmarks/results

$(VENV)/.docs-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[demo,docs,tune]"
	touch $@

docs: $(VENV)/.docs-installed
	$(BIN)/sphinx-build -W --keep-going -q -b html docs docs/_build/html
	@echo "open docs/_build/html/index.html"

# Re-execute every notebook in place, storing its outputs and plots (one: ARGS=07).
notebooks: $(VENV)/.test-installed
	$(BIN)/python notebooks/_execute.py $(ARGS)

lint: $(VENV)/.test-installed
	$(BIN)/ruff format jopt tests benchmarks docs
	$(BIN)/ruff check jopt tests benchmarks docs

clean:
	rm -rf $(VENV) $(VENV312) build *.egg-info runs
