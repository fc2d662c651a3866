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

__all__ = ["build_snapshot", "render_report", "should_write_report", "write_report", "write_snapshot"]


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


def build_snapshot(reference: pd.DataFrame, current: pd.DataFrame, *, schema: Schema, policy: Policy,
                   reference_predictions: Predictions | None, current_predictions: Predictions | None,
                   seed: int = 0, first: Sequence[str] = (), name: str | None = None) -> Any:
    """Evidently's result of ``current`` against ``reference``: one :class:`evidently.core.report.Snapshot`.

    The same rows as :func:`~kaizen.monitor.drift.run_monitor` with the same ``seed`` (frames
    above ``policy.monitor.max_rows`` sampled alike), the same methods and thresholds. The champion's
    performance on the labelled rows comes first, then one ``ValueDrift`` per column, the columns named in
    ``first`` (the drifted ones) before the others. Raises :class:`DataError` when no column can be
    compared and no metric computed.
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
    order = {c: i for i, c in enumerate(first)}
    measured.sort(key=lambda p: order.get(p.name, len(order)))  # stable: the drifted first, else the policy's order
    snapshots = []
    with np.errstate(all="ignore"):
        if current_predictions is not None and schema.target in current.columns \
                and len(current_predictions) == len(current):
            lab_idx = np.flatnonzero(current[schema.target].notna().to_numpy())
            pick = sample_index(len(lab_idx), max_rows, seed, LABELLED_STREAM)
            if pick is not None:
                lab_idx = lab_idx[pick]
            if len(lab_idx):
                perf = _performance_snapshot(current[schema.target].to_numpy()[lab_idx],
                                            take(current_predictions, lab_idx), policy.model)
                if perf is not None:
                    snapshots.append(perf)
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
    if not snapshots:
        raise DataError("cannot build the monitoring report: no column has values on both sides "
                        "and no labelled row has a prediction")
    return _merge(snapshots, name)


def write_report(reference: pd.DataFrame, current: pd.DataFrame, *, schema: Schema, policy: Policy,
                 reference_predictions: Predictions | None, current_predictions: Predictions | None,
                 path: Path, seed: int = 0, first: Sequence[str] = ()) -> Path:
    """:func:`build_snapshot`, saved as Evidently's own HTML page at ``path`` (folders are created).

    A cycle stores the snapshot instead (:func:`write_snapshot`): the page is rendered when asked for
    (:func:`render_report`)."""
    try:
        snap = build_snapshot(reference, current, schema=schema, policy=policy, seed=seed, first=first,
                              reference_predictions=reference_predictions, current_predictions=current_predictions)
    except DataError as exc:
        raise DataError(str(exc).replace("cannot build the monitoring report:",
                                         f"cannot write the monitoring report {path}:")) from exc
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    snap.save_html(str(path))  # a Path would silently write nothing
    return path


def write_snapshot(snapshot: Any, path: Path) -> Path:
    """Save ``snapshot`` (:func:`build_snapshot`) as Evidently's JSON at ``path``: what
    :func:`render_report` and ``evidently ui`` read back."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(snapshot.dumps(), encoding="utf-8")
    return path


def _merge(snapshots: Sequence[Any], name: str | None) -> Any:
    """The snapshots' widgets, tests and results as one Evidently snapshot, in order."""
    from evidently.core.report import Snapshot

    merged = snapshots[0].to_snapshot_model()
    for other in snapshots[1:]:
        model = other.to_snapshot_model()
        merged.widgets = [*merged.widgets, *model.widgets]
        merged.tests_widgets = [*merged.tests_widgets, *model.tests_widgets]
        merged.metric_results = {**merged.metric_results, **model.metric_results}
        merged.top_level_metrics = [*merged.top_level_metrics, *model.top_level_metrics]
    snap = Snapshot.load_model(merged)
    if name:
        snap.set_name(name)
    return snap


def _performance_snapshot(y_true: np.ndarray, preds: Predictions, model: ModelSpec) -> Any:
    """An Evidently report of the champion's ``model.metric`` on labelled rows; None if undefined.

    Evidently ignores labels once probabilities are set, so each metric gets one input only:
    roc_auc the scores (the labels when there are none), accuracy and f1 the labels. Multiclass: the
    labels (as text), with Evidently's macro F1 for f1_macro and its macro recall for balanced_accuracy
    (the same number unless a class is predicted that the rows lack).
    """
    from evidently import BinaryClassification, DataDefinition, Dataset, MulticlassClassification, Regression, Report
    from evidently.metrics import MAE, RMSE, Accuracy, F1Score, R2Score, Recall, RocAuc

    metric = model.metric
    if model.task == "multiclass_classification":  # labels only; balanced accuracy is the macro recall
        frame = pd.DataFrame({"target": pd.Series(y_true).astype(str).to_numpy(),
                              "prediction": pd.Series(np.asarray(preds.labels)).astype(str).to_numpy()})
        dd = DataDefinition(classification=[MulticlassClassification(target="target", prediction_labels="prediction")])
        ev = {"accuracy": Accuracy, "f1_macro": F1Score, "balanced_accuracy": Recall}[metric]()
    elif model.task == "regression":
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


# -- the page people open: the answer first, then Evidently's widgets -------------------------------------------

