"""The policy metrics, computed one way everywhere (gates, backtests, baselines).

``improvement`` and ``drop`` read a metric the way the policy thresholds do:
for scores where higher is better (roc_auc, accuracy, f1, r2) they are plain
differences; for errors (rmse, mae) they are relative changes, so one
threshold in [0, 1] means the same on any target scale.
"""

from __future__ import annotations

import numpy as np

from kaizen.policy import HIGHER_IS_BETTER

__all__ = ["score", "improvement", "drop"]


def score(metric: str, y_true: np.ndarray, labels: np.ndarray, scores: np.ndarray | None = None,
          *, pos_label: object = 1) -> float:
    """``metric`` of predictions against ``y_true``.

    ``labels`` are predicted classes (classification) or values (regression);
    ``scores`` are positive-class probabilities, used by roc_auc when given.
    Classification labels are compared with ``pos_label`` first, so string
    classes work. roc_auc on rows that hold one class only is undefined: NaN.
    """
    from sklearn import metrics as m

    y_true = np.asarray(y_true)
    labels = np.asarray(labels)
    if metric in ("roc_auc", "accuracy", "f1"):
        y_true = (y_true == pos_label).astype(int)
        labels = (labels == pos_label).astype(int)
    if metric == "roc_auc":
        if len(np.unique(y_true)) < 2:
            return float("nan")
        return float(m.roc_auc_score(y_true, labels if scores is None else np.asarray(scores)))
    if metric == "accuracy":
        return float(m.accuracy_score(y_true, labels))
    if metric == "f1":
        return float(m.f1_score(y_true, labels, zero_division=0))
    if metric == "rmse":
        return float(np.sqrt(m.mean_squared_error(y_true.astype(float), labels.astype(float))))
    if metric == "mae":
        return float(m.mean_absolute_error(y_true.astype(float), labels.astype(float)))
    if metric == "r2":
        return float(m.r2_score(y_true.astype(float), labels.astype(float)))
    raise ValueError(f"The 'metric' parameter of score must be one of {sorted(HIGHER_IS_BETTER)}. "
                     f"Got {metric!r} instead.")


def improvement(metric: str, new: float, old: float) -> float:
    """How much better ``new`` is than ``old`` (negative: worse)."""
    if HIGHER_IS_BETTER[metric]:
        return new - old
    return (old - new) / abs(old) if old else (0.0 if new == old else -np.inf)


def drop(metric: str, current: float, baseline: float) -> float:
    """How much worse ``current`` is than ``baseline`` (negative: better)."""
    return -improvement(metric, current, baseline)
