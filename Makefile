# FleetUI: `make run` starts the whole system on its embedded defaults, `make test` runs the suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PUBLISHED := .published/ciderstack-0.1.1

.PHONY: install run test lint bench chromium clean

$(STAMP): pyproject.toml
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

run: install
	$(BIN)/python -m fleetui.devrun

test: install chromium
	$(BIN)/ruff check .
	$(BIN)/pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .

bench: install
	$(BIN)/python bench/sdk_throughput.py

clean:
	rm -rf $(VENV) .published var