_STYLE = ("<style>.kz{font:14px/1.45 system-ui,sans-serif;color:#1f2328;max-width:1100px;margin:16px auto;"
          "padding:0 16px}.kz h1{font-size:20px;margin:0 0 4px}.kz .sub{color:#57606a;margin:0 0 12px}"
          ".kz table{border-collapse:collapse;margin:6px 0 14px}.kz td,.kz th{border-bottom:1px solid #d0d7de;"
          "padding:3px 10px;text-align:left}.kz th{background:#f6f8fa}.kz .bad{color:#b42318;font-weight:600}"
          ".kz .ok{color:#1a7f37}.kz .answer{font-size:16px;margin:8px 0}.kz h2{font-size:16px;margin:14px 0 4px}"
          "</style>")


def _fmt(v: Any, digits: int = 4) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return "–" if v != v else f"{v:.{digits}f}"
    return str(v)


def report_summary(record: Any) -> str:
    """The report's first screen as HTML, from the cycle's record alone: title (policy, champion version, cycle,
    window), the answer (decision and its first reason), drifted columns and share, the per-column table (drifted
    first), the champion's metric against its baseline and each trigger signal's verdict."""
    from html import escape

    def get(name: str) -> Any:
        return record.get(name) if isinstance(record, dict) else getattr(record, name, None)

    trig, win, champ = dict(get("trigger") or {}), dict(get("window") or {}), dict(get("champion") or {})
    mon = dict(trig.get("monitor") or {})
    batches = list(win.get("batches") or [])
    window = (batches[0] + (f" … {batches[-1]}" if len(batches) > 1 else "")) if batches else "–"
    title = (f"{get('policy')} · champion v{champ.get('version', '?')} · cycle {get('id')} · window {window} "
             f"({len(batches)} batch{'es' if len(batches) != 1 else ''}, {mon.get('rows', '–')} rows)")
    reasons = list(get("reasons") or [])
    cols = sorted(mon.get("columns") or [], key=lambda c: (not c.get("drifted"), c.get("column", "")))
    if mon.get("prediction_drift"):
        cols.append({**mon["prediction_drift"], "column": f"{mon['prediction_drift'].get('column')} (prediction)"})
    drifted = [c["column"] for c in mon.get("columns") or [] if c.get("drifted")]
    share = mon.get("drift_share")
    rows = "".join(
        f"<tr><td>{escape(str(c.get('column')))}</td><td>{escape(str(c.get('method')))}</td>"
        f"<td>{_fmt(c.get('score'))}</td><td>{_fmt(c.get('threshold'))}</td>"
        f"<td class=\"{'bad' if c.get('drifted') else 'ok'}\">{'drifted' if c.get('drifted') else 'stable'}</td></tr>"
        for c in cols)
    metric = mon.get("metric") or ""
    base, now = trig.get("baseline"), mon.get("champion_metric")
    signals = "".join(
        f"<tr><td>{escape(str(s.get('rule')))}</td><td>{_fmt(s.get('value'))}</td><td>{_fmt(s.get('threshold'))}</td>"
        f"<td class=\"{'bad' if s.get('fired') else 'ok'}\">"
        f"{escape(str(s.get('verdict') or ('fired' if s.get('fired') else 'quiet')))}</td></tr>"
        for s in trig.get("signals") or [])
    parts = [
        '<section class="kz" id="kaizen-summary">', f"<h1>{escape(title)}</h1>",
        f'<p class="sub">decision <b>{escape(str(get("decision")))}</b> at {escape(str(get("time") or ""))}; '
        f'trigger action <b>{escape(str(trig.get("action", "–")))}</b></p>',
        f'<p class="answer">{escape(reasons[0]) if reasons else ""}</p>',
        f'<h2>Data drift: {len(drifted)} of {len(mon.get("columns") or [])} columns drifted '
        f'(share {_fmt(share, 3)})</h2>',
        f"<p>{escape(', '.join(drifted)) or 'no column drifted'}</p>",
        "<table><tr><th>column</th><th>method</th><th>score</th><th>threshold</th><th>verdict</th></tr>"
        f"{rows}</table>",
        f"<h2>Champion's {escape(metric)}: {_fmt(now)} on this window against a baseline of {_fmt(base)}</h2>",
        f"<p>{mon.get('labelled_rows', '–')} labelled rows in the window.</p>",
    ]
    if signals:
        parts.append("<table><tr><th>trigger signal</th><th>value</th><th>threshold</th><th>verdict</th></tr>"
                     f"{signals}</table>")
    parts.append("<h2>Evidently: the champion's performance, then each column (drifted first)</h2></section>")
    return _STYLE + "".join(parts)


def render_report(snapshot_json: str, record: Any) -> str:
    """The page a person opens for a cycle: :func:`report_summary` of ``record``, then the widgets of the stored
    Evidently snapshot (:func:`write_snapshot`'s JSON), as one HTML page (Evidently's script inline)."""
    import re

    from evidently.core.report import Snapshot

    page = Snapshot.loads(snapshot_json).get_html_str(as_iframe=False)
    m = re.search(r"<body>\s*<div id=\"root_", page)
    at = m.start() + len("<body>") if m else 0
    return page[:at] + report_summary(record) + page[at:]
