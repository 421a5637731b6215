# fdawatch: `make demo` and `make test` work on a fresh clone with only python3 and make.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: setup demo test lint run clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)  ## create .venv and install fdawatch with its test tools

demo: $(STAMP)  ## the whole pipeline on recorded sources served from loopback
	$(BIN)/python -m monitor.demo

test: $(STAMP)  ## lint, then the whole test suite (offline)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .

run: $(STAMP)  ## one monitoring pass against the live sources, then send alerts
	$(BIN)/fdawatch crawl --all

clean:
	rm -rf var/demo var/test-artifacts
