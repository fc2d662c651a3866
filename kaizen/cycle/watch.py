"""The cycle's look at the window: what is new, the monitor, the trigger's inputs, the report, quiet logging."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import numpy as np
import pandas as pd

from kaizen.cost import budget_problem, spent_on
from kaizen.data.frames import model_frame
from kaizen.data.window import Window
from kaizen.ledger import Record
from kaizen.policy import Policy
from kaizen.runner import RunContext

__all__ = ["idle_trigger", "local_path", "log_monitor", "log_quiet", "log_window_input", "monitor_metrics",
           "monitor_window", "new_problems", "nothing_to_do", "over_budget", "performance_baseline", "refit_due",
           "trigger_decision", "wants_report", "window_only", "write_cycle_report"]

log = logging.getLogger("kaizen.cycle")


def refit_due(policy: Policy, decision: Any, history: list[Record]) -> bool:
    """Whether a scheduled refit is due: enough new batches since the last build, every guard holding."""
    every = policy.trigger.refit_every_batches
    if every <= 0 or any(g.verdict == "blocks" for g in decision.guards):
        return False
    seen = 1  # this window
    for r in reversed(history):
        if r.policy != policy.name:
            continue
        if r.kind != "cycle" or r.challenger:  # a bootstrap, a retrain, or a cycle that built
            break
        if (r.trigger or {}).get("signals"):  # a window with new batches
            seen += 1
    return seen >= every


def idle_trigger(draft: Any, triggered: bool, history: list[Record], policy: Policy) -> None:
    """Count the cycles in a row whose trigger fired but that could not act (``trigger.without_acting``).

    A trigger that fires and never acts is a failure to report, not a quiet skip: the count is
    in the record (and so in ``kaizen status``, ``/metrics`` and the log) with a reason saying so.
    """
    if not triggered:
        draft.sections["trigger"]["without_acting"] = 0
        return
    n = 1
    for r in reversed(history):
        if r.policy != policy.name or r.kind != "cycle" or not (r.trigger or {}).get("signals"):
            continue
        if not (r.trigger or {}).get("without_acting"):
            break
        n += 1
    draft.sections["trigger"]["without_acting"] = n
    if n > 1:
        draft.reasons.insert(1, f"the trigger has fired {n} cycles in a row without acting: check the reason "
                                "above (budget, cooldown, too few labelled rows for the gates)")


def nothing_to_do(window: Window, last: Record | None, policy: Policy) -> str | None:
    """Why this cycle has nothing to look at (no valid batch, no new batch), or None."""
    if window.current.empty:
        if not window.rejected:
            return f"no production batches in {policy.data.production}"
        return (f"no valid production batches in {policy.data.production} "
                f"({len(window.rejected)} rejected)")
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


def new_problems(window: Window, last: Record | None) -> list[str]:
    """Rejected batches, batch warnings and filtered history rows the previous cycle did not report, one line each."""
    lw = last.window if last else {}
    known = {b["batch"] for b in lw.get("rejected_batches", [])}
    out = [f"batch {name} rejected: " + "; ".join(problems) for name, problems in window.rejected
           if name not in known]
    warned = {w["batch"] for w in lw.get("warnings", [])}
    for name, messages in window.warnings:
        if name not in warned:
            out.extend(f"batch {name}: warning: {m}" for m in messages)
    filtered = {(f["batch"], f["check"], f["column"]) for f in lw.get("filtered_rows", [])}
    for batch, check, column, rows in window.filtered:
        if (batch, check, column) not in filtered:
            out.append(f"batch {batch}: {rows} history row(s) dropped by check {check!r} on column {column!r}")
    return out


def monitor_window(ctx: RunContext, policy: Policy, champion: Any, champ_model: Any, window: Window) -> Any:
    """Fast drift and performance verdicts (no Evidently Report; that is written only when asked, below)."""
    from kaizen.champion import CACHE_DIR, monitor_reference, reference_predictions
    from kaizen.monitor import run_monitor

    draft, config = ctx.draft, ctx.config
    reference, ident, notes = monitor_reference(champion, window.reference, policy, ctx.workdir,
                                                cache_dir=config.state_dir / CACHE_DIR / policy.name)
    ref_p, how = reference_predictions(champion, champ_model, reference, ident, window.schema,
                                       registry_uri=config.tracking_uri,
                                       cache_dir=config.state_dir / CACHE_DIR / policy.name)
    draft.sections["window"].update(notes, monitor_reference_predictions=how)
    cur_p = champ_model.predict(model_frame(window.current, window.schema))
    mon = run_monitor(reference, window.current, schema=window.schema, policy=policy, reference_predictions=ref_p,
                      current_predictions=cur_p, reference_key=f"{config.tracking_uri}|{ident}", seed=draft.seed)
    return mon, (reference, ref_p, cur_p)


def trigger_decision(policy: Policy, mon: Any, baseline: float | None, window: Window, cur_p: Any,
            history: list[Record], seed: int) -> Any:
    """The trigger's verdict from the monitor, the champion's labelled predictions and the policy's history."""
    from kaizen.models import Predictions
    from kaizen.monitor.rules import TriggerInputs, decide

    target = window.schema.target
    cur = window.current
    mask = cur[target].notna().to_numpy() if target in cur.columns else np.zeros(len(cur), bool)
    labelled_y = cur[target].to_numpy()[mask]
    if policy.model.task == "regression":
        labelled_y = labelled_y.astype(float)
    pred = Predictions(np.asarray(cur_p.labels)[mask], None if cur_p.scores is None else np.asarray(cur_p.scores)[mask])
    inputs = TriggerInputs(mon, baseline, labelled_y=labelled_y, labelled_pred=pred,
                           history=tuple(r for r in history if r.policy == policy.name), seed=seed)
    return decide(policy, inputs)


