"""Performance before labels (confidence-based estimation) and the label distribution (target drift).

**The estimate** is NannyML's *confidence-based performance estimation* (CBPE): the champion's
positive-class scores are calibrated on labelled rows it did not learn from (isotonic regression,
the method's default), after which a calibrated score ``p`` is the probability that the row is
positive. On unlabelled production rows each row then counts as a positive with weight ``p`` and as
a negative with weight ``1 - p``, which gives the *expected* confusion matrix at every threshold:

- ``roc_auc``: the area under the expected ROC curve (expected TPR against expected FPR over every
  threshold of the champion's raw score), i.e. a weighted ROC AUC of the rows taken twice;
- ``accuracy``, ``f1``: from the expected confusion matrix at the champion's own predicted labels.

CBPE assumes the relation between the features and the label does not change (covariate shift
only): it sees a shift that moves rows into regions where the champion is less sure, never a
changed labelling rule (concept drift), which only labels show. Binary classifiers only: a
multiclass champion's estimate is unknown, with the reason (:data:`MULTICLASS_UNKNOWN`).

**Where the calibration rows come from.** The newest ``build.validation_fraction`` of the policy's
reference, the rows the performance baseline of a champion registered by hand is measured on
(:func:`kaizen.registry.champion.measure_baseline`) and exactly the holdout a bootstrapped champion
was not trained on. A champion promoted later may have learned from them: its calibration is then
in-sample and the estimate optimistic (it flags later, never falsely). The calibrator (isotonic
breakpoints, a few hundred floats) is computed once per champion version and reference and kept
on disk next to the reference predictions (``<state>/cache/<model>/cal-v<version>-<key>.npz``):
a quiet cycle only interpolates its rows' scores and sorts them once.

**Regression: Direct Loss Estimation** (DLE, NannyML's method for regressors). On the same
calibration rows a small model (scikit-learn's ``HistGradientBoostingRegressor``, 50 trees, the
categorical features as categories) learns the champion's loss from the features and the champion's
prediction: the absolute error for ``mae``, the squared error for ``rmse``. On unlabelled rows the
mean predicted loss is the estimated ``mae`` (``rmse``: its square root). ``r2`` needs the variance of
the labels, which unlabelled rows do not have: unknown. The same assumption holds (a changed
relation between features and target is invisible); the loss model is kept in the same cache
(``dle-v<version>-<key>.joblib``: a scikit-learn model pickled by Kaizen into its own state folder,
as the registry keeps the champion itself).

**Implemented here, not with NannyML.** ``pip install --dry-run nannyml -c constraints.txt`` (issue 18):
against the stack's constraints before this issue it resolved (nannyml 0.13.1) but added 35 packages:
xgboost, lightgbm, FLAML, a CUDA NCCL wheel, the Google Cloud and S3 file systems with their own
botocore, kaleido, and segment-analytics (usage telemetry); with the object-store client pinned
(boto3/botocore 1.44) it no longer resolves at all (0.13.1's s3fs/gcsfs need other fsspec and botocore
versions, every older nannyml needs Jinja2 < 3.1). NannyML also refits its calibrators on every ``fit``
of a reference frame, with no hook to keep one per champion. The methods are isotonic calibration plus
a weighted confusion matrix, and one small regressor of the loss: a few dozen lines over scikit-learn,
which the stack already has.

**Target drift** compares the window's labelled rows' labels with the reference labels by the
feature drift's machinery (Evidently's stattests, :mod:`kaizen.monitor.methods`): categorical
for classification, numerical for regression, with its own method and threshold
(``trigger.target_drift``, ``trigger.target_drift_threshold``).
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kaizen.policy import ColumnDrift, Policy

__all__ = ["ESTIMABLE", "ESTIMABLE_REGRESSION", "MULTICLASS_UNKNOWN", "Calibration", "Estimate", "LossModel",
           "beside_monitor", "calibration_for", "estimate", "estimate_loss", "expected_metric", "fit_calibration",
           "fit_loss_model", "loss_model_for", "target_drift"]

log = logging.getLogger("kaizen.monitor.estimate")

#: the metrics CBPE estimates (binary classification)
ESTIMABLE = ("roc_auc", "accuracy", "f1")
#: why a multiclass champion gets no estimate (unknown, never a binary formula applied to it)
MULTICLASS_UNKNOWN = ("no label-free estimate for multiclass_classification (confidence-based estimation here "
                      "calibrates P(positive) of a binary classifier)")
#: the metrics DLE estimates (regression)
ESTIMABLE_REGRESSION = ("mae", "rmse")
#: the result name of target drift (it is not a feature)
TARGET = "target"


@dataclass(frozen=True)
class Calibration:
    """An isotonic map from the champion's raw score to P(positive), with where it was fit."""

    x: np.ndarray           # increasing raw-score breakpoints
    y: np.ndarray           # calibrated probability at each breakpoint
    rows: int               # labelled rows it was fit on
    realised: float | None  # the champion's metric on those rows (what the estimate reads there)

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        s = np.asarray(scores, dtype=float)
        if len(self.x) == 0:
            return np.full(len(s), float(self.y[0]) if len(self.y) else 0.5)
        return np.clip(np.interp(s, self.x, self.y), 0.0, 1.0)


