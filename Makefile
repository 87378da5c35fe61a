# Two entry points for a fresh machine (see README):  make demo   and   make test
# Each creates .venv and installs the kit and everything it needs first.
VENV ?= .venv
PY := $(VENV)/bin/python
APT_PACKAGES := g++ chromium socat

.PHONY: setup sysdeps demo test bench clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3.11 -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install --upgrade -q pip
	$(PY) -m pip install -q -e ".[test]"
	touch $@

setup: $(VENV)/.installed

# System packages the tests use (C++ compiler for parity tests, Chromium for the dashboard
# browser test, socat for serial tests). Installed only when missing and when we are root.
sysdeps:
	@missing=""; for p in g++ chromium socat; do command -v $$p >/dev/null || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PACKAGES); \
	  else echo "please install:$$missing (tests that need them are skipped)"; fi; \
	fi

demo: setup
	$(VENV)/bin/gesture demo --duration 60

# ruff (lint, config in pyproject) and mypy (the core format modules) run before the tests
test: setup sysdeps
	$(PY) -m ruff check .
	$(PY) -m mypy
	$(PY) -m pytest -q

bench: setup sysdeps
	$(PY) bench/run_all.py --update-docs

clean:
	rm -rf $(VENV) build *.egg-info
