# Two commands do all set-up on a fresh machine (Python 3.11+, pip and make):
#   make demo   generate the synthetic world, backtest + fit + register the default forecaster
#   make test   run the test suite (what CI runs)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: demo test project disposition monitor lint ui clean tracking-server tracking-server-stop simulate serving-load bench serve reliability

# MLflow's usage telemetry waits for a network this machine may not have.
export MLFLOW_DISABLE_TELEMETRY ?= true

# The environment is rebuilt only when the declared or pinned dependencies change.
$(INSTALLED): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is needed (found " + sys.version.split()[0] + "); set PYTHON=python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[dev]"
	@touch $@

demo: $(INSTALLED)
	$(BIN)/python -m forecasting.generate
	$(BIN)/python -m forecasting.train

project: $(INSTALLED)
	$(BIN)/python -m forecasting.project

disposition: $(INSTALLED)
	$(BIN)/python -m disposition.train

# Safety monitoring on the committed synthetic follow-up outcomes (disposition/README.md). The demo
# stream is built to breach: exit status 3 (breach) is the expected result here, 0 would be too.
monitor: $(INSTALLED)
	$(BIN)/python -m disposition.monitor; status=$$?; [ $$status -eq 0 ] || [ $$status -eq 3 ]

# Two pytest-xdist workers, one per core: each test file runs whole on one worker (--dist loadfile,
# so a module fixture such as the team server is built once), files sharing an expensive session
# fixture go together (tests/conftest.py), and each worker's BLAS/OpenMP libraries get one thread so
# the two do not fight over the cores.
test: $(INSTALLED)
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/python -m pytest -n 2 --dist loadfile

lint: $(INSTALLED)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

ui: $(INSTALLED)
	$(BIN)/mlflow ui --backend-store-uri sqlite:///$(abspath mlruns)/mlflow.db --port 5000

# Serve a registered model over HTTP: MLflow's scoring app behind the toolkit's request guard
# (docs/serving.md, "Over HTTP" and "Errors"). The store is MLFLOW_TRACKING_URI, else mlruns/.
MODEL ?= models:/daily-demand-synthetic@champion
PORT ?= 5001
WORKERS ?= 1
serve: $(INSTALLED)
	MLFLOW_TRACKING_URI="$${MLFLOW_TRACKING_URI:-sqlite:///$(abspath mlruns)/mlflow.db}" \
		$(BIN)/python -m mlops.serve "$(MODEL)" --port $(PORT) --workers $(WORKERS)

# Team mode: MLflow on PostgreSQL with basic auth, on loopback (scripts/tracking_server.sh; docs/serving.md).
tracking-server: $(INSTALLED)
	scripts/tracking_server.sh start

tracking-server-stop:
	scripts/tracking_server.sh stop

# Reference consumer: a week of dispatch with and without the clinical hub (experiments/dispatch_simulation).
simulate: $(INSTALLED)
	$(BIN)/python -m experiments.bench benchmark=dispatch_simulation

# 5,000 requests at concurrency 16 to the served disposition model (experiments/serving_load).
serving-load: $(INSTALLED)
	$(BIN)/python -m experiments.bench benchmark=serving_load

# Issue 10's targets: bad-input corpus, malformed requests, team server -> experiments/results/reliability.md.
reliability: $(INSTALLED)
	$(BIN)/python -m experiments.bench benchmark=reliability

# Every benchmark and study, one after another: each is a Hydra run logged to the MLflow
# experiment benchmark-<name> (store: mlruns/) that rewrites experiments/results/<name>.md.
# One only: `$(BIN)/python -m experiments.bench benchmark=swast` (configs in conf/benchmark/).
# Takes hours on 2 cores (each results page records how long its own run took); run it on a quiet
# machine: wall times are part of the results. BENCHMARKS=swast runs a chosen few.
BENCH_INSTALLED := $(VENV)/.bench-installed
$(BENCH_INSTALLED): $(INSTALLED)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[dev,bench]"
	@touch $@

# Every config in conf/benchmark/, so a new benchmark cannot be left out of `make bench`.
BENCHMARKS ?= $(sort $(basename $(notdir $(wildcard conf/benchmark/*.yaml))))
bench: $(BENCH_INSTALLED)
	@for name in $(BENCHMARKS); do echo "== benchmark $$name"; \
		$(BIN)/python -m experiments.bench benchmark=$$name || exit 1; done

clean:
	rm -rf $(VENV) outputs multirun mlruns .pytest_cache
