# Two commands that work on a fresh machine with only Python 3.11:
#   make demo   creates .venv, installs jopt, trains on scikit-learn's digits
#   make test   creates .venv, installs jopt with its test extras, runs the suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test bench docs notebooks lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.demo-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[demo]"
	touch $@

$(VENV)/.test-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[demo,test]"
	touch $@

demo: $(VENV)/.demo-installed
	$(BIN)/python -m jopt.demo

test: $(VENV)/.test-installed
	$(BIN)/python -m pytest -n 2 -q

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
	rm -rf $(VENV) build *.egg-info runs
