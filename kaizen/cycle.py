"""One improvement cycle for one policy: load → monitor → decide → build → gate → promote → record.

:func:`run_cycle` hands :func:`_cycle` to the one runner (:mod:`kaizen.runner`:
the policy's lock, the crash journal, exactly one record). :func:`_cycle` reads
top to bottom like the cycle; each step is a function of the step modules that
returns a value, and only this orchestrator writes the record's sections.
The ``champion`` alias moves only as the last registry write of a promoting
cycle (:func:`kaizen.promotion.commit`), so a cycle that dies anywhere leaves
the registry as it was or fully promoted.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from typing import Any

import numpy as np
import pandas as pd

from kaizen.config import Config
from kaizen.cost import budget_problem, spent_on
from kaizen.data.frames import cast_target, labelled, model_frame, pool_columns
from kaizen.data.window import Window
from kaizen.errors import BuildError, RegistryError
from kaizen.journal import Step
from kaizen.ledger import Record, last_of
from kaizen.policy import Policy
from kaizen.runner import RunContext, run

__all__ = ["run_cycle"]

log = logging.getLogger("kaizen.cycle")

#: how many of the policy's newest records a cycle reads (trigger hysteresis, cooldown, re-baselining, the
#: ladder's change location, the report cadence): a cycle's reading cost stays flat as the log grows
HISTORY_RECORDS = 200


def run_cycle(config: Config, policy: Policy, *, seed: int | None = None, stop: threading.Event | None = None,
              registry: Any = None, day: str | None = None, on_step: Any = None,
              wait_seconds: float = 0.0) -> Record:
    """Run one cycle now and append its record to the promotion log; never raises for a failed cycle.

    ``day`` (``YYYY-MM-DD``, default today in UTC) is the day the cycle's CPU time is booked on for
    the policy's daily budget; a backtest passes the replayed batch's day. ``on_step`` also receives
    the cycle's progress (the service binds it to its logs). Raises :class:`~kaizen.errors.BusyError`
    when another process runs this policy for longer than ``wait_seconds``.
    """
    from kaizen.ledger import Ledger
    from kaizen.review import expire_pending

    # approvals that waited too long are answered first, each by its own record (promotion.approval_expires)
    expire_pending(config, policy.name, policy=policy, registry=registry, wait_seconds=wait_seconds,
                   history=Ledger(config.ledger_path).tail(policy.name, HISTORY_RECORDS))
    return run(config, policy.name, lambda ctx: _cycle(ctx, policy), kind="cycle",
               seed=policy.build.seed if seed is None else int(seed), registry=registry, day=day,
               on_step=on_step, stop=stop, wait_seconds=wait_seconds)


def _cycle(ctx: RunContext, policy: Policy) -> Record:

    from kaizen.data.window import load_window

    draft, registry = ctx.draft, ctx.registry
    champion = registry.champion(policy.name)
    if champion is None:
        raise RegistryError(f"model {policy.name!r} has no champion: run `kaizen bootstrap {policy.path}` first")
    draft.sections["champion"] = {"version": champion.version}

    # load: the window only; the history is read when a challenger is built
    window = load_window(_window_only(policy))
    draft.sections["window"] = window.summary()
    # a bounded read of the log, newest last: what the trigger, the ladder and the "nothing new" check look back on
    history = ctx.ledger.tail(policy.name, HISTORY_RECORDS)
    # a champion alias moved outside Kaizen: restored (and alerted) or adopted, by promotion.on_foreign_champion
    from kaizen.history import handle_foreign_champion

    if handle_foreign_champion(ctx, policy, history, champion.version, serving_tags=champion.tags):
        champion = registry.champion(policy.name)
    last = last_of(history, policy.name, kinds=("cycle",))
    quiet = _nothing_to_do(window, last, policy)
    problems = _new_problems(window, last)
    draft.reasons.extend(problems)
    if quiet:  # a batch rejected just now is the news; otherwise why there is nothing to do
        draft.reasons.insert(len(problems) if any(" rejected: " in p for p in problems) else 0, quiet)
        return draft.finish("skipped")

    # monitor
    from kaizen.champion import load_champion

    champ_model, _ = load_champion(champion, policy, ctx.config.registry_uri)
    mon, sides = _monitor(ctx, policy, champion, champ_model, window)
    draft.sections["champion"]["window_metric"] = mon.champion_metric
    draft.step(Step.MONITORED)

    # a champion promoted recently that does worse than the one it replaced: rolled back
    rolled = _auto_rollback(ctx, policy, champion, mon, sides[2], window, history)
    if rolled is not None:
        return rolled

    # a challenger in shadow: scored beside the champion on this window; promoted, rejected or still waiting
    shadowed = _shadow(ctx, policy, window, mon, history)
    if shadowed is not None and shadowed[0] == "promote":
        return _promote_shadow(ctx, policy, champion, shadowed, mon)

    # decide
    baseline = _baseline(ctx, policy, champ_model, window)
    decision = _decide(policy, mon, baseline, window, sides[2], history, draft.seed)
    draft.sections["trigger"] = {"monitor": mon.to_dict(), "baseline": baseline, **decision.to_dict()}
    if shadowed is not None:
        draft.sections["trigger"]["shadow"] = shadowed[2]
        draft.reasons.append(shadowed[1])
        if shadowed[0] == "wait" and decision.improve:
            decision = dataclasses.replace(decision, action="skip", reasons=(
                f"a shadow challenger (version {shadowed[2]['version']}) is being evaluated; no other challenger "
                "is built meanwhile", *decision.reasons))
    if decision.rebaseline is not None:
        registry.set_baseline(policy.name, decision.rebaseline)
    if mon.labelled_rows == 0:
        draft.reasons.append(f"no labels have arrived for the window (0 of {mon.rows} rows labelled): "
                             "the champion's performance is unknown and no challenger can be judged")
    scheduled = not decision.improve and shadowed is None and _refit_due(policy, decision, history)
    if scheduled:
        decision = dataclasses.replace(decision, action="improve", reasons=(
            f"scheduled refit: {policy.trigger.refit_every_batches} or more batches since the last challenger was "
            f"built (trigger.refit_every_batches); the champion's recipe is refit and gated, no search",
            *decision.reasons))
        draft.sections["trigger"].update(action="improve", scheduled=True)
    if not decision.improve:
        draft.reasons[:0] = decision.reasons
        _idle_trigger(draft, decision.triggered, history, policy)
    else:
        draft.reasons.extend(decision.reasons)
        over = _over_budget(draft, policy, ctx.ledger)
        if over:
            draft.reasons.insert(0, over)
            _idle_trigger(draft, True, history, policy)
            decision = dataclasses.replace(decision, action="skip")
    report = _wants_report(policy, decision.improve, history)
    if not decision.improve and not report:
        # a quiet cycle opens no MLflow run: its numbers go to the champion's monitoring run
        _log_quiet(ctx, policy, champion, mon)
        return draft.finish("skipped")

    with ctx.mlflow_run() as mlrun:
        _log_monitor(mon)
        if report:
            _report(ctx, policy, window, sides)
        if not decision.improve:
            return draft.finish("skipped")

        window = load_window(policy)  # with its history, to train on
        _log_window_input(window, policy)
        draft.sections["window"].update({k: v for k, v in window.summary().items()
                                         if k not in draft.sections["window"] or k.startswith("history")})
        draft.reasons.extend(r for r in _new_problems(window, last) if r not in draft.reasons)

        # build: climb the ladder (kaizen/ladder.py) until a challenger passes the gates
        train, holdout, grown = _split(window, policy)
        if len(holdout) < policy.gates.min_holdout_rows:
            draft.reasons.insert(0, f"triggered but cannot act: {len(holdout)} labelled holdout rows in the newest "
                                    f"batches are too few to judge a challenger (gates.min_holdout_rows = "
                                    f"{policy.gates.min_holdout_rows}, gates.max_holdout_batches = "
                                    f"{policy.gates.max_holdout_batches})")
            _idle_trigger(draft, True, history, policy)
            return draft.finish("skipped")
        if grown:
            draft.reasons.append(grown)
        draft.step(Step.BUILDING)
        climbed = _climb(ctx, policy, window, champion, champ_model, train, holdout, decision, history,
                         rungs=("refit",) if scheduled else None)
        draft.add_cost(build_cpu_seconds=climbed.cpu_seconds)
        if climbed.last is None:
            raise BuildError("no rung of the ladder built a challenger: " + "; ".join(
                f"{a['rung']}: {a.get('error') or a.get('skipped')}" for a in climbed.attempts))
        built, judged = climbed.winner or climbed.last, climbed.judged
        draft.sections["challenger"] = {**built.section, **judged.challenger, "rung": climbed.rung,
                                        "ladder": climbed.attempts}
        draft.sections["gates"] = [g.to_dict() for g in judged.gates]
        draft.sections["champion"].update(judged.champion)
        _log_metrics(mlrun, judged)
        verdict = "passed" if not judged.failed else "failed: " + ", ".join(g.name for g in judged.failed)
        draft.step(Step.GATED, version=built.version, verdict=verdict)
        if climbed.winner is None:
            draft.reasons[:0] = [f"gate {g.name} failed: {g.message}" for g in judged.failed] + [
                "no rung of the ladder passed the gates: " + "; ".join(_attempt_line(a) for a in climbed.attempts)]
            return draft.finish("rejected")
        draft.reasons.append(f"rung {climbed.rung} passed all gates: " + judged.messages())

        # refit on train + holdout, then promote (or wait for a person)
        version = built.version
        if policy.gates.refit_on_holdout:
            version = _refit(ctx, policy, window, built, climbed.train, holdout, champ_model)
        return _promote(ctx, policy, champion.version, version, built.version, judged)


# -- steps ----------------------------------------------------------------------------------------

def _refit_due(policy: Policy, decision: Any, history: list[Record]) -> bool:
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


def _idle_trigger(draft: Any, triggered: bool, history: list[Record], policy: Policy) -> None:
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


def _nothing_to_do(window: Window, last: Record | None, policy: Policy) -> str | None:
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


def _new_problems(window: Window, last: Record | None) -> list[str]:
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


def _monitor(ctx: RunContext, policy: Policy, champion: Any, champ_model: Any, window: Window) -> Any:
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


def _decide(policy: Policy, mon: Any, baseline: float | None, window: Window, cur_p: Any,
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


def _auto_rollback(ctx: RunContext, policy: Policy, champion: Any, mon: Any, cur_p: Any, window: Window,
                   history: list[Record]) -> Record | None:
    """Roll back to the retired champion when the new one's realised metric is worse beyond noise."""
    from kaizen.metrics import standard_error
    from kaizen.rollback import RollbackRefused, check_auto_rollback, rollback_body

    if policy.promotion.auto_rollback_windows <= 0 or not mon.labelled_rows:
        return None
    se = None
    target = window.schema.target
    if target in window.current.columns and mon.champion_metric is not None:
        mask = window.current[target].notna().to_numpy()
        y = window.current[target].to_numpy()[mask]
        y = y.astype(float) if policy.model.task == "regression" else y
        se = standard_error(policy.model.metric, y, np.asarray(cur_p.labels)[mask],
                            None if cur_p.scores is None else np.asarray(cur_p.scores)[mask],
                            pos_label=policy.model.positive_label, seed=ctx.draft.seed)
        se = float(se) if np.isfinite(se) else None
    why = check_auto_rollback(policy, history, mon.champion_metric, mon.labelled_rows, champion.version,
                              window_se=se)
    if not why:
        return None
    ctx.draft.sections["trigger"] = {"monitor": mon.to_dict()}
    try:
        return rollback_body(ctx, policy.name, None, why, "kaizen", automatic=True, metric=policy.model.metric)
    except RollbackRefused as exc:
        ctx.draft.reasons.append(f"automatic rollback not done: {exc}")
        return None


