"""The policy metrics, computed one way everywhere (gates, backtests, baselines).

``improvement`` and ``drop`` read a metric the way the policy thresholds do:
for scores where higher is better (roc_auc, accuracy, f1, r2) they are plain
differences; for errors (rmse, mae) they are relative changes, so one
threshold in [0, 1] means the same on any target scale.
"""

from __future__ import annotations

import numpy as np

from kaizen.policy import HIGHER_IS_BETTER

__all__ = ["score", "improvement", "drop", "standard_error"]


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


def standard_error(metric: str, y_true: np.ndarray, labels: np.ndarray, scores: np.ndarray | None = None,
                   *, pos_label: object = 1, seed: int = 0, resamples: int = 200) -> float:
    """How far ``score(metric, ...)`` on these rows would move on another sample of the same size.

    accuracy: the binomial ``sqrt(p (1 - p) / n)``. roc_auc: Hanley & McNeil (1982) from the AUC
    and the class counts. f1, rmse, mae, r2: the standard deviation of the metric over
    ``resamples`` bootstrap resamples of the rows, drawn with ``numpy.random.default_rng(seed)``
    (a seeded call repeats exactly). NaN where the metric is undefined (fewer than 2 rows, or
    one class only for roc_auc).
    """
    if metric not in HIGHER_IS_BETTER:
        raise ValueError(f"The 'metric' parameter of standard_error must be one of {sorted(HIGHER_IS_BETTER)}. "
                         f"Got {metric!r} instead.")
    if isinstance(resamples, bool) or not isinstance(resamples, int) or resamples < 2:
        raise ValueError(f"The 'resamples' parameter of standard_error must be an integer >= 2. "
                         f"Got {resamples!r} instead.")
    y_true, labels = np.asarray(y_true), np.asarray(labels)
    n = len(y_true)
    if n < 2:
        return float("nan")
    if metric in ("roc_auc", "accuracy", "f1"):
        y_true = (y_true == pos_label).astype(np.int64)
        labels = (labels == pos_label).astype(np.int64)
    if metric == "accuracy":
        p = float(np.mean(y_true == labels))
        return float(np.sqrt(p * (1 - p) / n))
    if metric == "roc_auc":
        n1 = int(y_true.sum())
        n0 = n - n1
        if n1 == 0 or n0 == 0:
            return float("nan")
        a = score("roc_auc", y_true, labels, scores, pos_label=1)
        q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
        var = (a * (1 - a) + (n1 - 1) * (q1 - a * a) + (n0 - 1) * (q2 - a * a)) / (n1 * n0)
        return float(np.sqrt(max(var, 0.0)))
    return float(np.std(_bootstrap(metric, y_true, labels, n, seed, resamples), ddof=1))


def _bootstrap(metric: str, y: np.ndarray, pred: np.ndarray, n: int, seed: int, resamples: int) -> np.ndarray:
    """``metric`` on ``resamples`` resamples of the rows (indices drawn in chunks of about 2M)."""
    rng = np.random.default_rng(seed)
    if metric == "f1":
        cols = {"tp": y & pred, "fp": (1 - y) & pred, "fn": y & (1 - pred)}
    else:
        e = pred.astype(float) - y.astype(float)
        cols = {"abs": np.abs(e)} if metric == "mae" else {"sq": e * e}
        if metric == "r2":
            cols.update(y=y.astype(float), y2=y.astype(float) ** 2)
    out = np.empty(resamples)
    chunk = max(1, 2_000_000 // n)
    for start in range(0, resamples, chunk):
        idx = rng.integers(0, n, size=(min(chunk, resamples - start), n))
        s = {k: v[idx].sum(axis=1, dtype=float) for k, v in cols.items()}
        if metric == "f1":
            denom = 2 * s["tp"] + s["fp"] + s["fn"]
            val = np.divide(2 * s["tp"], denom, out=np.zeros_like(denom), where=denom > 0)
        elif metric == "rmse":
            val = np.sqrt(s["sq"] / n)
        elif metric == "mae":
            val = s["abs"] / n
        else:  # r2
            tot = s["y2"] - s["y"] ** 2 / n
            val = np.where(tot > 0, 1 - s["sq"] / np.where(tot > 0, tot, 1.0), 0.0)
        out[start:start + len(val)] = val
    return out