@dataclass(frozen=True)
class Estimate:
    """The champion's estimated metric on a window, overall and per batch (label-free)."""

    metric: str
    value: float | None
    rows: int
    batches: tuple[tuple[str, int, float | None], ...] = ()   # (batch, rows, estimated value)
    calibration_rows: int = 0
    calibration_realised: float | None = None
    cached: bool = False
    why_unknown: str = ""
    method: str = "cbpe"                  # "cbpe" (classifiers) or "dle" (regressors)

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "metric": self.metric, "estimated": _num(self.value), "rows": int(self.rows),
                "batches": [{"batch": b, "rows": int(n), "estimated": _num(v)} for b, n, v in self.batches],
                "calibration_rows": int(self.calibration_rows),
                "calibration_realised": _num(self.calibration_realised), "calibration_cached": bool(self.cached)}


@dataclass(frozen=True)
class LossModel:
    """DLE: a regressor of the champion's loss (absolute or squared error) on its features and prediction."""

    model: Any                                # a fitted HistGradientBoostingRegressor, or None
    features: tuple[str, ...]
    categories: dict[str, list[Any]]         # categorical feature -> the categories seen on the calibration rows
    metric: str
    rows: int
    realised: float | None

    def frame(self, frame: pd.DataFrame, prediction: np.ndarray) -> pd.DataFrame:
        x = pd.DataFrame({c: frame[c].to_numpy() for c in self.features})
        for c, cats in self.categories.items():
            x[c] = pd.Categorical(x[c].astype(object).where(x[c].notna()).map(_text), categories=cats)
        x["__prediction"] = np.asarray(prediction, dtype=float)
        return x

    def estimate(self, frame: pd.DataFrame, prediction: np.ndarray) -> np.ndarray:
        """The predicted loss of each row (absolute error for mae, squared error for rmse), never below 0."""
        return np.clip(self.model.predict(self.frame(frame, prediction)), 0.0, None)


def fit_loss_model(frame: pd.DataFrame, features: Sequence[str], categorical: Sequence[str], prediction: np.ndarray,
                   y_true: np.ndarray, *, metric: str, seed: int = 0) -> LossModel:
    """Fit DLE's loss model on labelled rows: the champion's ``prediction`` against ``y_true``."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    from kaizen.metrics import score

    y = np.asarray(y_true, dtype=float)
    pred = np.asarray(prediction, dtype=float)
    ok = np.isfinite(y) & np.isfinite(pred)
    frame, y, pred = frame.iloc[np.flatnonzero(ok)], y[ok], pred[ok]
    cats = {c: sorted({_text(v) for v in frame[c].dropna()}) for c in categorical if c in features}
    shell = LossModel(None, tuple(features), cats, metric, int(ok.sum()), None)
    if metric not in ESTIMABLE_REGRESSION or len(y) < 20:
        return shell
    loss = np.abs(y - pred) if metric == "mae" else (y - pred) ** 2
    x = shell.frame(frame, pred)
    model = HistGradientBoostingRegressor(max_iter=50, categorical_features="from_dtype", random_state=seed)
    model.fit(x, loss)
    realised = score(metric, y, pred)
    return LossModel(model, tuple(features), cats, metric, len(y), None if math.isnan(realised) else float(realised))


def _text(v: Any) -> str:
    return str(v)


def estimate_loss(loss: LossModel, frame: pd.DataFrame, prediction: np.ndarray, *,
                  batches: Sequence[str] | np.ndarray | None = None, cached: bool = False) -> Estimate:
    """DLE's estimated ``mae`` or ``rmse`` on unlabelled rows, per batch too."""
    n = len(frame)
    base = dict(metric=loss.metric, rows=n, calibration_rows=loss.rows, calibration_realised=loss.realised,
                cached=cached, method="dle")
    if loss.metric not in ESTIMABLE_REGRESSION:
        return Estimate(value=None, why_unknown=f"no label-free estimate of {loss.metric} (direct loss estimation "
                        "covers mae and rmse; r2 needs the variance of the labels)", **base)
    if loss.model is None:
        return Estimate(value=None, why_unknown=f"too few calibration rows ({loss.rows}) to learn the loss", **base)
    if n == 0:
        return Estimate(value=None, **base)
    per_row = loss.estimate(frame, prediction)

    def agg(v: np.ndarray) -> float:
        return float(np.mean(v)) if loss.metric == "mae" else float(np.sqrt(np.mean(v)))

    per: list[tuple[str, int, float | None]] = []
    if batches is not None and len(batches) == n:
        names = np.asarray(batches, dtype=object)
        for b in dict.fromkeys(names.tolist()):
            rows = names == b
            per.append((str(b), int(rows.sum()), agg(per_row[rows])))
    return Estimate(value=agg(per_row), batches=tuple(per), **base)


