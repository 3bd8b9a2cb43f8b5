# Morphware: the two commands a user needs.
#   make demo   set everything up (first run only) and run the embedded market demo
#   make test   set everything up (first run only) and run the test suite
# Re-running does no re-installation: each step leaves a stamp and is skipped when it is there.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
TOOLS := tools
ANVIL := $(TOOLS)/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil
TORCH_VERSION := 2.13.0
# `slow` tests (place and route, long simulations) run only when asked: PYTEST_ARGS="-m slow"
PYTEST_ARGS ?= -m "not slow"

.PHONY: demo test test-wheel setup system-tools lint bench clean-venv

demo: setup
	$(VENV)/bin/morphware demo

test: setup
	$(VENV)/bin/pytest $(PYTEST_ARGS)

# The wheel as a user installs it: built, installed into a fresh venv outside the checkout, run
# there (demo, compile, doctor, verify with and without [rtl]). Minutes, mostly pip.
test-wheel: setup
	$(VENV)/bin/pytest -m wheel

lint: setup
	$(VENV)/bin/ruff check .

bench: setup
	$(PY) -m bench

setup: $(VENV)/.stamp-project system-tools $(ANVIL)

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip setuptools wheel

# torch first: an unpinned torch pulled in by a dependency would be a multi-GB CUDA build.
# With an NVIDIA GPU present, take PyPI's CUDA build instead of a local CPU wheel.
$(VENV)/.stamp-torch: | $(PY)
	@if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then \
	  echo "GPU found: installing the CUDA build of torch $(TORCH_VERSION)"; \
	  PIP_FIND_LINKS= $(PIP) install -q torch==$(TORCH_VERSION); \
	else \
	  echo "no GPU: installing the CPU build of torch $(TORCH_VERSION)"; \
	  $(PIP) install -q torch==$(TORCH_VERSION); \
	fi
	touch $@

# Every extra that can share one venv (pynq cannot: see pyproject.toml).
# setuptools announces every editable install with a multi-line notice; it says nothing to act on.
$(VENV)/.stamp-project: pyproject.toml setup.py $(VENV)/.stamp-torch
	PYTHONWARNINGS="ignore:Editable installation" $(PIP) install -q -e '.[dev,rtl,fpga]'
	touch $@

# Icarus, Yosys, aria2 (a BitTorrent client we did not write, for interop tests) and Chromium (for
# the dashboard's browser tests) come from apt; so do the libevent and json-c headers LiteX's
# Verilator simulator links against, and libftdi1 for openFPGALoader. As root we install them,
# otherwise we say how.
system-tools:
	@missing=""; \
	for t in iverilog:iverilog yosys:yosys aria2c:aria2 chromium:chromium; do \
	  cmd=$${t%%:*}; pkg=$${t##*:}; command -v $$cmd >/dev/null 2>&1 || missing="$$missing $$pkg"; \
	done; \
	for pkg in libevent-dev libjson-c-dev libftdi1-2; do \
	  dpkg -s $$pkg >/dev/null 2>&1 || missing="$$missing $$pkg"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = "0" ]; then \
	    echo "installing from apt:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "missing system packages:$$missing"; \
	    echo "run: sudo apt-get install -y$$missing"; exit 1; \
	  fi; \
	fi

# anvil (a real Ethereum node for multi-process tests and `morphware devnet`) from the npm registry.
$(ANVIL):
	mkdir -p $(TOOLS)
	cd $(TOOLS) && npm install --silent --no-audit --no-fund @foundry-rs/anvil >/dev/null
	@test -x $(ANVIL) || { echo "anvil binary not found at $(ANVIL) after npm install"; exit 1; }

clean-venv:
	rm -rf $(VENV) $(TOOLS)
