# fdawatch: `make demo` and `make test` work on a fresh clone with only python3 and make.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

CHROMIUM := /usr/bin/chromium

.PHONY: setup demo test lint run clean chromium bench soak mutate

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)  ## create .venv and install fdawatch with its test tools

demo: $(STAMP)  ## the whole pipeline on recorded sources served from loopback
	$(BIN)/python -m tests.support.demo

chromium:  ## Debian's Chromium for the browser tests (installed with apt when missing, as root)
	@test -x $(CHROMIUM) || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else \
	    echo "chromium is missing: run 'sudo apt-get install chromium' (browser tests skip without it)"; \
	  fi; }

test: $(STAMP) chromium  ## lint, then the whole test suite (offline)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .

# `make mutate`: mutation testing of the signal rules with mutmut (docs/testing.md). Not part of
# `make test` or CI. SQLite only. Each run starts afresh (a stale mutants/ keeps copies of moved or
# deleted tests); docs/testing.md says how to re-test one survivor from the last run in a minute.
MUTATE_STAMP := $(VENV)/.mutate-stamp

$(MUTATE_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test,mutate]'
	touch $(MUTATE_STAMP)

mutate: $(MUTATE_STAMP)  ## mutation score of the signal rules, target 90 % (~30 min on 2 cores)
	rm -rf mutants
	set -f; env -u FDAWATCH_TEST_POSTGRES_URL -u CI $(BIN)/mutmut run \
	  $$($(BIN)/python -m tests.support.mutation_score --scope)
	$(BIN)/python -m tests.support.mutation_score --min 90

run: $(STAMP)  ## one monitoring pass against the live sources, then send alerts
	$(BIN)/fdawatch crawl --all

clean:
	rm -rf var/demo var/test-artifacts mutants

# `make bench`: fdawatch on the loopback fixture (bench/README.md); N pages, M feeds. PEERS=1 also
# runs urlwatch and changedetection.io beside it through ../shared/bench (venvs in /tmp/benchvenvs).
N     ?= 1000
M     ?= 50
PEERS ?= 0
PEERS_HARNESS := ../shared/bench/run_peers.sh

bench: $(STAMP)  ## the benchmark: three passes, scored against the planted changes
	$(BIN)/python -m bench.run --pages $(N) --feeds $(M) $(BENCH_ARGS)
ifeq ($(PEERS),1)
	test -x /tmp/benchvenvs/cdio/bin/changedetection.io || $(PEERS_HARNESS) setup
	$(PEERS_HARNESS) --pages $(N) --feeds $(M) --tools urlwatch,cdio,fdawatch \
	  --urlwatch-filter css-main --fdawatch-dir $(CURDIR) --out $(CURDIR)/bench/results/peers
	$(BIN)/python -m bench.peers bench/results/peers
endif

# `make soak`: time-to-alert of the real daemon (`fdawatch run`) against a loopback site with
# planted edits, faults and a mail sink (bench/README.md, "Soak"); not part of `make test`.
# SOURCES pages + feeds, all at INTERVAL, for MINUTES of daemon time; SOAK_ARGS for the rest
# (`.venv/bin/python -m bench.soak --help`). The driver and the daemon run at nice 10.
SOURCES  ?= 45
MINUTES  ?= 25
INTERVAL ?= 1m

soak: $(STAMP)  ## crawls against the schedule, time-to-alert, RSS trend; report in bench/results/soak
	$(BIN)/python -m bench.soak --sources $(SOURCES) --minutes $(MINUTES) --interval $(INTERVAL) \
	  $(SOAK_ARGS)
