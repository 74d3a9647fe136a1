# FleetUI: `make run` starts the whole system on its embedded defaults, `make test` runs the suite.
#   make run  [RUN_ARGS='--web-port 8001 --sim-port 19473 --poll-interval 5']
#   make test [PYTEST_ARGS='-k nodes -x']
#   make bench [BENCH=bench/fleetsim_load.py]
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PUBLISHED := .published/ciderstack-0.1.1
RUN_ARGS ?=
PYTEST_ARGS ?=
# Modules in bench/ that other benchmarks import or start: not benchmarks themselves.
BENCH_HELPERS := bench/bench_celery.py bench/simserver.py
BENCH ?= $(filter-out $(BENCH_HELPERS) bench/_%,$(sort $(wildcard bench/*.py)))

.PHONY: install run test lint bench chromium wrk clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || { \
	  echo "FleetUI needs Python 3.11 or newer; $(PYTHON) is $$($(PYTHON) --version 2>&1). Try: make PYTHON=python3.11 ..."; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

# The published client, test-only: kept out of site-packages so it never shadows our `ciderstack`.
$(PUBLISHED)/ciderstack/__init__.py:
	$(BIN)/pip install -q --no-deps --target $(PUBLISHED) ciderstack==0.1.1

install: $(STAMP) $(PUBLISHED)/ciderstack/__init__.py

# Debian's Chromium for the browser tests (Playwright's own browser download cannot work here).
chromium:
	@test -x /usr/bin/chromium || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-dejavu-core; \
	  else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-dejavu-core; fi; }

# Migrates, starts fleetsim + Redis (if none answers) + Celery worker and beat + the web server; Ctrl-C stops all.
run: install
	$(BIN)/python -m fleetui.devrun $(RUN_ARGS)

# pytest's exit status 5 means it collected no test at all: that is a failure here, never a pass.
test: install chromium
	$(BIN)/ruff check .
	@$(BIN)/pytest $(PYTEST_ARGS); status=$$?; \
	  if [ $$status -eq 5 ]; then echo "make test: pytest collected no tests (exit 5) - failing"; fi; \
	  exit $$status

lint: install
	$(BIN)/ruff check .

# Debian's wrk, the load generator of bench/fleet_bench.py (without it a slower Python generator stands in).
wrk:
	@command -v wrk >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; \
	  else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; fi; } \
	  || echo "make bench: wrk is not installed; the Python load generator stands in"

# bench/fleet_bench.py prints the fleet-scale table (issue 6) and saves it to var/bench/last.txt.
bench: install wrk
	@test -n "$(strip $(BENCH))" || { echo "make bench: no benchmark in bench/"; exit 1; }
	@for script in $(BENCH); do echo "== $$script"; $(BIN)/python $$script || exit $$?; done

# Removes the virtualenv and everything generated, var/ included (the dev database and its keys).
clean:
	rm -rf $(VENV) .published var staticfiles
