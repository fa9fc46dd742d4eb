# Leadline — `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUN := .run
UV := $(shell command -v uv 2>/dev/null || echo $(HOME)/.local/bin/uv)
MEMBERS := shared services/collector services/enricher services/crm-core deploy/local

.PHONY: help install lock up down logs status test lint typecheck unit bench \
        start-kafka stop-kafka start-postgres stop-postgres clean

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*?## "}{printf "  \033[36m%-16s\033[0m %s\n",$$1,$$2}'

$(UV):
	$(PY) -m pip install --user --quiet uv || $(PY) -m pip install --quiet --break-system-packages uv

$(BIN)/.installed: requirements.lock $(foreach m,$(MEMBERS),$(m)/pyproject.toml) | $(UV)
	test -x $(BIN)/python || $(UV) venv --quiet --python '>=3.11' $(VENV)
	$(UV) pip install --quiet --python $(BIN)/python --require-hashes -r requirements.lock
	$(UV) pip install --quiet --python $(BIN)/python --no-deps $(foreach m,$(MEMBERS),-e $(m))
	touch $@

install: $(BIN)/.installed ## create .venv with every pinned dependency and the workspace packages

lock: | $(UV) ## re-resolve dependencies into requirements.lock (hashes, no index URLs)
	$(UV) lock
	$(UV) export --frozen --all-packages --group dev --no-emit-workspace --format requirements-txt -o requirements.lock
