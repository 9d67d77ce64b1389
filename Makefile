# One command each: `make demo` runs the main job, `make test` runs the tests.
# Both create their own virtual environment (.venv) with Python >= 3.11 and install the project.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: help install demo test test-fast bench clean

help:
	@echo "make demo   install, then run experiments/quickstart.json on the bundled data"
	@echo "make test   install with test extras, then run the whole test suite"
	@echo "make bench  install, then run the benchmarks (benchmarks/README.md)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/hpt run experiments/quickstart.json --output runs/demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

bench: $(STAMP)
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) runs .pytest_cache .hypothesis