def wants_report(policy: Policy, triggered: bool, history: list[Record]) -> bool:
    """Whether this cycle writes the Evidently report: it triggers, or the policy's cadence says so."""
    from kaizen.monitor.report import should_write_report

    quiet = 0
    for r in reversed(history):
        if r.policy != policy.name or r.kind != "cycle" or not r.trigger:
            continue
        if r.report:
            break
        quiet += 1
    return should_write_report(policy, triggered, quiet)


def write_cycle_report(ctx: RunContext, policy: Policy, window: Window, sides: tuple) -> None:
    """The Evidently HTML report, kept once: in the cycle's MLflow run (``record.report`` points at it)."""
    import mlflow

    from kaizen.monitor.report import write_report

    reference, ref_p, cur_p = sides
    path = ctx.workdir / "report" / f"{ctx.draft.id}.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        write_report(reference, window.current, schema=window.schema, policy=policy, reference_predictions=ref_p,
                     current_predictions=cur_p, path=path, seed=ctx.draft.seed)
    except Exception as exc:  # the report is evidence, not the decision: a cycle goes on without it
        log.warning("cycle %s: no Evidently report (%s: %s)", ctx.draft.id, type(exc).__name__, exc)
        return
    mlflow.log_artifact(str(path), artifact_path="monitor")
    ctx.draft.report = local_path(f"{mlflow.get_artifact_uri('monitor')}/{path.name}")


def monitor_metrics(mon: Any) -> dict[str, float]:
    values = {"drift_share": mon.drift_share, "champion_window_metric": mon.champion_metric,
              "prediction_drift": mon.prediction_drift.score if mon.prediction_drift is not None else None}
    return {k: float(v) for k, v in values.items() if v is not None and np.isfinite(v)}


def log_monitor(mon: Any) -> None:
    import mlflow

    mlflow.log_metrics(monitor_metrics(mon))


def log_quiet(ctx: RunContext, policy: Policy, champion: Any, mon: Any) -> None:
    """A quiet cycle's numbers as one more step of the champion version's monitoring run (MLflow charts)."""
    try:
        run_id = ctx.registry.monitoring_run(policy.name, champion.version)
        ctx.registry.log_metrics(run_id, monitor_metrics(mon))
    except Exception as exc:  # the promotion log is the record; the chart is a courtesy
        log.warning("cycle %s: could not log to the monitoring run: %s", ctx.draft.id, exc)
        return
    ctx.draft.sections["trigger"]["monitoring_run_id"] = run_id


def log_window_input(window: Window, policy: Policy) -> None:
    """The window as an MLflow dataset input of the cycle's run (the runs list's Dataset column)."""
    import mlflow

    try:
        name = f"{policy.name} window {window.batches[0]}" + (f"..{window.batches[-1]}" if len(window.batches) > 1
                                                             else "")
        frame = window.current
        # integer columns as floats: MLflow's schema inference warns that integers cannot hold missing values
        frame = frame.astype({c: float for c in frame.columns if pd.api.types.is_integer_dtype(frame[c])})
        ds = mlflow.data.from_pandas(frame, name=name, digest=(getattr(window, "digest", "") or "")[:36] or None,
                                     targets=window.schema.target if window.schema.target in frame else None)
        mlflow.log_input(ds, context="production-window")
    except Exception as exc:  # evidence for people, not the decision
        log.warning("could not log the window as an MLflow dataset: %s", exc)


def window_only(policy: Policy) -> Policy:
    """The policy as a quiet cycle reads data: the window's batches, no history."""
    return dataclasses.replace(policy, data=dataclasses.replace(policy.data, max_history_batches=0))


def local_path(uri: str) -> str:
    """A ``file:`` artifact URI as a plain path (what a person opens); other stores keep their URI."""
    from urllib.parse import unquote, urlparse

    return unquote(urlparse(uri).path) if uri.startswith("file:") else uri


def performance_baseline(ctx: RunContext, policy: Policy, champ_model: Any, window: Window) -> float | None:
    """The stored performance baseline; measured (and stored) once for a champion registered by hand."""
    from kaizen.champion import measure_baseline

    value = ctx.registry.baseline(policy.name)  # RegistryError unless truly "not set"
    if value is not None:
        return value
    value, n = measure_baseline(champ_model, window.reference, window.schema, policy)
    if value is None:
        return None
    ctx.registry.set_baseline(policy.name, value)
    ctx.draft.reasons.append(f"performance baseline set to {value:.4f} ({policy.model.metric} of the champion "
                             f"on the newest {n} reference rows; it had none)")
    return value


def over_budget(draft: Any, policy: Policy, ledger: Any) -> str | None:
    if policy.budget.daily_cpu_seconds is None:
        return None
    spent = spent_on(ledger.since(policy.name, draft.day), policy.name, draft.day)
    draft.sections["trigger"]["budget"] = {"day": draft.day, "spent_cpu_seconds": round(spent, 3),
                                           "daily_cpu_seconds": policy.budget.daily_cpu_seconds}
    return budget_problem(policy.budget.daily_cpu_seconds, spent, draft.day)