def _shadow(ctx: RunContext, policy: Policy, window: Window, mon: Any,
            history: list[Record]) -> tuple[str, str, dict[str, Any], Any] | None:
    """(action, why, scores, version) for a version in shadow, or None; a rejected shadow is settled here."""
    from kaizen.champion import load_champion
    from kaizen.shadow import score, verdict

    registry = ctx.registry
    shadow = registry.shadow(policy.name)
    if shadow is None:
        return None
    model, _ = load_champion(shadow, policy, ctx.config.registry_uri)
    scores = score(policy, shadow, model, window, mon.champion_metric)
    action, why = verdict(policy, history, scores)
    if action == "reject":
        registry.tag(policy.name, shadow.version, {"kaizen.status": "rejected", "kaizen.rejected_by": ctx.draft.id})
        registry.drop_shadow(policy.name)
    return action, why, scores, shadow


def _promote_shadow(ctx: RunContext, policy: Policy, champion: Any, shadowed: tuple, mon: Any) -> Record:
    from kaizen.promotion import StaleChampion, commit

    draft, registry = ctx.draft, ctx.registry
    _action, why, scores, shadow = shadowed
    draft.sections["trigger"] = {"monitor": mon.to_dict(), "shadow": scores}
    draft.sections["challenger"] = {"version": shadow.version, "metric": policy.model.metric,
                                    "window_metric": scores.get("window_metric")}
    draft.step(Step.PROMOTING, version=shadow.version, replaced=champion.version)
    try:
        commit(registry, policy.name, shadow.version, metric=policy.model.metric, cycle_id=draft.id,
               reason=f"replaced by shadow version {shadow.version} in cycle {draft.id}",
               judged_against=shadow.tags.get("kaizen.shadow_of"))
    except StaleChampion as exc:
        registry.tag(policy.name, shadow.version, {"kaizen.status": "rejected"})
        registry.drop_shadow(policy.name)
        draft.reasons[:0] = [str(exc), why]
        return draft.finish("rejected")
    registry.drop_shadow(policy.name)
    draft.sections["champion"].update(promoted=shadow.version, replaced=champion.version)
    draft.step(Step.PROMOTED, version=shadow.version, replaced=champion.version)
    draft.reasons[:0] = [f"promoted shadow version {shadow.version} to champion (was {champion.version})", why]
    return draft.finish("promoted")


