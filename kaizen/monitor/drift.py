"""One monitoring pass over a window: feature drift, prediction drift and champion performance.

Everything is measured with Evidently (imported inside the functions: it takes
seconds to import). Drift is one ``ValueDrift`` per feature, with the method
and threshold the policy gives for that column, all in one ``Report`` with
tests, so the pass/fail of each column is Evidently's own verdict. The
champion's metric is an Evidently metric on the labelled rows of the window.

Drift methods and column kinds: some Evidently methods only apply to one kind
of column (``wasserstein``, ``ks``, ``anderson``, ``cramer_von_mises``,
``mannw``, ``energy`` to numerical ones; ``chisquare``, ``z``, ``TVD`` to
categorical ones). A ``[trigger.columns.X]`` override that does not fit its
column is a :class:`~kaizen.errors.PolicyError`. The policy-wide default
(``trigger.drift_method``) is meant for every column, so where it does not fit
it is swapped for the nearest method of the same family with the same
threshold: a distance becomes ``jensenshannon``, a categorical p-value test
becomes ``ks``, a numerical one ``chisquare``. The method actually used is
recorded in each :class:`ColumnDriftResult`.

A column that is entirely null on one side cannot be compared; it is reported
as drifted (its values vanished or appeared) with a NaN score.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kaizen.data.schema import Schema
from kaizen.errors import DataError, PolicyError
from kaizen.models import Predictions
from kaizen.policy import DRIFT_METHODS, ColumnDrift, ModelSpec, Policy

__all__ = ["ColumnDriftResult", "MonitorResult", "run_monitor"]

PREDICTION = "prediction"

_NUMERICAL_ONLY = frozenset({"wasserstein", "ks", "anderson", "cramer_von_mises", "mannw", "energy"})
_CATEGORICAL_ONLY = frozenset({"chisquare", "z", "TVD"})
#: Methods whose score is a p-value (drift when p < threshold); the rest are distances.
_PVALUE = frozenset({"ks", "chisquare", "z", "anderson", "cramer_von_mises", "mannw", "TVD"})
#: Kaizen's method names that Evidently spells differently.
_EVIDENTLY_NAME = {"energy": "ed"}


@dataclass(frozen=True)
class ColumnDriftResult:
    """Drift of one column: Evidently's score and verdict under ``method`` and ``threshold``."""

    column: str
    method: str
    threshold: float
    score: float
    drifted: bool

    def to_dict(self) -> dict[str, Any]:
        return {"column": self.column, "method": self.method, "threshold": float(self.threshold),
                "score": _num(self.score), "drifted": bool(self.drifted)}


@dataclass(frozen=True)
class MonitorResult:
    """What one monitoring pass measured on the current window. Immutable once returned."""

    rows: int
    labelled_rows: int
    columns: tuple[ColumnDriftResult, ...]
    drift_share: float
    prediction_drift: ColumnDriftResult | None
    metric: str
    champion_metric: float | None
    report_path: Path | None
    sampled: bool

    @property
    def drifted_columns(self) -> tuple[str, ...]:
        return tuple(c.column for c in self.columns if c.drifted)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": int(self.rows),
            "labelled_rows": int(self.labelled_rows),
            "columns": [c.to_dict() for c in self.columns],
            "drift_share": _num(self.drift_share),
            "drifted_columns": list(self.drifted_columns),
            "prediction_drift": None if self.prediction_drift is None else self.prediction_drift.to_dict(),
            "metric": self.metric,
            "champion_metric": _num(self.champion_metric),
            "report_path": None if self.report_path is None else str(self.report_path),
            "sampled": bool(self.sampled),
        }


