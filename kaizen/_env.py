"""The process environment every Kaizen entry point sets before numeric libraries load.

One BLAS/OpenMP thread per process by default: a scikit-learn fit that takes 0.2 s on one
thread took 30 s with two OpenMP threads while the other core was busy (docs/configuration.md).
Telemetry of MLflow and Evidently is off. Values already set by the user win.

The known noise of the libraries (featuretools' and woodwork's warnings, numpy's on columns with
no spread, Optuna's INFO line per trial, MLflow's download progress bars) is silenced here, once,
when the process starts: warning filters and log levels are process-wide, and toggling them around
a build (``warnings.catch_warnings``) is not safe while another thread runs a cycle.
"""

from __future__ import annotations

import os
import warnings

__all__ = ["prepare"]

_QUIET = False


def prepare(threads: int = 1) -> None:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(threads))
    os.environ.setdefault("DO_NOT_TRACK", "true")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_ENABLE_PROACTIVE_TRACE_PROCESSING", "false")
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    _quiet()


def _quiet() -> None:
    """Install the filters and levels once per process (module docstring)."""
    global _QUIET
    if _QUIET:
        return
    _QUIET = True
    for module in (r"featuretools\.", r"woodwork\."):
        warnings.filterwarnings("ignore", category=FutureWarning, module=module)
        warnings.filterwarnings("ignore", category=UserWarning, module=module)  # incl. UnusedPrimitiveWarning
    # correlations of columns with NaN or no spread during feature selection
    warnings.filterwarnings("ignore", category=RuntimeWarning, module=r"numpy\.")
    # Optuna resets its logger to INFO when it first configures it (on import): the search sets WARNING right after
    # importing it (kaizen.challenger.search), always the same value, never toggled back
