"""The policy metrics, computed one way everywhere (gates, backtests, baselines).

``improvement`` and ``drop`` read a metric the way the policy thresholds do:
for scores where higher is better (roc_auc, accuracy, f1, r2) they are plain
differences; for errors (rmse, mae) they are relative changes, so one
threshold in [0, 1] means the same on any target scale.

Multiclass metrics (``pos_label=None``): accuracy, balanced_accuracy (the mean of the
per-class recalls over the classes present in ``y_true``) and f1_macro (the mean of the
per-class F1 over the classes present in ``y_true`` or in the predictions, 0 for a class
never predicted or never seen): all read from the predicted labels, as scikit-learn
computes them. A resample (:func:`resampled_scores`) uses the same definitions on its rows.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from kaizen.policy import HIGHER_IS_BETTER

__all__ = ["score", "improvement", "drop", "standard_error", "bootstrap_weights", "resampled_scores",
           "paired_bootstrap", "improvements"]


def score(metric: str, y_true: np.ndarray, labels: np.ndarray, scores: np.ndarray | None = None,
          *, pos_label: object = 1) -> float:
    """``metric`` of predictions against ``y_true``.

    ``labels`` are predicted classes (classification) or values (regression);
    ``scores`` are positive-class probabilities, used by roc_auc when given.
    Classification labels are compared with ``pos_label`` first, so string
    classes work; ``pos_label=None`` (multiclass) compares the labels as they are.
    roc_auc on rows that hold one class only is undefined: NaN.
    """
    from sklearn import metrics as m

    y_true = np.asarray(y_true)
    labels = np.asarray(labels)
    if metric in MULTICLASS:
        return _multiclass(metric, y_true, labels)
    if metric == "accuracy" and pos_label is None:
        return float(np.mean(y_true == labels)) if len(y_true) else float("nan")
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


#: metrics of multiclass labels that have no positive class
MULTICLASS = ("balanced_accuracy", "f1_macro")


def _multiclass(metric: str, y: np.ndarray, pred: np.ndarray) -> float:
    """balanced_accuracy or f1_macro of labels ``pred`` against ``y`` (module docstring); NaN on no rows."""
    if len(y) == 0:
        return float("nan")
    return float(resampled_scores(metric, y, pred, None, np.ones((1, len(y))))[0])


def improvement(metric: str, new: float, old: float) -> float:
    """How much better ``new`` is than ``old`` (negative: worse)."""
    if HIGHER_IS_BETTER[metric]:
        return new - old
    return (old - new) / abs(old) if old else (0.0 if new == old else -np.inf)


def improvements(metric: str, new: np.ndarray, old: np.ndarray) -> np.ndarray:
    """:func:`improvement` element-wise over arrays (NaN stays NaN)."""
    new, old = np.asarray(new, dtype=float), np.asarray(old, dtype=float)
    if HIGHER_IS_BETTER[metric]:
        return new - old
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = (old - new) / np.abs(old)
    return np.where(old != 0, rel, np.where(new == old, 0.0, -np.inf))


def drop(metric: str, current: float, baseline: float) -> float:
    """How much worse ``current`` is than ``baseline`` (negative: better)."""
    return -improvement(metric, current, baseline)


def standard_error(metric: str, y_true: np.ndarray, labels: np.ndarray, scores: np.ndarray | None = None,
                   *, pos_label: object = 1, seed: int = 0, resamples: int = 200) -> float:
    """How far ``score(metric, ...)`` on these rows would move on another sample of the same size.

    accuracy: the binomial ``sqrt(p (1 - p) / n)``. roc_auc: Hanley & McNeil (1982) from the AUC
    and the class counts. f1, rmse, mae, r2: the standard deviation of the metric over
    ``resamples`` bootstrap resamples of the rows, drawn with ``numpy.random.default_rng(seed)``
    (a seeded call repeats exactly); balanced_accuracy, f1_macro: the same over the resamples
    of :func:`bootstrap_weights` with ``seed``. NaN where the metric is undefined (fewer than 2 rows, or
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
    if metric in MULTICLASS:
        draws = np.concatenate([resampled_scores(metric, y_true, labels, None, w)
                                for w in bootstrap_weights(n, resamples, seed)])
        return float(np.nanstd(draws, ddof=1))
    if metric == "accuracy" and pos_label is None:
        p = float(np.mean(y_true == labels))
        return float(np.sqrt(p * (1 - p) / n))
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


def bootstrap_weights(n: int, resamples: int, seed: int | Sequence[int], *,
                      cells: int = 2_000_000) -> Iterator[np.ndarray]:
    """Bootstrap resamples of ``n`` rows as counts: chunks of shape ``(k, n)``, row ``r`` of a chunk
    holding how often each row was drawn in resample ``r`` (each row sums to ``n``).

    Drawn with ``numpy.random.default_rng(seed)`` in chunks of about ``cells`` counts, so memory stays
    bounded at any ``n``; a seeded call repeats exactly. Two models scored with the same weights are
    compared on the same resamples (a paired bootstrap).
    """
    rng = np.random.default_rng(seed)
    chunk = max(1, cells // max(n, 1))
    for start in range(0, resamples, chunk):
        k = min(chunk, resamples - start)
        idx = rng.integers(0, n, size=(k, n)) + (np.arange(k) * n)[:, None]
        yield np.bincount(idx.ravel(), minlength=k * n).reshape(k, n)


def resampled_scores(metric: str, y_true: np.ndarray, labels: np.ndarray, scores: np.ndarray | None,
                     weights: np.ndarray, *, pos_label: object = 1) -> np.ndarray:
    """``score(metric, ...)`` on each resample given by ``weights`` (``(k, n)`` counts), vectorised.

    roc_auc is rank-based (Mann-Whitney with ties counted half): the scores are sorted once and every
    resample's AUC is read from weighted counts per distinct score. NaN where a resample leaves the
    metric undefined (one class only for roc_auc). balanced_accuracy and f1_macro count each class's
    weighted hits and misses (module docstring); ``pos_label=None`` makes accuracy compare the labels as they are.
    """
    if metric not in HIGHER_IS_BETTER:
        raise ValueError(f"The 'metric' parameter of resampled_scores must be one of {sorted(HIGHER_IS_BETTER)}. "
                         f"Got {metric!r} instead.")
    y_true, labels = np.asarray(y_true), np.asarray(labels)
    w = np.asarray(weights, dtype=float)
    total = w.sum(axis=1)
    if metric in MULTICLASS:
        return _per_class(metric, y_true, labels, w)
    if metric == "accuracy" and pos_label is None:
        return w @ (y_true == labels).astype(float) / total
    if metric in ("roc_auc", "accuracy", "f1"):
        y = (y_true == pos_label).astype(float)
        pred = (labels == pos_label).astype(float)
        if metric == "accuracy":
            return w @ (y == pred).astype(float) / total
        if metric == "f1":
            tp, fp, fn = w @ (y * pred), w @ ((1 - y) * pred), w @ (y * (1 - pred))
            denom = 2 * tp + fp + fn
            return np.divide(2 * tp, denom, out=np.zeros_like(denom), where=denom > 0)
        return _weighted_auc(y, pred if scores is None else np.asarray(scores, dtype=float), w)
    e = labels.astype(float) - y_true.astype(float)
    if metric == "rmse":
        return np.sqrt(w @ (e * e) / total)
    if metric == "mae":
        return w @ np.abs(e) / total
    yf = y_true.astype(float)  # r2
    sy, sy2 = w @ yf, w @ (yf * yf)
    tot = sy2 - sy ** 2 / total
    ok = tot > 1e-12 * np.maximum(sy2, 1.0)
    return np.where(ok, 1 - (w @ (e * e)) / np.where(ok, tot, 1.0), 0.0)


def _per_class(metric: str, y: np.ndarray, pred: np.ndarray, w: np.ndarray) -> np.ndarray:
    """balanced_accuracy or f1_macro under each row of row weights ``w`` (``(k, n)``), from per-class counts."""
    classes = list(dict.fromkeys([*_distinct(y), *_distinct(pred)]))
    tp = np.empty((w.shape[0], len(classes)))
    seen, said = np.empty_like(tp), np.empty_like(tp)
    for j, c in enumerate(classes):
        is_y, is_p = (y == c).astype(float), (pred == c).astype(float)
        tp[:, j], seen[:, j], said[:, j] = w @ (is_y * is_p), w @ is_y, w @ is_p
    with np.errstate(invalid="ignore", divide="ignore"):
        if metric == "balanced_accuracy":  # recall of each class present in y; NaN when a resample has none
            present = seen > 0
            per = np.where(present, tp / np.where(present, seen, 1.0), 0.0)
        else:  # f1_macro: 2 tp / (2 tp + fp + fn) = 2 tp / (seen + said), over classes in y or in pred
            present = (seen + said) > 0
            per = np.where(present, 2 * tp / np.where(present, seen + said, 1.0), 0.0)
        count = present.sum(axis=1)
        return np.where(count > 0, per.sum(axis=1) / np.maximum(count, 1), np.nan)


def _distinct(values: np.ndarray) -> list:
    """The distinct values of ``values`` in order of appearance (mixed types and None allowed)."""
    import pandas as pd

    return pd.unique(pd.Series(np.asarray(values, dtype=object))).tolist()


def _weighted_auc(y: np.ndarray, s: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Rank-based AUC of scores ``s`` for 0/1 labels ``y`` under each row of row weights ``w``."""
    order = np.argsort(s, kind="mergesort")
    s_sorted = s[order]
    starts = np.flatnonzero(np.r_[True, s_sorted[1:] != s_sorted[:-1]])  # first row of each distinct score
    ws = w[:, order]
    pos = np.add.reduceat(ws * y[order], starts, axis=1)
    neg = np.add.reduceat(ws * (1 - y[order]), starts, axis=1)
    below = np.cumsum(neg, axis=1) - neg  # negative weight strictly below each distinct score
    n1, n0 = pos.sum(axis=1), neg.sum(axis=1)
    num = (pos * (below + 0.5 * neg)).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((n1 > 0) & (n0 > 0), num / (n1 * n0), np.nan)


def paired_bootstrap(metric: str, y_true: np.ndarray, first: tuple[np.ndarray, np.ndarray | None],
                     second: tuple[np.ndarray, np.ndarray | None], *, pos_label: object = 1,
                     seed: int | Sequence[int] = 0,
                     resamples: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """``metric`` of two models' ``(labels, scores)`` on the same ``resamples`` bootstrap resamples.

    Returns two arrays of length ``resamples`` (NaN where a resample leaves the metric undefined);
    ``improvement(metric, second, first)`` of them is the bootstrap distribution of the difference.
    """
    if isinstance(resamples, bool) or not isinstance(resamples, int) or resamples < 1:
        raise ValueError(f"The 'resamples' parameter of paired_bootstrap must be an integer >= 1. "
                         f"Got {resamples!r} instead.")
    n = len(y_true)
    if n == 0:
        return np.full(resamples, np.nan), np.full(resamples, np.nan)
    a, b = [], []
    for w in bootstrap_weights(n, resamples, seed):
        a.append(resampled_scores(metric, y_true, first[0], first[1], w, pos_label=pos_label))
        b.append(resampled_scores(metric, y_true, second[0], second[1], w, pos_label=pos_label))
    return np.concatenate(a), np.concatenate(b)

