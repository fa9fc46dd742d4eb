# Leadline — `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUN := .run
UV := $(shell command -v uv 2>/dev/null || echo $(HOME)/.local/bin/uv)
MEMBERS := shared services/collector services/enricher services/crm-core deploy/local

.PHONY: help install lock up down logs status test lint typecheck unit bench drill image vendor k8s-tools k8s-check \
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
	$(PY) deploy/docker/runtime_lock.py $(UV)

LEADLINE := $(BIN)/leadline

up: install ## start Kafka, PostgreSQL and the three services; admin token in .run/admin.token, first web login in .run/admin.login
	$(LEADLINE) up

down: ## stop everything `make up` started (no process left behind)
	-test -x $(LEADLINE) && $(LEADLINE) down

status: install ## show what is running
	$(LEADLINE) stack status

DEMO_SEED ?= 1
DEMO_SCALE ?= 1
demo: install ## fill the running stack with a month of demo data through its real endpoints (idempotent; DEMO_SEED, DEMO_SCALE)
	$(LEADLINE) demo --seed $(DEMO_SEED) --scale $(DEMO_SCALE)

logs: ## follow the services' logs
	tail -n 40 -F $(RUN)/logs/*.log

start-kafka: install ## start only the Kafka broker (rehearse outages)
	$(LEADLINE) stack start-kafka
stop-kafka: install ## stop only the Kafka broker
	$(LEADLINE) stack stop-kafka
start-postgres: install ## start only PostgreSQL
	$(LEADLINE) stack start-postgres
stop-postgres: install ## stop only PostgreSQL
	$(LEADLINE) stack stop-postgres

lint: install ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install ## mypy --strict on shared/, the services and deploy/local
	$(BIN)/mypy shared/src services/collector/src services/enricher/src services/crm-core/src deploy/local/src

unit: install ## the tests that need no broker or database
	$(BIN)/pytest -m "not integration and not e2e"

test: install lint typecheck k8s-tools ## every test (real Kafka and PostgreSQL, started by the fixtures), ruff and mypy
	$(BIN)/pytest

vendor: ## re-fetch the pinned browser libraries (deploy/vendor/assets.json) into crm-core's static/vendor and test assets
	python3 deploy/vendor/vendor.py

k8s-tools: ## build helm from the Go module proxy (once; cached in ~/.cache/leadline/k8s-tools): the chart's tests render with it
	@bash deploy/k8s-tools/build.sh helm > /dev/null

k8s-check: install ## a real kube-apiserver (etcd, kube-apiserver, kubectl built and cached like helm) dry-runs every object the chart renders; minutes the first time, not part of make test
	$(BIN)/python deploy/k8s-tools/k8s_check.py

image: ## build the container image localhost/leadline:latest with podman (Debian base made by debootstrap, cached)
	bash deploy/docker/build-image.sh

bench: install ## run the benchmarks against the real stack; figures go to docs/benchmarks.md (BENCH_ONLY=a,b: some modules)
	$(BIN)/python -m benchmarks $(if $(BENCH_ONLY),--only $(BENCH_ONLY))

drill: install ## failure drills (Kafka down, services SIGKILLed, PostgreSQL restarted, spool disk full) under load on an isolated stack in .run/drill; figures go to docs/reliability.md
	$(BIN)/python -m drills

clean: down ## remove .run/ and the venv
	rm -rf $(RUN) $(VENV)
