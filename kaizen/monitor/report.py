"""Evidently's HTML report of a monitoring pass, built only for the cycles that need one.

:func:`run_monitor` computes the verdicts without Evidently's ``Report``;
this module builds that ``Report`` (one ``ValueDrift`` per feature with its
tests, prediction drift, the champion's metric) over the same rows, for a
person to read. It costs about a second and a half on 20 columns, so the
policy decides when (``[monitor] report``, ``report_every``):
:func:`should_write_report`.
"""

from __future__ import annotations

from collections.abc import Sequence
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
)
from kaizen.monitor.profile import (
    CURRENT_STREAM,
    LABELLED_STREAM,
    REFERENCE_STREAM,
    clean,
    sample_index,
    take,
)
from kaizen.policy import ModelSpec, Policy

__all__ = ["should_write_report", "write_report"]


def should_write_report(policy: Policy, triggered: bool, quiet_cycles_since_last_report: int) -> bool:
    """Whether this cycle writes Evidently's HTML report, under ``policy.monitor``.

    ``triggered``: the cycle's trigger fired (it would improve). ``quiet_cycles_since_last_report``:
    quiet cycles that ran since the last cycle that wrote a report, not counting this one.
    ``"always"``: every cycle. ``"never"``: none. ``"on_trigger"``: triggered cycles, and, when
    ``report_every`` = N > 0, a quiet cycle that is the Nth quiet one since the last report.
    """
    if isinstance(quiet_cycles_since_last_report, bool) or not isinstance(quiet_cycles_since_last_report, int) \
            or quiet_cycles_since_last_report < 0:
        raise ValueError(f"The 'quiet_cycles_since_last_report' parameter of should_write_report must be an "
                         f"integer >= 0. Got {quiet_cycles_since_last_report!r} instead.")
    mode, every = policy.monitor.report, policy.monitor.report_every
    if mode == "always":
        return True
    if mode == "never":
        return False
    return bool(triggered) or (every > 0 and quiet_cycles_since_last_report + 1 >= every)


def write_report(reference: pd.DataFrame, current: pd.DataFrame, *, schema: Schema, policy: Policy,
                 reference_predictions: Predictions | None, current_predictions: Predictions | None,
                 path: Path, seed: int = 0) -> Path:
    """Build the Evidently report of ``current`` against ``reference`` and save it as HTML at ``path``.

    The same rows as :func:`~kaizen.monitor.drift.run_monitor` with the same ``seed`` (frames
    above ``policy.monitor.max_rows`` sampled alike), the same methods and thresholds. Folders
    are created. Raises :class:`DataError` when no column can be compared and no metric computed.
    """
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift

    max_rows = policy.monitor.max_rows
    ref_idx = sample_index(len(reference), max_rows, seed, REFERENCE_STREAM)
    cur_idx = sample_index(len(current), max_rows, seed, CURRENT_STREAM)
    ref = reference if ref_idx is None else reference.iloc[ref_idx]
    cur = current if cur_idx is None else current.iloc[cur_idx]
    planned = plan_columns(schema, policy)
    ref_frame = ref[list(schema.features)].reset_index(drop=True)
    cur_frame = cur[list(schema.features)].reset_index(drop=True)
    frame_col = {p.name: p.name for p in planned}
    if policy.trigger.prediction_drift and reference_predictions is not None and current_predictions is not None:
        ref_values = prediction_values(reference_predictions if ref_idx is None
                                       else take(reference_predictions, ref_idx))
        cur_values = prediction_values(current_predictions if cur_idx is None
                                       else take(current_predictions, cur_idx))
        col = PREDICTION
        while col in ref_frame.columns:
            col = f"_{col}"
        ref_frame[col], cur_frame[col] = ref_values, cur_values
        planned.append(plan_prediction(ref_values, cur_values, policy))
        frame_col[PREDICTION] = col

    # Evidently refuses a column that is empty on one side (run_monitor reports it as drifted).
    measured: list[Planned] = [p for p in planned if not clean(ref_frame[frame_col[p.name]]).empty
                               and not clean(cur_frame[frame_col[p.name]]).empty]
    snapshots = []
    with np.errstate(all="ignore"):
        if measured:
            cols = [frame_col[p.name] for p in measured]
            dd = DataDefinition(
                numerical_columns=[frame_col[p.name] for p in measured if p.kind == NUMERICAL],
                categorical_columns=[frame_col[p.name] for p in measured if p.kind != NUMERICAL])
            metrics = [ValueDrift(column=frame_col[p.name], method=p.evidently_method,
                                  threshold=float(p.drift.threshold)) for p in measured]
            snapshots.append(Report(metrics, include_tests=True).run(
                Dataset.from_pandas(cur_frame[cols], data_definition=dd),
                Dataset.from_pandas(ref_frame[cols], data_definition=dd)))
        if current_predictions is not None and schema.target in current.columns:
            lab_idx = np.flatnonzero(current[schema.target].notna().to_numpy())
            pick = sample_index(len(lab_idx), max_rows, seed, LABELLED_STREAM)
            if pick is not None:
                lab_idx = lab_idx[pick]
            if len(lab_idx):
                perf = _performance_snapshot(current[schema.target].to_numpy()[lab_idx],
                                            take(current_predictions, lab_idx), policy.model)
                if perf is not None:
                    snapshots.append(perf)
    if not snapshots:
        raise DataError(f"cannot write the monitoring report {path}: no column has values on both sides "
                        "and no labelled row has a prediction")
    return _save_html(Path(path), snapshots)


def _performance_snapshot(y_true: np.ndarray, preds: Predictions, model: ModelSpec) -> Any:
    """An Evidently report of the champion's ``model.metric`` on labelled rows; None if undefined.

    Evidently ignores labels once probabilities are set, so each metric gets one input only:
    roc_auc the scores (the labels when there are none), accuracy and f1 the labels.
    """
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
                return None
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
    return Report([ev]).run(Dataset.from_pandas(frame, data_definition=dd), None)


def _save_html(path: Path, snapshots: Sequence[Any]) -> Path:
    """Write the snapshots' widgets (and the drift tests) as one Evidently HTML page."""
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