def run_monitor(reference: pd.DataFrame, current: pd.DataFrame, *, schema: Schema, policy: Policy,
                reference_predictions: Predictions | None = None,
                current_predictions: Predictions | None = None,
                report_path: Path | None = None, max_rows: int | None = 50_000,
                seed: int = 0) -> MonitorResult:
    """Measure drift of ``current`` against ``reference`` and the champion's metric on ``current``.

    Predictions are the champion's, aligned row by row with their frame. Frames
    longer than ``max_rows`` are down-sampled (rows drawn with
    ``numpy.random.default_rng(seed)``; the same rows of the predictions), and
    so are the labelled rows used for the metric. ``rows`` and
    ``labelled_rows`` count the whole current window. With ``report_path``,
    one Evidently HTML report is written there.
    """
    if max_rows is not None and (isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1):
        raise ValueError(f"The 'max_rows' parameter of run_monitor must be a positive integer or None. "
                         f"Got {max_rows!r} instead.")
    for name, frame, preds in (("reference", reference, reference_predictions),
                               ("current", current, current_predictions)):
        missing = [c for c in schema.features if c not in frame.columns]
        if missing:
            raise DataError(f"{name} frame is missing feature column(s) {', '.join(map(repr, missing))}")
        if len(frame) == 0:
            raise DataError(f"{name} frame has no rows")
        if preds is not None and len(preds) != len(frame):
            raise ValueError(f"The '{name}_predictions' parameter of run_monitor must have one entry per row "
                             f"of {name} ({len(frame)}). Got {len(preds)} instead.")

    rng = np.random.default_rng(seed)
    ref, ref_pred, ref_sampled = _sample(reference, reference_predictions, max_rows, rng)
    cur, cur_pred, cur_sampled = _sample(current, current_predictions, max_rows, rng)

    if schema.target in current.columns:
        labelled_mask = current[schema.target].notna().to_numpy()
    else:
        labelled_mask = np.zeros(len(current), dtype=bool)
    lab_idx = np.flatnonzero(labelled_mask)
    lab_sampled = False
    if max_rows is not None and len(lab_idx) > max_rows:
        lab_idx = np.sort(rng.choice(lab_idx, size=max_rows, replace=False))
        lab_sampled = True

    with _quiet():
        drift_cols, pred_drift, drift_snap = _drift(ref, cur, ref_pred, cur_pred,
                                                    schema=schema, policy=policy)
        champion, perf_snap = (None, None)
        if current_predictions is not None and len(lab_idx):
            champion, perf_snap = _performance(
                current[schema.target].to_numpy()[lab_idx], _take(current_predictions, lab_idx), policy.model)
        written = None
        if report_path is not None:
            written = _save_html(Path(report_path), [s for s in (drift_snap, perf_snap) if s is not None])

    drifted = sum(c.drifted for c in drift_cols)
    return MonitorResult(
        rows=len(current),
        labelled_rows=int(labelled_mask.sum()),
        columns=tuple(drift_cols),
        drift_share=drifted / len(drift_cols) if drift_cols else 0.0,
        prediction_drift=pred_drift,
        metric=policy.model.metric,
        champion_metric=champion,
        report_path=written,
        sampled=ref_sampled or cur_sampled or lab_sampled,
    )


# --- drift -------------------------------------------------------------------------------------