def _wants_report(policy: Policy, triggered: bool, history: list[Record]) -> bool:
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


def _report(ctx: RunContext, policy: Policy, window: Window, sides: tuple) -> None:
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
    ctx.draft.report = _local(f"{mlflow.get_artifact_uri('monitor')}/{path.name}")


def _monitor_metrics(mon: Any) -> dict[str, float]:
    values = {"drift_share": mon.drift_share, "champion_window_metric": mon.champion_metric,
              "prediction_drift": mon.prediction_drift.score if mon.prediction_drift is not None else None}
    return {k: float(v) for k, v in values.items() if v is not None and np.isfinite(v)}


def _log_monitor(mon: Any) -> None:
    import mlflow

    mlflow.log_metrics(_monitor_metrics(mon))


def _log_quiet(ctx: RunContext, policy: Policy, champion: Any, mon: Any) -> None:
    """A quiet cycle's numbers as one more step of the champion version's monitoring run (MLflow charts)."""
    try:
        run_id = ctx.registry.monitoring_run(policy.name, champion.version)
        ctx.registry.log_metrics(run_id, _monitor_metrics(mon))
    except Exception as exc:  # the promotion log is the record; the chart is a courtesy
        log.warning("cycle %s: could not log to the monitoring run: %s", ctx.draft.id, exc)
        return
    ctx.draft.sections["trigger"]["monitoring_run_id"] = run_id


