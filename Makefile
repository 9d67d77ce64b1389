# One command each: `make demo` runs the main job, `make test` runs the tests.
# Both create their own virtual environment (.venv) with Python >= 3.11 and install the project.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# PyTorch (optional: the lstm architectures) is installed only from a local CPU wheel, never as a
# multi-GB CUDA download; without one, the lstm tests are skipped.
TORCH_WHEELS ?= /opt/wheels

.PHONY: help install demo test test-fast bench bench-peers clean

help:
	@echo "make demo   install, then run experiments/quickstart.json on the bundled data"
	@echo "make test   install with test extras, then run the whole test suite"
	@echo "make bench  install, then run the benchmarks (docs/benchmarks.md)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@if ls $(TORCH_WHEELS)/torch-*+cpu-*.whl >/dev/null 2>&1; then \
	    $(BIN)/python -m pip install --quiet --find-links $(TORCH_WHEELS) 'torch==2.13.0+cpu' \
	    || echo "torch: the local CPU wheel did not install; the lstm tests will be skipped"; \
	else echo "torch: no local CPU wheel in $(TORCH_WHEELS); the lstm tests will be skipped"; fi
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/hpt run experiments/quickstart.json --output runs

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python -m benchmarks

# Ray Tune as a peer, in an environment of its own (it is big, and no dependency of hpt)
bench-peers:
	$(PYTHON) -m venv .venv-peers
	.venv-peers/bin/python -m pip install --quiet -e '.[bench]' 'ray[tune]'
	.venv-peers/bin/python benchmarks/ray_peer.py

clean:
	rm -rf $(VENV) .venv-peers runs .pytest_cache .hypothesis
