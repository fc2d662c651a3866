"""Loading a registered model and reading its predictions one way.

Any pyfunc model that accepts the raw feature columns can be a champion.
Kaizen's own models return a frame with ``prediction`` (and ``proba``, the
positive-class probability, for classification). A model a person
registered by hand may return bare labels; when it is an sklearn model that
has ``predict_proba``, Kaizen reads the probabilities from it, otherwise the
labels stand in for scores (roc_auc of hard labels).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["LoadedModel", "Predictions", "load_model"]


@dataclass(frozen=True)
class Predictions:
    """``labels``: predicted classes or values; ``scores``: P(positive) or None."""

    labels: np.ndarray
    scores: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.labels)


class LoadedModel:
    """A loaded pyfunc model plus the knowledge of how to get probabilities from it."""

    def __init__(self, pyfunc: Any, *, uri: str, task: str, positive_label: Any = 1,
                 sklearn_model: Any = None) -> None:
        self.pyfunc = pyfunc
        self.uri = uri
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
        if scores is None and self._sk is not None and hasattr(self._sk, "predict_proba"):
            classes = list(getattr(self._sk, "classes_", []))
            if self.positive_label in classes:
                proba = self._sk.predict_proba(frame)
                scores = np.asarray(proba)[:, classes.index(self.positive_label)].astype(float)
        if scores is None:
            scores = (labels == self.positive_label).astype(float)
        return Predictions(labels, scores)


def load_model(uri: str, *, task: str, positive_label: Any = 1) -> LoadedModel:
    """Load ``uri`` (``models:/name/3``, ``models:/name@champion``, ``runs:/...``)."""
    import mlflow.pyfunc

    pyfunc = mlflow.pyfunc.load_model(uri)
    sk = None
    if task != "regression" and "sklearn" in (pyfunc.metadata.flavors or {}):
        import mlflow.sklearn

        sk = mlflow.sklearn.load_model(uri)
    return LoadedModel(pyfunc, uri=uri, task=task, positive_label=positive_label, sklearn_model=sk)