def _log_window_input(window: Window, policy: Policy) -> None:
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


def _window_only(policy: Policy) -> Policy:
    """The policy as a quiet cycle reads data: the window's batches, no history."""
    return dataclasses.replace(policy, data=dataclasses.replace(policy.data, max_history_batches=0))


def _local(uri: str) -> str:
    """A ``file:`` artifact URI as a plain path (what a person opens); other stores keep their URI."""
    from urllib.parse import unquote, urlparse

    return unquote(urlparse(uri).path) if uri.startswith("file:") else uri


def _baseline(ctx: RunContext, policy: Policy, champ_model: Any, window: Window) -> float | None:
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


def _over_budget(draft: Any, policy: Policy, ledger: Any) -> str | None:
    if policy.budget.daily_cpu_seconds is None:
        return None
    spent = spent_on(ledger.since(policy.name, draft.day), policy.name, draft.day)
    draft.sections["trigger"]["budget"] = {"day": draft.day, "spent_cpu_seconds": round(spent, 3),
                                           "daily_cpu_seconds": policy.budget.daily_cpu_seconds}
    return budget_problem(policy.budget.daily_cpu_seconds, spent, draft.day)


def _split(window: Window, policy: Policy) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """(train, holdout, note): the holdout is the newest labelled rows, training rows strictly before them.

    The holdout is ``gates.holdout_fraction`` of the window's labelled rows; when that is fewer than
    ``gates.min_holdout_rows`` it grows back into the newest history batches (at most
    ``gates.max_holdout_batches`` batches in all) until it has them; ``note`` says so.
    """
    schema, task = window.schema, policy.model.task
    cols = pool_columns(schema)
    cur = labelled(window.current, schema)[cols]
    hist = labelled(window.history, schema)[cols]
    n_hold = int(round(len(cur) * policy.gates.holdout_fraction))
    note = ""
    if n_hold < policy.gates.min_holdout_rows:
        from kaizen.ladder import labelled_per_history_batch

        counts = labelled_per_history_batch(window)
        extra_batches = max(0, policy.gates.max_holdout_batches - len(window.batches))
        available = len(cur) + sum(counts[len(counts) - extra_batches:]) if extra_batches else len(cur)
        grown = min(policy.gates.min_holdout_rows, available)
        if grown > n_hold:
            note = (f"the holdout grew from {n_hold} to {grown} rows (the newest labelled rows, back into earlier "
                    f"batches: gates.min_holdout_rows = {policy.gates.min_holdout_rows})")
            n_hold = grown
    pool = pd.concat([p for p in (window.reference[cols], hist, cur) if len(p)], ignore_index=True)
    like = window.reference[schema.target]
    train = cast_target(pool.iloc[: len(pool) - n_hold], like, task)
    holdout = cast_target(pool.iloc[len(pool) - n_hold:].reset_index(drop=True), like, task)
    return train.reset_index(drop=True), holdout, note


