"""Build a challenger: featuretools DFS features, an Optuna search, one packaged MLflow model.

- :mod:`kaizen.challenger.families` — the model families, one module each (search space, estimator).
- :mod:`kaizen.challenger.features` — DFS on the raw rows and their related tables (cutoff times); the same
  features on new rows.
- :mod:`kaizen.challenger.search` — :func:`build_challenger`: search, refit, artifacts on disk;
  :func:`refit`: a finished build's recipe fit again on more rows.
- :mod:`kaizen.challenger.model` — :class:`KaizenModel` (the pyfunc) and :func:`save_pipeline`.
- :mod:`kaizen.challenger.portable` — the fitted pipeline as ONNX, with its parity check on onnxruntime.
- :mod:`kaizen.challenger.register` — build (or refit), log (model, reference rows, ONNX) and register.

Importing this package is cheap: pandas, featuretools, Optuna, scikit-learn and MLflow load only
when a function needs them. The public names below resolve on first access (the policy reader
imports :mod:`kaizen.challenger.families`, and ``kaizen status`` reads policies).
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["BuildResult", "FeatureSet", "KaizenModel", "Predictor", "build_challenger", "save_pipeline",
           "predict_frame", "refit"]

_WHERE = {"FeatureSet": "features", "BuildResult": "search", "build_challenger": "search", "refit": "search",
          "KaizenModel": "model", "Predictor": "model", "save_pipeline": "model", "predict_frame": "model"}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
