# Two commands do everything on a fresh Debian 12 machine: `make demo` and `make test`.
# Both install what is missing first (system packages, then a .venv with the project in it).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SYSTEM_PACKAGES := build-essential libgmp-dev python3-dev
DATA_DIR ?= $(CURDIR)/.ehrnet-demo

.PHONY: demo test lint check install system-deps clean

demo: $(STAMP)
	$(BIN)/ehrnet demo --data-dir $(DATA_DIR)

test: lint
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

check: lint test

install: $(STAMP)

# libp2p pins fastecdsa, which compiles against GMP: the headers and a compiler must be on the machine.
system-deps:
	@bash scripts/ensure-system-deps.sh $(SYSTEM_PACKAGES)

$(STAMP): pyproject.toml | system-deps
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "ehrnet needs Python 3.11 (its contract VM depends on that ast); set PYTHON=python3.11")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

clean:
	rm -rf $(VENV) $(DATA_DIR) build *.egg-info
