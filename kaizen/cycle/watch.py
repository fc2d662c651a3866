"""The cycle's look at the window: what is new, the monitor, the trigger's inputs, the report, quiet logging.

Every function returns a value; none writes the record (the orchestrator, :mod:`kaizen.cycle`, does).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kaizen.data.frames import model_frame
from kaizen.data.window import Window
from kaizen.ledger import Record
from kaizen.policy import Policy

__all__ = ["Watch", "labelled_predictions", "local_path", "log_cycle_params", "log_monitor", "log_quiet",
           "log_window_input", "monitor_metrics", "monitor_window", "new_incidents", "new_problems", "nothing_to_do",
           "performance_baseline", "wants_report", "window_only", "write_cycle_report"]

log = logging.getLogger("kaizen.cycle")


@dataclass(frozen=True)
class Watch:
    """What the monitor saw: its result, the reference it compared with and both sides' champion predictions."""

    monitor: Any                  # kaizen.monitor.MonitorResult
    reference: pd.DataFrame
    reference_predictions: Any    # kaizen.registry.models.Predictions
    current_predictions: Any
    notes: dict[str, Any]         # for the record's window section


def window_only(policy: Policy) -> Policy:
    """The policy as a quiet cycle reads data: the window's batches, no history."""
    return dataclasses.replace(policy, data=dataclasses.replace(policy.data, max_history_batches=0))


def nothing_to_do(window: Window, last: Record | None, policy: Policy) -> str | None:
    """Why this cycle has nothing to look at (no valid batch, no new batch), or None.

    ``last``: the previous cycle that judged something (a cycle held by a data incident did not).
    """
    if window.current.empty:
        from kaizen.data.window import source_for

        where = source_for(policy).describe("production")
        if not window.rejected:
            return f"no production batches in {where}"
        return f"no valid production batches in {where} ({len(window.rejected)} rejected)"
    if last is None or last.decision == "failed":
        return None
    digest = getattr(window, "digest", None)
    if digest and last.window.get("digest"):
        if last.window["digest"] == digest:
            return (f"nothing new since cycle {last.id}: the same batches and labels "
                    f"(window {', '.join(window.batches)}; content digest {digest[:12]})")
        return None
    if list(last.window.get("batches", [])) == list(window.batches):
        return f"no new valid batches since cycle {last.id} (window {', '.join(window.batches)})"
    return None


def _incident_batches(window_summary: Any) -> set[str]:
    return {i.get("batch") for i in (window_summary or {}).get("incidents", ()) if isinstance(i, dict)}


def new_incidents(window: Window, last: Record | None) -> list[tuple[str, tuple[str, ...]]]:
    """Data incidents (a corrupted column: :mod:`kaizen.data.checks`) in batches the previous cycle did not report."""
    known = _incident_batches(last.window if last else {})
    return [(name, tuple(msgs)) for name, msgs in getattr(window, "incidents", ()) if name not in known]


def new_problems(window: Window, last: Record | None) -> tuple[list[str], list[str]]:
    """(rejected batches, other notes) the previous cycle did not report, one line each: batches rejected (data
    incidents excluded: they are reported as such), batch warnings, history rows dropped by a check."""
    lw = last.window if last else {}
    known = {b["batch"] for b in lw.get("rejected_batches", [])}
    incident = {name for name, _ in getattr(window, "incidents", ())}
    rejected = [f"batch {name} rejected: " + "; ".join(problems) for name, problems in window.rejected
                if name not in known and name not in incident]
    out: list[str] = []
    warned = {w["batch"] for w in lw.get("warnings", [])}
    for name, messages in window.warnings:
        if name not in warned:
            out.extend(f"batch {name}: warning: {m}" for m in messages)
    filtered = {(f["batch"], f["check"], f["column"]) for f in lw.get("filtered_rows", [])}
    for batch, check, column, rows in window.filtered:
        if (batch, check, column) not in filtered:
            out.append(f"batch {batch}: {rows} history row(s) dropped by check {check!r} on column {column!r}")
    dup = getattr(window, "duplicate_rows", 0)
    if dup:
        out.append(f"{dup} exact duplicate row(s) of rows already read were left out of the window before "
                   "monitoring (window.duplicates)")
    return rejected, out


