# confer: `make run` starts the platform, `make test` runs every test. Both install what they need.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
export PIP_DISABLE_PIP_VERSION_CHECK := 1

# A C compiler for the SFU's forwarding loop (src/confer/sfu/_fanout.c, built by pip).
BUILD_DEBS := gcc
# Debian packages the test suite starts for real (databases, browser, speech synthesis).
TEST_DEBS := $(BUILD_DEBS) postgresql redis-server chromium espeak-ng sox jq curl coturn nginx-light
# The SFU benchmark runs the same load against Janus (VideoRoom) in a network namespace.
BENCH_DEBS := $(TEST_DEBS) janus iproute2 wrk

.PHONY: run install test bench deploy-local lint format system-deps-build system-deps-test system-deps-bench system-deps-deploy clean

$(PY):
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip setuptools wheel

$(STAMP): pyproject.toml setup.py src/confer/sfu/_fanout.c | $(PY)
	$(PIP) install -q -e '.[media,ai]'
	touch $@

install: system-deps-build $(STAMP)

run: install
	$(VENV)/bin/confer serve

$(TEST_STAMP): pyproject.toml setup.py src/confer/sfu/_fanout.c | $(PY)
	$(PIP) install -q -e '.[dev,media,ai]'
	touch $(STAMP) $@

system-deps-build: DEBS = $(BUILD_DEBS)
system-deps-test: DEBS = $(TEST_DEBS)
system-deps-bench: DEBS = $(BENCH_DEBS)
system-deps-deploy: DEBS = $(BUILD_DEBS) postgresql redis-server coturn nginx-light
system-deps-build system-deps-test system-deps-bench system-deps-deploy:
	@missing=""; for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != 0 ]; then echo "missing Debian packages:$$missing (run as root)"; exit 1; fi; \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

test: system-deps-test $(TEST_STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

bench: system-deps-bench $(TEST_STAMP)
	$(PY) -m bench

# The contract's topology on this box: PostgreSQL, Redis, coturn, nginx and one process per
# service (deploy/local.py).
deploy-local: system-deps-deploy $(STAMP)
	$(PY) -m deploy.local

lint: $(TEST_STAMP)
	$(VENV)/bin/ruff check src tests bench deploy
	$(VENV)/bin/ruff format --check src tests bench deploy

format: $(TEST_STAMP)
	$(VENV)/bin/ruff format src tests bench deploy
	$(VENV)/bin/ruff check --fix src tests bench deploy

clean:
	rm -rf $(VENV) data .pytest_cache
