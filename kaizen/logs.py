"""Logging for the entry points (CLI, demo, service); library code only calls ``getLogger``.

The libraries Kaizen drives are chatty: MLflow warns on every pickled model
and prints progress bars, featuretools and woodwork warn about inferred
types. An entry point calls :func:`configure` once; importing Kaizen never
changes logging by itself.
"""

from __future__ import annotations

import logging
import os
import sys

__all__ = ["configure"]

_NOISY = ("mlflow", "alembic", "optuna", "featuretools", "woodwork", "evidently", "urllib3", "git")


def configure(level: int = logging.INFO) -> None:
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("MLFLOW_CONFIGURE_LOGGING", "false")
    root = logging.getLogger("kaizen")
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False
    for name in _NOISY:
        logging.getLogger(name).setLevel(logging.ERROR)