def monitor_window(work: Any, policy: Policy, champion: Any, champ_model: Any, window: Window) -> Watch:
    """Fast drift and performance verdicts (no Evidently Report; that is written only when asked)."""
    from kaizen.monitor import run_monitor
    from kaizen.registry.champion import CACHE_DIR, monitor_reference, reference_predictions

    config, seed = work.config, work.seed
    cache = config.state_dir / CACHE_DIR / policy.name
    reference, ident, notes = monitor_reference(work.registry, champion, window.reference, policy, work.workdir,
                                                cache_dir=cache)
    ref_p, how = reference_predictions(champion, champ_model, reference, ident, window.schema,
                                       registry_uri=config.tracking_uri, cache_dir=cache)
    cur_p = champ_model.predict(model_frame(window.current, window.schema))
    mon = run_monitor(reference, window.current, schema=window.schema, policy=policy, reference_predictions=ref_p,
                      current_predictions=cur_p, reference_key=f"{config.tracking_uri}|{ident}", seed=seed,
                      cache=work.runtime.reference_profiles if work.runtime is not None else None)
    from kaizen.monitor.estimate import beside_monitor  # the label-free estimate and target drift, when armed

    extras = beside_monitor(policy, champion, champ_model, window, reference, ident, cur_p,
                            registry_uri=config.tracking_uri, cache_dir=cache)
    if extras:
        mon = dataclasses.replace(mon, extras=extras)
    return Watch(mon, reference, ref_p, cur_p, {**notes, "monitor_reference_predictions": how})


def labelled_predictions(policy: Policy, window: Window, cur_p: Any) -> tuple[np.ndarray, Any]:
    """(targets, the champion's predictions) of the window's labelled rows, in order."""
    from kaizen.data.predictions import Predictions

    target = window.schema.target
    cur = window.current
    mask = cur[target].notna().to_numpy() if target in cur.columns else np.zeros(len(cur), bool)
    y = cur[target].to_numpy()[mask]
    if policy.model.task == "regression":
        y = y.astype(float)
    pred = Predictions(np.asarray(cur_p.labels)[mask], None if cur_p.scores is None else np.asarray(cur_p.scores)[mask])
    return y, pred


def labelled_batches(window: Window) -> np.ndarray | None:
    """The batch of each of the window's labelled rows, in :func:`labelled_predictions`' order (None: unknown)."""
    sizes = tuple(getattr(window, "current_sizes", ()) or ())
    cur, target = window.current, window.schema.target
    if len(sizes) != len(window.batches) or sum(sizes) != len(cur):
        return None
    names = np.repeat(np.array(window.batches, dtype=object), sizes)
    mask = cur[target].notna().to_numpy() if target in cur.columns else np.zeros(len(cur), bool)
    return names[mask]


def wants_report(policy: Policy, triggered: bool, windows_since_report: int) -> bool:
    """Whether this cycle writes the Evidently report: it triggers, or the policy's cadence says so."""
    from kaizen.monitor.report import should_write_report

    return should_write_report(policy, triggered, windows_since_report)


def write_cycle_report(runlog: Any, policy: Policy, window: Window, watch: Watch, *, path: Path, seed: int | None,
                       cycle_id: str, workspace: Path | None = None) -> str | None:
    """The cycle's Evidently result as a snapshot (JSON, some hundred kB): kept in the cycle's MLflow run (``monitor/``)
    and added to the policy's project in the local Evidently ``workspace``; returns the artifact's URI (a plain path
    for a local store; None: no report). The page people open is rendered from it on request
    (:func:`kaizen.monitor.report.render_report`)."""
    from kaizen.monitor.report import build_snapshot, write_snapshot

    batches = list(window.batches)
    name = f"{cycle_id} · window {batches[0]}" + (f"..{batches[-1]}" if len(batches) > 1 else "") if batches \
        else cycle_id
    try:
        snap = build_snapshot(watch.reference, window.current, schema=window.schema, policy=policy,
                              reference_predictions=watch.reference_predictions,
                              current_predictions=watch.current_predictions, seed=seed or 0,
                              first=watch.monitor.drifted_columns, name=name)
        write_snapshot(snap, path)
    except Exception as exc:  # the report is evidence, not the decision: a cycle goes on without it
        log.warning("cycle %s: no Evidently report (%s: %s)", cycle_id, type(exc).__name__, exc)
        return None
    if workspace is not None:
        from kaizen.monitor.workspace import add_snapshot

        try:
            add_snapshot(workspace, policy.name, snap, name=cycle_id, metric=policy.model.metric)
        except Exception as exc:  # the MLflow artifact below is the one Kaizen's pages read
            log.warning("cycle %s: could not add the snapshot to the Evidently workspace %s: %s", cycle_id,
                        workspace, exc)
    return local_path(runlog.log_artifact(path, "monitor"))


