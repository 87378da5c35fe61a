# Two entry points for a fresh machine (see README):  make demo   and   make test
# Each creates .venv and installs the kit and everything it needs first.
VENV ?= .venv
PY := $(VENV)/bin/python
APT_PACKAGES := g++ chromium socat gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib qemu-system-arm postgresql
# newlib (semihosting) and libstdc++ for the Cortex-M4F: files, not commands, so checked by path
M4_LIBS := /usr/lib/arm-none-eabi/newlib/thumb/v7e-m+fp/hard

.PHONY: setup sysdeps demo test bench clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3.11 -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install --upgrade -q pip
	$(PY) -m pip install -q -e ".[test]"
	touch $@

setup: $(VENV)/.installed

# System packages the tests use (C++ compiler for parity tests, Chromium for the dashboard
# browser test, socat for serial tests, the ARM toolchain + newlib + QEMU for `gesture verify`,
# the PostgreSQL server for `gesture tune --storage postgresql://`: the test starts its own on a
# private socket; Debian puts initdb/pg_ctl in /usr/lib/postgresql/N/bin, off the PATH).
# Installed only when missing and when we are root.
sysdeps:
	@missing=""; for p in g++ chromium socat arm-none-eabi-gcc arm-none-eabi-g++ qemu-system-arm; do \
	  command -v $$p >/dev/null || missing="$$missing $$p"; done; \
	for f in librdimon.a libstdc++.a; do test -f $(M4_LIBS)/$$f || missing="$$missing $$f"; done; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || missing="$$missing postgresql"; \
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