def _drift(ref: pd.DataFrame, cur: pd.DataFrame, ref_pred: Predictions | None, cur_pred: Predictions | None,
           *, schema: Schema, policy: Policy
           ) -> tuple[list[ColumnDriftResult], ColumnDriftResult | None, Any]:
    """Per-feature drift and prediction drift, from one Evidently report with tests."""
    trig = policy.trigger
    numerical = set(schema.numerical)
    # result name -> (column in the Evidently frames, method and threshold, column kind)
    plan: dict[str, tuple[str, ColumnDrift, str]] = {}
    for c in schema.features:
        kind = "numerical" if c in numerical else "categorical"
        spec = _fit_method(c, kind, trig.drift_for(c), explicit=c in trig.columns, policy=policy)
        plan[c] = (c, spec, kind)

    ref_frame = ref[list(schema.features)].reset_index(drop=True)
    cur_frame = cur[list(schema.features)].reset_index(drop=True)
    with_pred = trig.prediction_drift and ref_pred is not None and cur_pred is not None
    if with_pred:
        ref_values, cur_values = _prediction_values(ref_pred), _prediction_values(cur_pred)
        kind = "numerical" if _is_numeric(ref_values) and _is_numeric(cur_values) else "categorical"
        frame_col = PREDICTION
        while frame_col in ref_frame.columns:
            frame_col = f"_{frame_col}"
        ref_frame[frame_col], cur_frame[frame_col] = ref_values, cur_values
        default = ColumnDrift(trig.prediction_drift_method, trig.prediction_drift_threshold)
        spec = _fit_method(PREDICTION, kind, default, explicit=False, policy=policy)
        plan[PREDICTION] = (frame_col, spec, kind)

    results: dict[str, ColumnDriftResult] = {}
    measured: dict[str, str] = {}  # frame column -> result name
    for name, (col, spec, _kind) in plan.items():
        ref_empty, cur_empty = ref_frame[col].isna().all(), cur_frame[col].isna().all()
        if ref_empty or cur_empty:
            results[name] = ColumnDriftResult(name, spec.method, float(spec.threshold), math.nan,
                                              bool(ref_empty != cur_empty))
        else:
            measured[col] = name

    snapshot = None
    if measured:
        from evidently import DataDefinition, Dataset, Report
        from evidently.metrics import ValueDrift

        kinds = {col: plan[name][2] for col, name in measured.items()}
        dd = DataDefinition(numerical_columns=[c for c, k in kinds.items() if k == "numerical"],
                            categorical_columns=[c for c, k in kinds.items() if k == "categorical"])
        cols = list(measured)
        metrics = []
        for col in cols:
            spec = plan[measured[col]][1]
            metrics.append(ValueDrift(column=col, method=_EVIDENTLY_NAME.get(spec.method, spec.method),
                                      threshold=float(spec.threshold)))
        snapshot = Report(metrics, include_tests=True).run(
            Dataset.from_pandas(cur_frame[cols], data_definition=dd),
            Dataset.from_pandas(ref_frame[cols], data_definition=dd))
        out = json.loads(snapshot.json())
        scores = {m["config"]["column"]: m["value"] for m in out["metrics"]
                  if m["config"]["type"].endswith(":ValueDrift")}
        failed = {t["metric_config"]["params"]["column"]: t["status"] == "FAIL" for t in out["tests"]
                  if t["metric_config"]["params"]["type"].endswith(":ValueDrift")}
        for col, name in measured.items():
            spec = plan[name][1]
            score = scores.get(col)
            results[name] = ColumnDriftResult(name, spec.method, float(spec.threshold),
                                              math.nan if score is None else float(score),
                                              failed.get(col, False))

    columns = [results[c] for c in schema.features]
    return columns, results.get(PREDICTION) if with_pred else None, snapshot


def _fit_method(column: str, kind: str, spec: ColumnDrift, *, explicit: bool, policy: Policy) -> ColumnDrift:
    """``spec`` if Evidently applies it to a ``kind`` column, else the same-family fallback (module doc)."""
    wrong = _NUMERICAL_ONLY if kind == "categorical" else _CATEGORICAL_ONLY
    if spec.method not in wrong:
        return spec
    if explicit:
        allowed = [m for m in DRIFT_METHODS if m not in wrong]
        raise PolicyError(str(policy.path), [
            f"trigger.columns.{column}.method {spec.method!r} does not apply to {kind} column {column!r}; "
            f"use one of {', '.join(map(repr, allowed))}"])
    if spec.method in _PVALUE:
        return ColumnDrift("chisquare" if kind == "categorical" else "ks", spec.threshold)
    return ColumnDrift("jensenshannon", spec.threshold)


def _prediction_values(p: Predictions) -> np.ndarray:
    return np.asarray(p.scores if p.scores is not None else p.labels)


def _is_numeric(values: np.ndarray) -> bool:
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


# --- performance -------------------------------------------------------------------------------


