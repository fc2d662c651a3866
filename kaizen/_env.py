"""The process environment every Kaizen entry point sets before numeric libraries load.

One BLAS/OpenMP thread per process by default: a scikit-learn fit that takes 0.2 s on one
thread took 30 s with two OpenMP threads while the other core was busy (docs/configuration.md).
Telemetry of MLflow and Evidently is off. Values already set by the user win.
"""

from __future__ import annotations

import os

__all__ = ["prepare"]


def prepare(threads: int = 1) -> None:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(threads))
    os.environ.setdefault("DO_NOT_TRACK", "true")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_ENABLE_PROACTIVE_TRACE_PROCESSING", "false")
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
