# Two commands on a fresh machine: `make demo` and `make test`.
# Everything is installed into ./.venv from the package registry; nothing else is needed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.kaizen-installed

# One BLAS/OpenMP thread per process: with two threads and a busy core a
# scikit-learn fit can take 100x longer (docs/configuration.md, `runtime.threads`).
export OMP_NUM_THREADS      := 1
export OPENBLAS_NUM_THREADS := 1
export MKL_NUM_THREADS      := 1
export DO_NOT_TRACK         := true
export MLFLOW_DISABLE_TELEMETRY := true
export GIT_PYTHON_REFRESH   := quiet

.PHONY: setup demo test lint clean-demo bench-service bench-backtest bench-quiet bench-state bench-cycle bench-log bench-significance bench-incidents

# constraints.txt: the versions the suite last passed with (README.md, "Two commands": how to refresh it)
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(BIN)/python experiments/demo.py
	@echo
	@echo "== kaizen log =="
	$(BIN)/kaizen log

test: setup
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check kaizen tests experiments

bench-service: setup
	$(BIN)/python experiments/bench_service.py

bench-backtest: setup
	$(BIN)/python experiments/bench_backtest.py

bench-quiet: setup
	$(BIN)/python experiments/bench_quiet.py

bench-state: setup
	$(BIN)/python experiments/bench_state.py

bench-cycle: setup
	$(BIN)/python experiments/bench_cycle.py

bench-log: setup
	$(BIN)/python experiments/bench_log.py

bench-significance: setup
	$(BIN)/python experiments/bench_significance.py

bench-incidents: setup
	$(BIN)/python experiments/bench_incidents.py

clean-demo:
	rm -rf .kaizen experiments/data