def _performance(y_true: np.ndarray, preds: Predictions, model: ModelSpec) -> tuple[float | None, Any]:
    """The champion's ``model.metric`` on labelled rows, by Evidently; None where it is undefined."""
    from evidently import BinaryClassification, DataDefinition, Dataset, Regression, Report
    from evidently.metrics import MAE, RMSE, Accuracy, F1Score, R2Score, RocAuc

    metric = model.metric
    if model.task == "regression":
        frame = pd.DataFrame({"target": np.asarray(y_true, dtype=float),
                              "prediction": np.asarray(preds.labels, dtype=float)})
        dd = DataDefinition(regression=[Regression(target="target", prediction="prediction")])
        ev = {"rmse": RMSE, "mae": MAE, "r2": R2Score}[metric]()
    else:
        y = (pd.Series(y_true) == model.positive_label).to_numpy().astype(int)
        labels = (pd.Series(np.asarray(preds.labels)) == model.positive_label).to_numpy().astype(int)
        if metric == "roc_auc":
            if len(np.unique(y)) < 2:
                return None, None
            # Evidently ignores labels once probas are set, so each metric gets one input only.
            probas = labels.astype(float) if preds.scores is None else np.asarray(preds.scores, dtype=float)
            frame = pd.DataFrame({"target": y, "proba": probas})
            dd = DataDefinition(classification=[BinaryClassification(
                target="target", prediction_probas="proba", pos_label=1)])
            ev = RocAuc()
        else:
            frame = pd.DataFrame({"target": y, "prediction": labels})
            dd = DataDefinition(classification=[BinaryClassification(
                target="target", prediction_labels="prediction", pos_label=1)])
            ev = {"accuracy": Accuracy, "f1": F1Score}[metric]()
    snapshot = Report([ev]).run(Dataset.from_pandas(frame, data_definition=dd), None)
    wanted = f":{type(ev).__name__}"
    metrics = json.loads(snapshot.json())["metrics"]
    value = next(m["value"] for m in metrics if m["config"]["type"].endswith(wanted))
    if isinstance(value, dict):  # MAE gives {"mean", "std"} of the absolute errors
        value = value["mean"]
    value = None if value is None else float(value)
    return (None if value is None or math.isnan(value) else value), snapshot


# --- report, sampling, helpers -----------------------------------------------------------------


def _save_html(path: Path, snapshots: Sequence[Any]) -> Path | None:
    """Write the snapshots' widgets (and the drift tests) as one Evidently HTML page."""
    if not snapshots:
        return None
    from evidently.core.report import Snapshot

    merged = snapshots[0].to_snapshot_model()
    for other in snapshots[1:]:
        model = other.to_snapshot_model()
        merged.widgets = [*merged.widgets, *model.widgets]
        merged.tests_widgets = [*merged.tests_widgets, *model.tests_widgets]
        merged.metric_results = {**merged.metric_results, **model.metric_results}
        merged.top_level_metrics = [*merged.top_level_metrics, *model.top_level_metrics]
    path.parent.mkdir(parents=True, exist_ok=True)
    Snapshot.load_model(merged).save_html(str(path))  # a Path would silently write nothing
    return path


def _sample(frame: pd.DataFrame, preds: Predictions | None, max_rows: int | None,
            rng: np.random.Generator) -> tuple[pd.DataFrame, Predictions | None, bool]:
    if max_rows is None or len(frame) <= max_rows:
        return frame, preds, False
    idx = np.sort(rng.choice(len(frame), size=max_rows, replace=False))
    return frame.iloc[idx], (None if preds is None else _take(preds, idx)), True


def _take(p: Predictions, idx: np.ndarray) -> Predictions:
    return Predictions(np.asarray(p.labels)[idx], None if p.scores is None else np.asarray(p.scores)[idx])


def _num(v: float | None) -> float | None:
    if v is None:
        return None
    v = float(v)
    return None if math.isnan(v) else v


@contextmanager
def _quiet() -> Iterator[None]:
    """Mute Evidently's (and its sklearn/scipy calls') warnings for the duration of the pass only."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        yield
