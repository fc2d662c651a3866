"""Loading a registered model and reading its predictions one way.

A version is downloaded through the policy's :class:`~kaizen.registry.Registry` (its own client,
its own URIs) and loaded from the local folder, so loading reads no process-wide MLflow URI. A
model logged with ``code_paths`` (Kaizen's own carry the ``kaizen`` package) makes MLflow prepend
its code folder to ``sys.path``; the running process already has Kaizen, so that folder is not even
downloaded (:meth:`kaizen.registry.Registry.download_model_to_load`), and the loader puts ``sys.path`` back
as it was (a daemon loading hundreds of versions must not grow it).

Any pyfunc model that accepts the raw feature columns can be a champion.
Kaizen's own models return a frame with ``prediction`` (and ``proba``, the
positive-class probability, for classification). A model a person
registered by hand may return bare labels; when it is an sklearn model that
has ``predict_proba``, Kaizen reads the probabilities from it, otherwise the
labels stand in for scores (roc_auc of hard labels).

For multiclass classification the score is the probability of the predicted
class (Kaizen's ``proba``, or the largest of an sklearn model's
probabilities); a model that gives labels only scores 1.0 on every row (its
metrics are read from the labels).
"""

from __future__ import annotations

import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kaizen.data.predictions import Predictions

__all__ = ["LoadedModel", "Predictions", "load_model"]


class LoadedModel:
    """A loaded pyfunc model plus the knowledge of how to get probabilities from it."""

    def __init__(self, pyfunc: Any, *, uri: str, task: str, positive_label: Any = 1,
                 sklearn_model: Any = None, size_bytes: int | None = None) -> None:
        self.pyfunc = pyfunc
        self.uri = uri
        #: bytes of the version's files as downloaded (the size gate's number); None when unknown
        self.size_bytes = size_bytes
        self.task = task
        self.positive_label = positive_label
        self._sk = sklearn_model

    def predict(self, frame: pd.DataFrame) -> Predictions:
        if len(frame) == 0:
            return Predictions(np.array([]), np.array([]) if self.task != "regression" else None)
        out = self.pyfunc.predict(frame)
        scores = None
        if isinstance(out, pd.DataFrame):
            if "proba" in out.columns:
                scores = out["proba"].to_numpy(dtype=float)
            labels = out["prediction"].to_numpy() if "prediction" in out.columns else out.iloc[:, 0].to_numpy()
        else:
            labels = np.asarray(out)
            if labels.ndim == 2:
                labels = labels[:, 0]
        if self.task == "regression":
            return Predictions(labels.astype(float), None)
        if self.task == "multiclass_classification":
            if scores is None and self._sk is not None and hasattr(self._sk, "predict_proba"):
                scores = np.asarray(self._sk.predict_proba(frame), dtype=float).max(axis=1)
            return Predictions(labels, np.ones(len(labels)) if scores is None else scores)
        if scores is None and self._sk is not None and hasattr(self._sk, "predict_proba"):
            classes = list(getattr(self._sk, "classes_", []))
            if self.positive_label in classes:
                proba = self._sk.predict_proba(frame)
                scores = np.asarray(proba)[:, classes.index(self.positive_label)].astype(float)
        if scores is None:
            scores = (labels == self.positive_label).astype(float)
        return Predictions(labels, scores)


_SYS_PATH_LOCK = threading.Lock()


def load_model(registry: Any, name: str, version: str, *, task: str, positive_label: Any = 1,
               workdir: Path | None = None) -> LoadedModel:
    """Load version ``version`` of registered model ``name`` through ``registry`` (module docstring).

    The files are downloaded into a temporary folder (under ``workdir`` when given) and removed once
    loaded: a Kaizen model, and an sklearn one, read everything at load time.
    """
    import mlflow.pyfunc

    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"kaizen-load-{name}-v{version}-", dir=workdir) as tmp:
        local, left = registry.download_model_to_load(name, str(version), Path(tmp))
        size = left + sum(f.stat().st_size for f in local.rglob("*") if f.is_file())
        with _SYS_PATH_LOCK:
            before = list(sys.path)
            try:
                pyfunc = mlflow.pyfunc.load_model(str(local))
                sk = None
                if task != "regression" and "sklearn" in (pyfunc.metadata.flavors or {}):
                    import mlflow.sklearn

                    sk = mlflow.sklearn.load_model(str(local))
            finally:
                sys.path[:] = before
    return LoadedModel(pyfunc, uri=f"models:/{name}/{version}", task=task, positive_label=positive_label,
                       sklearn_model=sk, size_bytes=size)