def fit_calibration(y_true: np.ndarray, scores: np.ndarray, labels: np.ndarray, *, metric: str,
                    pos_label: Any = 1) -> Calibration:
    """Isotonic calibration of ``scores`` (P(positive) by the champion) on labelled rows."""
    from sklearn.isotonic import IsotonicRegression

    from kaizen.metrics import score

    y = (np.asarray(y_true) == pos_label).astype(float)
    s = np.asarray(scores, dtype=float)
    ok = np.isfinite(s) & pd.notna(np.asarray(y_true, dtype=object))  # rows without a label calibrate nothing
    y, s, lab = y[ok], s[ok], np.asarray(labels)[ok]
    if len(y) == 0:
        return Calibration(np.zeros(0), np.zeros(0), 0, None)
    if len(np.unique(y)) < 2:
        return Calibration(np.zeros(0), np.array([float(y[0])]), len(y), None)
    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(s, y)
    realised = score(metric, np.asarray(y_true)[ok], lab, s, pos_label=pos_label)
    return Calibration(np.asarray(iso.X_thresholds_, float), np.asarray(iso.y_thresholds_, float), len(y),
                       None if math.isnan(realised) else float(realised))


def expected_metric(metric: str, p: np.ndarray, scores: np.ndarray, predicted_positive: np.ndarray) -> float:
    """``metric`` of the expected confusion matrix: each row positive with probability ``p`` (NaN: undefined).

    ``scores`` rank the rows (roc_auc); ``predicted_positive`` is the champion's own decision (accuracy, f1).
    """
    p = np.asarray(p, float)
    if len(p) == 0:
        return float("nan")
    pos = np.asarray(predicted_positive, bool)
    if metric == "roc_auc":
        return _weighted_auc(np.asarray(scores, float), p)
    tp, fp = float(p[pos].sum()), float((1 - p[pos]).sum())
    fn, tn = float(p[~pos].sum()), float((1 - p[~pos]).sum())
    if metric == "accuracy":
        return (tp + tn) / len(p)
    if metric == "f1":
        return 2 * tp / (2 * tp + fp + fn) if (2 * tp + fp + fn) > 0 else 0.0
    raise ValueError(f"The 'metric' parameter of expected_metric must be one of {ESTIMABLE}. Got {metric!r} instead.")


def _weighted_auc(s: np.ndarray, p: np.ndarray) -> float:
    """Expected TPR/FPR over every threshold of ``s``: P(score of a positive > score of a negative), ties half."""
    wp, wn = p, 1.0 - p
    total_p, total_n = wp.sum(), wn.sum()
    if total_p <= 0 or total_n <= 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    s, wp, wn = s[order], wp[order], wn[order]
    # group ties: per distinct score, the positive and negative weight
    edges = np.flatnonzero(np.diff(s)) + 1
    starts = np.concatenate(([0], edges))
    gp, gn = np.add.reduceat(wp, starts), np.add.reduceat(wn, starts)
    below_n = np.cumsum(gn) - gn  # negative weight strictly below each group
    return float(np.sum(gp * (below_n + 0.5 * gn)) / (total_p * total_n))