def _climb(ctx: RunContext, policy: Policy, window: Window, champion: Any, champ_model: Any, train: pd.DataFrame,
           holdout: pd.DataFrame, decision: Any, history: list[Record], rungs: tuple[str, ...] | None = None) -> Any:
    from kaizen.challenger.recipe import load_recipe
    from kaizen.challenger.register import build_and_register, refit_recipe_and_register
    from kaizen.champion import CACHE_DIR
    from kaizen.gates.judge import judge
    from kaizen.ladder import PERFORMANCE, change_rows, climb
    from kaizen.models import load_model

    draft, registry, schema = ctx.draft, ctx.registry, window.schema
    recipe = load_recipe(champion, ctx.config.state_dir / CACHE_DIR / policy.name)
    fired = any(s.rule == PERFORMANCE and s.fired for s in decision.signals)
    cur_train = max(0, len(train) - len(window.reference) - len(labelled(window.history, schema)))
    recent, why = change_rows(policy, window, history, fired, train, cur_train)
    common = dict(workdir=ctx.workdir, seed=draft.seed, cycle_id=draft.id, on_registered=draft.note_registered)

    def build(rows: pd.DataFrame, *, policy: Policy, name: str, enqueue: tuple) -> Any:
        return build_and_register(registry, policy, schema, rows, stop=ctx.stop, name=name, enqueue=enqueue,
                                  tags={"kaizen.rung": name.removeprefix("rung_")}, **{**common,
                                  "workdir": ctx.workdir / name})

    def refit(recipe: Any, rows: pd.DataFrame, *, name: str) -> Any:
        return refit_recipe_and_register(registry, policy, schema, recipe, rows, name=name,
                                         tags={"kaizen.rung": "refit", "kaizen.recipe_of": champion.version},
                                         **{**common, "workdir": ctx.workdir / name})

    def judged(built: Any) -> Any:
        model = load_model(f"models:/{policy.name}/{built.version}", task=policy.model.task,
                           positive_label=policy.model.positive_label)
        j = judge(policy, schema, champ_model, model, holdout, window.golden, train)
        verdict = "passed" if not j.failed else "failed: " + ", ".join(g.name for g in j.failed)
        tags = {"kaizen.gate": verdict, "kaizen.holdout_metric": f"{j.challenger['holdout_metric']:.6f}"}
        registry.tag(policy.name, built.version, tags if not j.failed else {**tags, "kaizen.status": "rejected"})
        return j

    def on_attempt(rung: str, built: Any) -> None:
        registry.set_challenger(policy.name, built.version)
        draft.step(Step.BUILT, version=built.version, rung=rung)

    return climb(policy, train, recipe=recipe, champion_version=champion.version, recent=recent, recent_why=why,
                 build=build, refit=refit, judge=judged, on_attempt=on_attempt, rungs=rungs)


