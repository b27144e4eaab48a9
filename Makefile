# The project's task vocabulary: the README, CI and developers call these.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
export MLFLOW_TRACKING_URI ?= sqlite:///$(CURDIR)/mlruns/mlflow.db
export PYSPARK_PYTHON := $(CURDIR)/$(BIN)/python
# OpenMP threads (XGBoost's) wait passively: spinning, they starve whatever else runs on a busy 2-core
# machine, the service and UI beside a training or the suite's two workers (docs/operations.md)
export OMP_WAIT_POLICY ?= PASSIVE
# `mlflow run --env-manager local` runs `python` from PATH: the project's venv
export PATH := $(CURDIR)/$(BIN):$(PATH)
MLFLOW_RUN := $(BIN)/mlflow run . --env-manager local --experiment-name credit-risk

.PHONY: setup setup-dev up bootstrap train promote rollback history serve ui monitor performance batch config test lint format bench soak clean

setup: $(VENV)/.runtime-installed

# --no-compile: pip byte-compiles every module of every package one at a time, half of its time;
# COMPILE does it on both cores instead (scripts/byte_compile.py: what `python -m compileall -j 0` does,
# in large batches). It must be done: where PYTHONDONTWRITEBYTECODE is set (as in some shells and CI
# images) Python never writes the bytecode it compiles, and every process started from that shell (the
# service, each job) would compile MLflow, pandas and the rest again at its start (docs/operations.md;
# make test writes bytecode, but its first processes would still all compile at once). The packages'
# own test folders (a fifth of their modules, never imported here) are left out.
PIP_INSTALL := $(BIN)/python -m pip install --quiet --disable-pip-version-check --no-compile
# A new venv has the pip its Python shipped (3.11's: 23.2), whose resolver takes 50 s to match our pins
# against the index; this one takes 15 s (docs/operations.md). Installed first, pinned like the rest.
PIP_VERSION := 26.3
COMPILE := $(BIN)/python scripts/byte_compile.py
COMPILE_PACKAGES := $(COMPILE) $$($(BIN)/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")

$(VENV)/.runtime-installed: requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) pip==$(PIP_VERSION)
	$(PIP_INSTALL) -r requirements.txt
	$(COMPILE_PACKAGES)
	touch $@

setup-dev: $(VENV)/.dev-installed
	bash scripts/install-system-deps.sh

# requirements-dev.txt names requirements.txt: one pip run and one byte-compiling set up both
$(VENV)/.dev-installed: requirements-dev.txt requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) pip==$(PIP_VERSION)
	$(PIP_INSTALL) -r requirements-dev.txt
	$(COMPILE_PACKAGES)
	touch $(VENV)/.runtime-installed $@

## First command: set up, train and promote a first model if none is in production, then serve
## the API on :8000 and the UI on :8501 (WORKERS=N for N uvicorn workers, PORT= and UI_PORT= to move them).
up: setup bootstrap
	WORKERS=$(WORKERS) PORT=$(PORT) bash scripts/run-services.sh

WORKERS ?= 1
PORT ?=

## The API alone, on serving.host:serving.port from config/model_config.yaml (127.0.0.1:8000), or PORT=.
serve: setup
	$(BIN)/python -m serving.app --workers $(WORKERS) $(if $(PORT),--port $(PORT))

UI_PORT ?= 8501
export UI_PORT

ui: setup
	$(BIN)/streamlit run ui/app.py --server.address 127.0.0.1 --server.port $(UI_PORT) \
	  --server.headless true --browser.gatherUsageStats false --client.toolbarMode viewer --client.showErrorDetails false

bootstrap: setup
	$(BIN)/python -m pipelines.history --require-alias production || \
	  ( $(MLFLOW_RUN) -e train -P search=quick && $(MLFLOW_RUN) -e promote -P reason="first model (quick search)" )

train: setup
	$(MLFLOW_RUN) -e train

promote: setup
	$(MLFLOW_RUN) -e promote $(if $(REASON),-P reason="$(REASON)")

rollback: setup
	$(MLFLOW_RUN) -e rollback $(if $(VERSION),-P version=$(VERSION)) $(if $(REASON),-P reason="$(REASON)")

history: setup
	$(BIN)/python -m pipelines.history

## Drift and health of the logged predictions; an alert is printed as a finding and recorded in the
## MLflow run (exit 0; `python -m pipelines.monitor` exits 2 on an alert, for cron and CI).
monitor: setup
	$(MLFLOW_RUN) -e monitor $(if $(START),-P start=$(START)) $(if $(END),-P end=$(END))

## Realized performance of the logged decisions against their loaded outcomes (alerts as monitor).
performance: setup
	$(MLFLOW_RUN) -e performance $(if $(START),-P start=$(START)) $(if $(END),-P end=$(END)) \
	  $(if $(MATURITY_DAYS),-P maturity_days=$(MATURITY_DAYS)) $(if $(AS_OF),-P as_of=$(AS_OF))

## make batch INPUT=applicants.parquet OUTPUT=scored.parquet [ENGINE=spark] [MODEL=production|N]
batch: setup
	$(MLFLOW_RUN) -e batch_score -P input=$(INPUT) -P output=$(OUTPUT) $(if $(ENGINE),-P engine=$(ENGINE)) \
	  $(if $(MODEL),-P model=$(MODEL))

## The effective configuration, key by key, with where each value came from (file:line, default,
## env); CONFIG_DIR=... for another folder (default: CREDIT_RISK_CONFIG_DIR, else config/).
config: setup
	$(BIN)/python -m credit_risk.config --show $(if $(CONFIG_DIR),--config-dir $(CONFIG_DIR))

## Second command: set up (with test extras and system packages) and run the whole suite: first on four
## workers over both cores (pytest-xdist: most tests wait on services and subprocesses, so four keep two
## cores busier than two do; the groups that must not run at once are in tests/conftest.py), then the tests
## that time answers or run load (marked alone) by themselves. TEST_WORKERS=0 runs the first part in
## one process. Both parts always run; the exit status is the first failure's. The session's models are
## trained once, in a folder both parts share (CREDIT_RISK_TEST_SHARED_DIR, removed at the end). The suite
## writes bytecode even where PYTHONDONTWRITEBYTECODE is set: pytest then keeps its assertion rewrites of the
## test modules and of its plugins' packages (Hypothesis, Schemathesis), and the pytest processes after the
## first (the tests that run alone, the next make test) do not redo them (5 s of CPU each).
TEST_WORKERS ?= 4

test: setup-dev
	$(COMPILE) credit_risk serving pipelines ui bench
	unset PYTHONDONTWRITEBYTECODE; status=0; shared=$$(mktemp -d); export CREDIT_RISK_TEST_SHARED_DIR=$$shared; \
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile -m "not alone" --durations=25 || status=$$?; \
	$(BIN)/python -m pytest -m alone --durations=10 || { s=$$?; [ $$status -ne 0 ] || status=$$s; }; \
	rm -rf $$shared; exit $$status

lint: setup-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: setup-dev
	$(BIN)/python -m bench.training
	$(BIN)/python -m bench.http_bench
	$(BIN)/python -m bench.log_bench
	$(BIN)/python -m bench.batch_bench
	$(BIN)/python -m bench.monitor_bench
	$(BIN)/python -m bench.performance_bench
	$(BIN)/python -m bench.recourse_bench
	$(BIN)/python -m bench.start_bench

## A 10-minute soak: load, alias moves, a restart (not part of CI).
soak: setup-dev
	$(BIN)/python -m bench.soak --minutes 10

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
