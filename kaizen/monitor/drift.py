"""One monitoring pass over a window: feature drift, prediction drift and champion performance.

Every drift statistic is Evidently's: each column is compared by the
registered Evidently ``StatTest`` of its method (``evidently.legacy.
calculations.stattests``), called directly on the two cleaned columns, which
is what one ``ValueDrift`` metric of an Evidently ``Report`` runs, minus the
report machinery (about 70 ms per metric for widgets, histograms and
correlations); ``tests/monitor/test_fast_drift.py`` checks that the scores
and verdicts are equal to the Report's for every method. The champion's
metric on the labelled rows is :func:`kaizen.metrics.score` (scikit-learn),
the number the gates and backtests use. The Evidently HTML report is built
only on request, by :func:`kaizen.monitor.report.write_report`.

Methods and column kinds are matched as described in
:mod:`kaizen.monitor.methods`. The reference side (sampled, cleaned columns)
can be prepared once per reference and cached: :mod:`kaizen.monitor.profile`.

A column that is entirely missing on one side cannot be compared; it is
reported as drifted (its values vanished or appeared) with a NaN score.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kaizen.data.predictions import Predictions
from kaizen.data.schema import Schema
from kaizen.errors import DataError
from kaizen.monitor.methods import (
    NUMERICAL,
    PREDICTION,
    Planned,
    plan_columns,
    plan_prediction,
    prediction_values,
    stattest,
)
from kaizen.monitor.profile import (
    CURRENT_STREAM,
    LABELLED_STREAM,
    REFERENCE_PROFILES,
    SAMPLING,
    ReferenceCache,
    clean,
    profile_reference,
    sample_index,
    take,
)
from kaizen.policy import ModelSpec, Policy

__all__ = ["ColumnDriftResult", "MonitorResult", "MonitorSample", "run_monitor"]


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
class MonitorSample:
    """The rows one monitoring pass compared: each side's rows given and rows used.

    A side longer than ``max_rows`` is cut to ``max_rows`` rows drawn as ``how`` says
    (:func:`~kaizen.monitor.profile.sample_index`: time-stratified, seeded by ``seed``); the
    reference, the window and its labelled rows (the champion's metric) each on their own stream.
    """

    seed: int
    max_rows: int | None
    how: str
    reference_rows: int
    reference_compared: int
    current_rows: int
    current_compared: int
    labelled_rows: int
    labelled_compared: int

    def to_dict(self) -> dict[str, Any]:
        return {"seed": self.seed, "max_rows": self.max_rows, "how": self.how,
                "reference": {"rows": int(self.reference_rows), "compared": int(self.reference_compared)},
                "current": {"rows": int(self.current_rows), "compared": int(self.current_compared)},
                "labelled": {"rows": int(self.labelled_rows), "compared": int(self.labelled_compared)}}


@dataclass(frozen=True)
class MonitorResult:
    """What one monitoring pass measured on the current window. Immutable once returned.

    ``reference_cached`` (not part of :meth:`to_dict`) says whether the reference side came
    from the profile cache. ``sampled`` says whether any side was cut to ``[monitor] max_rows``
    rows; ``sample`` says how and how many (:class:`MonitorSample`).
    """

    rows: int
    labelled_rows: int
    columns: tuple[ColumnDriftResult, ...]
    drift_share: float
    prediction_drift: ColumnDriftResult | None
    metric: str
    champion_metric: float | None
    report_path: Path | None
    sampled: bool
    reference_cached: bool = False
    #: figures computed beside the monitor by the cycle (not part of :meth:`to_dict`; the signals record them):
    #: ``"estimate"`` (:class:`kaizen.monitor.estimate.Estimate`), ``"target_drift"`` (a :class:`ColumnDriftResult`)
    extras: Any = None
    #: which rows were compared: the seed, ``max_rows``, how they were drawn and how many of each side
    sample: MonitorSample | None = None

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
            "sample": None if self.sample is None else self.sample.to_dict(),
        }


def run_monitor(reference: pd.DataFrame, current: pd.DataFrame, *, schema: Schema, policy: Policy,
                reference_predictions: Predictions | None = None,
                current_predictions: Predictions | None = None,
                reference_key: str | None = None, cache: ReferenceCache | None = None,
                report_path: Path | None = None, seed: int = 0) -> MonitorResult:
    """Measure drift of ``current`` against ``reference`` and the champion's metric on ``current``.

    Predictions are the champion's, aligned row by row with their frame. Frames longer than
    ``policy.monitor.max_rows`` are down-sampled, time-stratified and seeded by ``seed``
    (:func:`~kaizen.monitor.profile.sample_index`; the same rows of the predictions), and so are
    the labelled rows used for the metric; ``sample`` records how many rows of each side were
    compared. ``rows`` and ``labelled_rows`` count the whole current window.

    ``reference_key`` names the reference rows (same key, same rows): with it the prepared
    reference side is kept in ``cache`` (default: the process's
    :data:`~kaizen.monitor.profile.REFERENCE_PROFILES`) and reused by later calls. No Evidently
    report is built unless ``report_path`` is given, in which case
    :func:`~kaizen.monitor.report.write_report` writes it there (kept for callers of the old
    API; prefer calling ``write_report`` when :func:`~kaizen.monitor.report.should_write_report`
    says so).
    """
    _check_inputs(reference, current, schema, reference_predictions, current_predictions)
    max_rows = policy.monitor.max_rows
    plan = plan_columns(schema, policy)  # raises PolicyError before any work
    if reference_key is not None:
        store = REFERENCE_PROFILES if cache is None else cache  # an empty cache is falsy
        profile, cached = store.get(reference_key, reference, schema, max_rows=max_rows, seed=seed)
    else:
        profile, cached = profile_reference(reference, schema, max_rows=max_rows, seed=seed), False

    cur_idx = sample_index(len(current), max_rows, seed, CURRENT_STREAM)
    cur = current if cur_idx is None else current.iloc[cur_idx]
    with np.errstate(all="ignore"):
        columns = [_compare(p, profile.column(p.name), clean(cur[p.name])) for p in plan]
        pred_drift = None
        if policy.trigger.prediction_drift and reference_predictions is not None and current_predictions is not None:
            ref_values = prediction_values(profile.predictions(reference_predictions))
            cur_values = prediction_values(current_predictions if cur_idx is None
                                           else take(current_predictions, cur_idx))
            planned = plan_prediction(ref_values, cur_values, policy)
            pred_drift = _compare(planned, clean(pd.Series(ref_values)), clean(pd.Series(cur_values)))

    labelled = (current[schema.target].notna().to_numpy() if schema.target in current.columns
                else np.zeros(len(current), dtype=bool))
    lab_idx = np.flatnonzero(labelled)
    lab_pick = sample_index(len(lab_idx), max_rows, seed, LABELLED_STREAM)
    if lab_pick is not None:
        lab_idx = lab_idx[lab_pick]
    champion = None
    if current_predictions is not None and len(lab_idx):
        champion = _performance(current[schema.target].to_numpy()[lab_idx], take(current_predictions, lab_idx),
                                policy.model)

    written = None
    if report_path is not None:
        from kaizen.monitor.report import write_report

        written = write_report(reference, current, schema=schema, policy=policy,
                               reference_predictions=reference_predictions,
                               current_predictions=current_predictions, path=Path(report_path), seed=seed)
    drifted = sum(c.drifted for c in columns)
    return MonitorResult(
        rows=len(current),
        labelled_rows=int(labelled.sum()),
        columns=tuple(columns),
        drift_share=drifted / len(columns) if columns else 0.0,
        prediction_drift=pred_drift,
        metric=policy.model.metric,
        champion_metric=champion,
        report_path=written,
        sampled=profile.sampled or cur_idx is not None or lab_pick is not None,
        reference_cached=cached,
        sample=MonitorSample(
            seed=seed, max_rows=max_rows, how=SAMPLING,
            reference_rows=profile.rows,
            reference_compared=profile.rows if profile.index is None else len(profile.index),
            current_rows=len(current), current_compared=len(current) if cur_idx is None else len(cur_idx),
            labelled_rows=int(labelled.sum()), labelled_compared=len(lab_idx)),
    )


def _compare(planned: Planned, ref: pd.Series, cur: pd.Series) -> ColumnDriftResult:
    """Evidently's stattest on two cleaned columns; an empty side is drift with a NaN score."""
    spec = planned.drift
    if ref.empty or cur.empty:
        return ColumnDriftResult(planned.name, spec.method, float(spec.threshold), math.nan, ref.empty != cur.empty)
    if planned.kind == NUMERICAL:
        for side, values in (("reference", ref), ("current", cur)):
            if not pd.api.types.is_numeric_dtype(values):
                what = "the champion's predictions" if planned.name == PREDICTION else f"column {planned.name!r}"
                raise DataError(f"{side} {what} must be numeric for drift method {spec.method!r}; "
                                f"got dtype {values.dtype}")
    result = stattest(planned)(ref, cur, _column_type(planned.kind), float(spec.threshold))
    return ColumnDriftResult(planned.name, spec.method, float(spec.threshold), float(result.drift_score),
                             bool(result.drifted))


def _column_type(kind: str) -> Any:
    from evidently.legacy.core import ColumnType

    return ColumnType.Numerical if kind == NUMERICAL else ColumnType.Categorical


def _performance(y_true: np.ndarray, preds: Predictions, model: ModelSpec) -> float | None:
    """The champion's ``model.metric`` on labelled rows (kaizen.metrics); None where it is undefined."""
    from kaizen.metrics import score

    value = score(model.metric, y_true, np.asarray(preds.labels), preds.scores, pos_label=model.positive_label)
    return None if math.isnan(value) else value


def _check_inputs(reference: pd.DataFrame, current: pd.DataFrame, schema: Schema,
                  reference_predictions: Predictions | None, current_predictions: Predictions | None) -> None:
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


def _num(v: float | None) -> float | None:
    if v is None:
        return None
    v = float(v)
    return None if math.isnan(v) else v