def _attempt_line(a: dict[str, Any]) -> str:
    if a.get("skipped") or a.get("error"):
        return f"{a['rung']}: {a.get('skipped') or a.get('error')}"
    return f"{a['rung']} v{a.get('version')} failed {', '.join(a.get('failed_gates') or [])}"


def _log_metrics(mlrun: Any, judged: Any) -> None:
    import mlflow

    mlflow.log_metrics({f"{who}_{k}": v for who, d in (("champion", judged.champion),
                                                       ("challenger", judged.challenger))
                        for k, v in d.items() if isinstance(v, float) and not np.isnan(v)})


def _refit(ctx: RunContext, policy: Policy, window: Window, built: Any, train: pd.DataFrame,
           holdout: pd.DataFrame, champ_model: Any) -> str:
    """The version to promote: the gated recipe refit on train + holdout if it passes, else the gated one."""
    from kaizen.challenger.register import refit_and_register
    from kaizen.gates.judge import judge

    draft, schema = ctx.draft, window.schema
    rows = pd.concat([train, holdout], ignore_index=True)
    out = refit_and_register(
        ctx.registry, policy, schema, built.result, built.version, rows, workdir=ctx.workdir, seed=draft.seed,
        cycle_id=draft.id, on_registered=draft.note_registered,
        check=lambda model: judge(policy, schema, champ_model, model, holdout, window.golden, rows,
                                  only=("sanity", "golden")))
    chall = draft.sections["challenger"]
    chall.update(gated_version=built.version, refit=out.info)
    if out.passed:
        chall["version"] = out.version
    draft.add_cost(refit_cpu_seconds=out.cpu_seconds, build_cpu_seconds=out.cpu_seconds)
    draft.reasons.append(out.reason)
    draft.step(Step.REFITTED, version=out.version, gated_version=built.version)
    return out.version


def _promote(ctx: RunContext, policy: Policy, champion: str, version: str, gated: str, judged: Any) -> Record:
    from kaizen.promotion import StaleChampion, commit

    draft, registry = ctx.draft, ctx.registry
    of = f" (refit of version {gated})" if version != gated else ""
    if policy.promotion.mode == "shadow":
        registry.tag(policy.name, version, {"kaizen.status": "shadow", "kaizen.shadow_of": champion,
                                            "kaizen.shadow_since": draft.id})
        registry.set_shadow(policy.name, version)
        draft.reasons.insert(0, f"promotion mode is shadow: version {version}{of} is scored beside champion "
                                f"{champion} on the next {policy.promotion.shadow_windows} windows and promoted if it "
                                f"wins at least {policy.promotion.shadow_min_wins} of them")
        return draft.finish("shadowing")
    if policy.promotion.mode == "manual":
        registry.tag(policy.name, version, {"kaizen.status": "awaiting_approval"})
        draft.reasons.insert(0, f"promotion mode is manual: version {version}{of} awaits "
                                f"`kaizen approve {draft.id}` or `kaizen reject {draft.id}`")
        return draft.finish("awaiting_approval")
    draft.step(Step.PROMOTING, version=version, replaced=champion)
    try:
        commit(registry, policy.name, version, metric=policy.model.metric,
               reason=f"replaced by version {version} in cycle {draft.id}", cycle_id=draft.id,
               judged_against=champion, holdout_metric=judged.challenger["holdout_metric"])
    except StaleChampion as exc:
        registry.tag(policy.name, version, {"kaizen.status": "rejected"})
        draft.reasons.insert(0, str(exc))
        return draft.finish("rejected")
    draft.sections["champion"].update(promoted=version, replaced=champion)
    draft.step(Step.PROMOTED, version=version, replaced=champion)
    draft.reasons.insert(0, f"promoted version {version}{of} to champion (was {champion})")
    return draft.finish("promoted")
