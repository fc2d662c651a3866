"""Build a challenger: featuretools DFS features, an Optuna search, one packaged MLflow model.

- :mod:`kaizen.challenger.features` — DFS on one table of raw rows; the same features on new rows.
- :mod:`kaizen.challenger.search` — :func:`build_challenger`: search, refit, artifacts on disk;
  :func:`refit`: a finished build's recipe fit again on more rows.
- :mod:`kaizen.challenger.model` — :class:`KaizenModel` (the pyfunc) and :func:`save_pipeline`.

Importing this package is cheap: featuretools, Optuna, scikit-learn and
MLflow load only when a function needs them. The names from
:mod:`kaizen.challenger.model` (which imports MLflow) resolve on first access.
"""

from __future__ import annotations

from typing import Any

from kaizen.challenger.features import FeatureSet
from kaizen.challenger.search import BuildResult, build_challenger, refit

__all__ = ["BuildResult", "FeatureSet", "KaizenModel", "Predictor", "build_challenger", "save_pipeline",
           "predict_frame", "refit"]

_FROM_MODEL = ("KaizenModel", "Predictor", "save_pipeline", "predict_frame")


def __getattr__(name: str) -> Any:
    if name in _FROM_MODEL:
        from kaizen.challenger import model

        return getattr(model, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