def estimate(calibration: Calibration, labels: np.ndarray, scores: np.ndarray | None, *, metric: str,
             pos_label: Any = 1, batches: Sequence[str] | np.ndarray | None = None, cached: bool = False) -> Estimate:
    """The estimated ``metric`` on unlabelled rows (the champion's ``labels`` and ``scores`` on them), per batch too."""
    n = len(labels)
    base = dict(metric=metric, rows=n, calibration_rows=calibration.rows,
                calibration_realised=calibration.realised, cached=cached)
    if metric not in ESTIMABLE:
        return Estimate(value=None, why_unknown=f"no label-free estimate of {metric} (confidence-based estimation "
                        "covers binary classifiers: roc_auc, accuracy, f1)", **base)
    if scores is None:
        return Estimate(value=None, why_unknown="the champion gives no scores to calibrate", **base)
    if calibration.rows == 0 or len(calibration.x) == 0:
        return Estimate(value=None, why_unknown="the calibration rows hold one class only or none", **base)
    s = np.asarray(scores, float)
    p = calibration(s)
    pos = np.asarray(labels) == pos_label
    value = expected_metric(metric, p, s, pos)
    per: list[tuple[str, int, float | None]] = []
    if batches is not None and len(batches) == n:
        names = np.asarray(batches, dtype=object)
        for b in dict.fromkeys(names.tolist()):
            rows = names == b
            v = expected_metric(metric, p[rows], s[rows], pos[rows])
            per.append((str(b), int(rows.sum()), None if math.isnan(v) else float(v)))
    return Estimate(value=None if math.isnan(value) else float(value), batches=tuple(per), **base)


def _calibration_rows(champion: Any, reference: pd.DataFrame, policy: Policy, *, registry_uri: str, ident: str
                      ) -> tuple[pd.DataFrame, str]:
    """(the newest ``build.validation_fraction`` of ``reference``, their cache key)."""
    from pandas.util import hash_pandas_object

    metric, pos_label = policy.model.metric, policy.model.positive_label
    n = max(1, int(round(len(reference) * policy.build.validation_fraction)))
    rows = reference.iloc[len(reference) - n:]
    digest = int(hash_pandas_object(rows, index=False).sum()) & (2**64 - 1)  # the rows themselves: ~1 ms
    key = hashlib.sha256(f"{registry_uri}|{champion.run_id}|{ident}|{digest:x}|{n}|{metric}|{pos_label!r}"
                         .encode()).hexdigest()[:16]
    return rows, key


def _keep_only(path: Path, pattern: str) -> None:
    for old in path.parent.glob(pattern):
        if old != path:
            old.unlink(missing_ok=True)


def loss_model_for(champion: Any, model: Any, reference: pd.DataFrame, schema: Any, policy: Policy, *,
                   registry_uri: str, cache_dir: Path | None, ident: str, seed: int = 0) -> tuple[LossModel, bool]:
    """(loss model, from the cache): DLE's loss model of a regressor champion on the newest
    ``build.validation_fraction`` of ``reference``, kept in ``cache_dir`` like the calibrator."""
    import joblib

    from kaizen.data.frames import model_frame, target_values

    rows, key = _calibration_rows(champion, reference, policy, registry_uri=registry_uri, ident=ident)
    path = cache_dir / f"dle-v{champion.version}-{key}.joblib" if cache_dir is not None else None
    if path is not None and path.exists():
        try:
            loaded = joblib.load(path)
            if isinstance(loaded, LossModel):
                return loaded, True
        except Exception as exc:  # a bad cache file is recomputed and rewritten
            log.warning("ignoring the loss-model cache %s: %s", path, exc)
    p = model.predict(model_frame(rows, schema))
    loss = fit_loss_model(rows, schema.features, schema.categorical, p.labels,
                          target_values(rows, schema, policy.model.task), metric=policy.model.metric, seed=seed)
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            joblib.dump(loss, tmp)
            os.replace(tmp, path)
            _keep_only(path, "dle-*.joblib")
        except OSError as exc:
            log.warning("cannot write the loss-model cache %s: %s", path, exc)
    return loss, False


def calibration_for(champion: Any, model: Any, reference: pd.DataFrame, schema: Any, policy: Policy, *,
                    registry_uri: str, cache_dir: Path | None, ident: str) -> tuple[Calibration, bool]:
    """(calibration, from the cache): the champion's calibrator on the newest ``build.validation_fraction`` of
    ``reference`` (the policy's), kept in ``cache_dir`` per champion version, registry and reference identity."""
    from kaizen.data.frames import model_frame, target_values

    metric, pos_label = policy.model.metric, policy.model.positive_label
    rows, key = _calibration_rows(champion, reference, policy, registry_uri=registry_uri, ident=ident)
    path = cache_dir / f"cal-v{champion.version}-{key}.npz" if cache_dir is not None else None
    if path is not None and path.exists():
        try:
            with np.load(path, allow_pickle=False) as z:
                realised = float(z["realised"])
                return Calibration(z["x"], z["y"], int(z["rows"]), None if math.isnan(realised) else realised), True
        except Exception as exc:  # a bad cache file is recomputed and rewritten
            log.warning("ignoring the calibration cache %s: %s", path, exc)
    p = model.predict(model_frame(rows, schema))
    y = target_values(rows, schema, policy.model.task)
    if p.scores is None:
        return Calibration(np.zeros(0), np.zeros(0), 0, None), False
    cal = fit_calibration(y, p.scores, p.labels, metric=metric, pos_label=pos_label)
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            with open(tmp, "wb") as f:
                np.savez(f, x=cal.x, y=cal.y, rows=np.array(cal.rows),
                         realised=np.array(float("nan") if cal.realised is None else cal.realised))
            os.replace(tmp, path)
            _keep_only(path, "cal-*.npz")
        except OSError as exc:
            log.warning("cannot write the calibration cache %s: %s", path, exc)
    return cal, False