def monitor_metrics(mon: Any, baseline: float | None = None) -> dict[str, float]:
    """The monitor's figures as MLflow metrics (finite ones only): drift share, drifted columns, the champion's
    metric on the window, prediction drift, the label-free estimate and target drift when armed (``mon.extras``)."""
    extras = getattr(mon, "extras", None) or {}
    est, target = extras.get("estimate"), extras.get("target_drift")
    values = {"drift_share": mon.drift_share, "drifted_columns": len(mon.drifted_columns),
              "champion_window_metric": mon.champion_metric,
              "prediction_drift": mon.prediction_drift.score if mon.prediction_drift is not None else None,
              "estimated_metric": getattr(est, "value", None),
              "target_drift": getattr(target, "score", None), "performance_baseline": baseline}
    return {k: float(v) for k, v in values.items() if v is not None and np.isfinite(v)}


def log_monitor(runlog: Any, mon: Any) -> None:
    runlog.log_metrics(monitor_metrics(mon))


def log_quiet(registry: Any, policy: Policy, champion: Any, mon: Any, *, cycle_id: str) -> dict[str, Any] | None:
    """The cycle's monitor figures as the next step of the policy's monitoring run (MLflow charts them over
    cycles); returns the record's ``monitoring_run_id`` and ``monitoring_step``, None when MLflow refused."""
    try:
        baseline = registry.baseline(policy.name)
    except Exception:  # the chart's baseline line is a courtesy
        baseline = None
    try:
        run_id, step = registry.log_monitoring(policy.name, monitor_metrics(mon, baseline),
                                               champion=str(champion.version), cycle_id=cycle_id)
    except Exception as exc:  # the promotion log is the record; the chart is a courtesy
        log.warning("cycle %s: could not log to the monitoring run: %s", cycle_id, exc)
        return None
    return {"monitoring_run_id": run_id, "monitoring_step": step}


def log_cycle_params(runlog: Any, policy: Policy, window: Window, champion: Any, decision: Any, *,
                     seed: int | None) -> None:
    """What the cycle's MLflow run was about, as run parameters: policy, seed, window, champion, the trigger."""
    try:
        fired = [s.get("rule") for s in decision.to_dict().get("signals", ()) if s.get("fired")]
        batches = list(window.batches)
        runlog.log_params({
            "policy": policy.name, "seed": seed, "task": policy.model.task, "metric": policy.model.metric,
            "window_batches": len(batches), "window_first": batches[0] if batches else "",
            "window_last": batches[-1] if batches else "", "window_rows": len(window.current),
            "champion_version": champion.version, "trigger_action": decision.to_dict().get("action", ""),
            "trigger_fired": ",".join(map(str, fired)) or "none",
            "trigger_drift_share": policy.trigger.drift_share,
            "trigger_performance_drop": policy.trigger.performance_drop,
        })
    except Exception as exc:  # evidence for people, not the decision
        log.warning("could not log the cycle's parameters: %s", exc)


def log_window_input(runlog: Any, window: Window, policy: Policy) -> None:
    """The window as an MLflow dataset input of the cycle's run (the runs list's Dataset column)."""
    import mlflow.data

    try:
        name = f"{policy.name} window {window.batches[0]}" + (f"..{window.batches[-1]}" if len(window.batches) > 1
                                                             else "")
        frame = window.current
        # integer columns as floats: MLflow's schema inference warns that integers cannot hold missing values
        frame = frame.astype({c: float for c in frame.columns if pd.api.types.is_integer_dtype(frame[c])})
        ds = mlflow.data.from_pandas(frame, name=name, digest=(getattr(window, "digest", "") or "")[:36] or None,
                                     targets=window.schema.target if window.schema.target in frame else None)
        runlog.log_input(ds, context="production-window")
    except Exception as exc:  # evidence for people, not the decision
        log.warning("could not log the window as an MLflow dataset: %s", exc)


def local_path(uri: str) -> str:
    """A ``file:`` artifact URI as a plain path (what a person opens); other stores keep their URI."""
    from urllib.parse import unquote, urlparse

    return unquote(urlparse(uri).path) if uri.startswith("file:") else uri


def performance_baseline(registry: Any, policy: Policy, champ_model: Any, window: Window
                         ) -> tuple[float | None, str | None]:
    """(baseline, note): the stored performance baseline; measured (and stored) once for a champion registered by
    hand, the note saying so."""
    from kaizen.registry.champion import measure_baseline

    value = registry.baseline(policy.name)  # RegistryError unless truly "not set"
    if value is not None:
        return value, None
    value, n = measure_baseline(champ_model, window.reference, window.schema, policy)
    if value is None:
        return None, None
    registry.set_baseline(policy.name, value)
    return value, (f"performance baseline set to {value:.4f} ({policy.model.metric} of the champion on the newest "
                   f"{n} reference rows; it had none)")