def target_drift(reference_y: np.ndarray, current_y: np.ndarray, policy: Policy) -> Any:
    """Drift of the labels (``current_y``: the window's labelled rows') from the reference labels: a
    :class:`~kaizen.monitor.drift.ColumnDriftResult` named ``target`` (categorical unless regression)."""
    from kaizen.monitor.drift import _compare
    from kaizen.monitor.methods import _PVALUE, CATEGORICAL, NUMERICAL, Planned, _fit
    from kaizen.monitor.profile import clean

    trig = policy.trigger
    kind = NUMERICAL if policy.model.task == "regression" else CATEGORICAL
    method = trig.target_drift or "jensenshannon"
    threshold = trig.target_drift_threshold or (0.05 if method in _PVALUE else 0.1)
    spec = _fit(TARGET, kind, ColumnDrift(method, threshold), explicit=False, policy=policy)
    ref, cur = pd.Series(np.asarray(reference_y)), pd.Series(np.asarray(current_y))
    if kind == CATEGORICAL:  # labels as categories: 0/1 and "yes"/"no" alike
        ref, cur = ref.astype(str).where(ref.notna()), cur.astype(str).where(cur.notna())
    else:
        ref, cur = pd.to_numeric(ref, errors="coerce"), pd.to_numeric(cur, errors="coerce")
    with np.errstate(all="ignore"):
        return _compare(Planned(TARGET, kind, spec), clean(ref), clean(cur))


def _num(v: float | None) -> float | None:
    return None if v is None or not math.isfinite(float(v)) else float(v)


def beside_monitor(policy: Policy, champion: Any, model: Any, window: Any, reference: pd.DataFrame, ident: str,
                   current_predictions: Any, *, registry_uri: str, cache_dir: Path | None) -> dict[str, Any] | None:
    """The figures the armed label-free signals read (``MonitorResult.extras``); None when neither is armed.

    ``reference``: the monitor's reference (the champion's training rows), whose labels target drift compares
    with (the policy's reference when it has none); the estimate calibrates on the policy's reference
    (``window.reference``, module docstring).
    """
    trig = policy.trigger
    out: dict[str, Any] = {}
    schema = window.schema
    cur = window.current
    if getattr(trig, "estimated_drop", None) is not None:
        sizes = tuple(getattr(window, "current_sizes", ()) or ())
        names = (np.repeat(np.array(window.batches, dtype=object), sizes)
                 if len(sizes) == len(window.batches) and sum(sizes) == len(cur) else None)
        metric, kw = policy.model.metric, dict(registry_uri=registry_uri, cache_dir=cache_dir, ident=ident)
        if policy.model.task == "multiclass_classification":
            out["estimate"] = Estimate(metric=metric, value=None, rows=len(cur), why_unknown=MULTICLASS_UNKNOWN)
        elif policy.model.task == "regression":
            loss, cached = (loss_model_for(champion, model, window.reference, schema, policy, **kw)
                            if metric in ESTIMABLE_REGRESSION else (LossModel(None, (), {}, metric, 0, None), False))
            out["estimate"] = estimate_loss(loss, cur, current_predictions.labels, batches=names, cached=cached)
        else:
            cal, cached = (calibration_for(champion, model, window.reference, schema, policy, **kw)
                           if metric in ESTIMABLE and current_predictions.scores is not None
                           else (Calibration(np.zeros(0), np.zeros(0), 0, None), False))
            out["estimate"] = estimate(cal, current_predictions.labels, current_predictions.scores, metric=metric,
                                       pos_label=policy.model.positive_label, batches=names, cached=cached)
    if getattr(trig, "target_drift", None) is not None:
        target = schema.target
        ref = reference if target in reference.columns else window.reference
        cur_y = cur[target].dropna().to_numpy() if target in cur.columns else np.zeros(0)
        if len(cur_y) and target in ref.columns:
            out["target_drift"] = target_drift(ref[target].dropna().to_numpy(), cur_y, policy)
    return out or None
