"""One improvement cycle for one policy: look → monitor → decide → screen → build → gate → settle → record.

The package reads like the cycle. This module is the orchestrator and the only writer of the
record: each step is a function of a step module that returns a frozen value —
``watch`` (what is new, the monitor, quiet logging, the report), ``screen`` (the time split and the
data-trust checks), ``challenge`` (the ladder, the gates, the refit on the holdout), ``promote``
(promote, wait for a person, shadow, reject; a shadow's verdict; an automatic rollback) — and every
decision about acting is a rule of the trigger family (:mod:`kaizen.monitor.rules`). The order of
the record's reasons is one rule (:mod:`kaizen.cycle.reasons`).

:func:`run_cycle` hands :func:`_cycle` to the one runner (:mod:`kaizen.run.runner`: the policy's lock,
the crash journal, exactly one record). The ``champion`` alias moves only as the last registry
write of a promoting cycle (:func:`kaizen.registry.promotion.commit`), so a cycle that dies anywhere leaves
the registry as it was or fully promoted.

Who may decide alone: a challenger is promoted with nobody watching only on evidence the
suspicious rows did not produce. When the champion's metric fell, the new rows are screened
*before* deciding; a drop that only the flagged rows carry holds the cycle for a person
(``held``); a drop that stands without them while the training rows carry a finding makes the
cycle ambiguous: the challenger waits for approval (``trust.on_ambiguous``). A corrupted column
(a data incident) holds the cycle and the champion keeps serving.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from typing import Any

from kaizen.config import Config
from kaizen.cycle.reasons import Reasons, Why
from kaizen.cycle.work import Work
from kaizen.errors import BuildError
from kaizen.ledger import Record
from kaizen.past import Past
from kaizen.policy import Policy
from kaizen.registry.champion import serving_champion
from kaizen.run.journal import Step
from kaizen.run.runner import RunContext, run

__all__ = ["HISTORY_RECORDS", "run_cycle"]

log = logging.getLogger("kaizen.cycle")

#: how many of the policy's newest records a cycle reads (trigger hysteresis, cooldown, re-baselining, the
#: ladder's change location, the report cadence): a cycle's reading cost stays flat as the log grows
HISTORY_RECORDS = 200


def run_cycle(config: Config, policy: Policy, *, seed: int | None = None, stop: threading.Event | None = None,
              registry: Any = None, day: str | None = None, on_step: Any = None,
              wait_seconds: float = 0.0, runtime: Any = None) -> Record:
    """Run one cycle now and append its record to the promotion log; never raises for a failed cycle.

    ``day`` (``YYYY-MM-DD``, default today in UTC) is the day the cycle's CPU time is booked on for
    the policy's daily budget; a backtest passes the replayed batch's day. ``on_step`` also receives
    the cycle's progress (the service binds it to its logs). Raises :class:`~kaizen.errors.BusyError`
    when another process runs this policy for longer than ``wait_seconds``. Approvals that waited too
    long are answered by :func:`kaizen.commands.tick.tick`, which callers run instead of this.
    """
    return run(config, policy.name, lambda ctx: _cycle(ctx, policy), kind="cycle",
               seed=policy.build.seed if seed is None else int(seed), registry=registry, day=day,
               on_step=on_step, stop=stop, wait_seconds=wait_seconds, runtime=runtime)


def _cycle(ctx: RunContext, policy: Policy) -> Record:
    from kaizen.cost import spent_on
    from kaizen.cycle.promote import auto_rollback_reason, promote_shadow, settle, shadow_verdict
    from kaizen.cycle.screen import screen
    from kaizen.cycle.watch import (
        labelled_predictions,
        monitor_window,
        new_incidents,
        new_problems,
        nothing_to_do,
        performance_baseline,
        wants_report,
        window_only,
    )
    from kaizen.data.frames import model_frame
    from kaizen.data.window import load_window
    from kaizen.monitor.rules import TriggerInputs, decide
    from kaizen.registry.champion import load_champion
    from kaizen.registry.history import handle_foreign_champion

    draft, registry, work = ctx.draft, ctx.registry, Work.of(ctx)
    why = Reasons(draft.reasons)
    sections = draft.sections
    past = Past(ctx.ledger.tail(policy.name, HISTORY_RECORDS), policy.name)

    # the champion; an alias moved outside Kaizen is restored or adopted (promotion.on_foreign_champion)
    champion = serving_champion(registry, policy)
    sections["champion"] = {"version": champion.version}
    foreign = handle_foreign_champion(registry, policy, list(past.records), champion.version, cycle_id=draft.id,
                                      serving_tags=champion.tags)
    if foreign is not None:
        why.add(Why.ALERT, foreign.alert)
        sections["champion"].update(foreign.section)
        champion = registry.champion(policy.name)

    # look: the window only (the history is read when the cycle may act)
    window = load_window(window_only(policy))
    sections["window"] = window.summary()
    last = past.last_cycle()
    rejected, notes = new_problems(window, last)
    incidents = new_incidents(window, last)
    if incidents:  # a corrupted column: the batch is held back, nothing learns from it, the champion serves
        why.extend(Why.INCIDENT, (f"data incident in batch {name}: " + "; ".join(msgs) + "; the batch is held back "
                                  "(never scored, never learned from) and the champion keeps serving: fix the data "
                                  "upstream" for name, msgs in incidents))
        why.extend(Why.NEWS, rejected)
        why.extend(Why.NOTE, notes)
        return draft.finish("held")
    why.extend(Why.NEWS, rejected)
    why.extend(Why.NOTE, notes)
    quiet = nothing_to_do(window, past.last_cycle(judged=True), policy)
    if quiet:
        why.add(Why.QUIET, quiet)
        return draft.finish("skipped")

    # monitor
    champ_model, _ = load_champion(registry, champion, policy, cache=ctx.runtime.models, workdir=ctx.workdir)
    watch = monitor_window(work, policy, champion, champ_model, window)
    mon = watch.monitor
    sections["window"].update(watch.notes)
    sections["champion"]["window_metric"] = mon.champion_metric
    draft.step(Step.MONITORED)

    # a champion promoted recently that does worse than the one it replaced: rolled back (its own record)
    rollback_why = auto_rollback_reason(policy, champion, mon, watch.current_predictions, window, past, draft.seed)
    if rollback_why:
        from kaizen.cycle.rollback import RollbackRefused, rollback_body

        sections["trigger"] = {"monitor": mon.to_dict()}
        try:
            return rollback_body(ctx, policy.name, None, rollback_why, "kaizen", automatic=True,
                                 metric=policy.model.metric)
        except RollbackRefused as exc:
            why.add(Why.NOTE, f"automatic rollback not done: {exc}")

    # a challenger in shadow: scored beside the champion on this window; promoted, rejected or still waiting
    shadowed = shadow_verdict(work, policy, window, mon, past)
    if shadowed is not None and shadowed.action == "promote":
        sections["trigger"] = {"monitor": mon.to_dict(), "shadow": shadowed.scores}
        sections["challenger"] = {"version": shadowed.version.version, "metric": policy.model.metric,
                                  "window_metric": shadowed.scores.get("window_metric")}
        outcome = promote_shadow(work, policy, champion, shadowed)
        sections["champion"].update(outcome.champion)
        why.add(Why.OUTCOME, outcome.reason)
        why.extend(Why.NOTE, outcome.also)
        return draft.finish(outcome.decision)

    # decide: the trigger family, on the window's numbers
    baseline, baseline_note = performance_baseline(registry, policy, champ_model, window)
    why.add(Why.NOTE, baseline_note)
    y, pred = labelled_predictions(policy, window, watch.current_predictions)
    inputs = TriggerInputs(mon, baseline, labelled_y=y, labelled_pred=pred, history=past.records, seed=draft.seed,
                           day=draft.day, shadow=shadowed.version.version if shadowed is not None else None,
                           spent=lambda: spent_on(ctx.ledger.since(policy.name, draft.day), policy.name, draft.day))
    decision = decide(policy, inputs)

    # screen: when the cycle may act, or the champion's metric fell, the new rows are checked first, so that
    # whether the champion broke is judged without the rows the trust checks flag
    screened = None
    perf = decision.performance
    if decision.judged and (decision.improve or (perf is not None and perf.fired)):
        full = load_window(policy)  # with its history
        if len(full.labelled) != len(y):  # rows the window-only read could not tell were copies of history rows
            watch = dataclasses.replace(watch, current_predictions=champ_model.predict(model_frame(full.current,
                                                                                                   full.schema)))
            y, pred = labelled_predictions(policy, full, watch.current_predictions)
            inputs = dataclasses.replace(inputs, labelled_y=y, labelled_pred=pred)
        screened = screen(policy, full, champ_model, seed=draft.seed)
        if screened.trust is not None:
            sections["window"]["trust"] = screened.trust.to_dict()
        if screened.excluded is not None:
            inputs = dataclasses.replace(inputs, excluded=screened.excluded, excluded_why=screened.excluded_why)
            decision = decide(policy, inputs)
    sections["trigger"] = {"monitor": mon.to_dict(), "baseline": baseline, **decision.to_dict()}
    if decision.guards and (b := next((g for g in decision.guards if g.rule == "budget"), None)) is not None:
        sections["trigger"]["budget"] = dict(b.details)
    if shadowed is not None:
        sections["trigger"]["shadow"] = shadowed.scores
        why.add(Why.NOTE, shadowed.why)

    # a baseline moves only by a recorded decision: this cycle records the re-baselining, and nothing else
    if decision.rebaseline is not None:
        registry.set_baseline(policy.name, decision.rebaseline)
        why.add(Why.OUTCOME, decision.rebaseline_reason)
        why.extend(Why.DECISION, decision.reasons)
        _quiet_log(ctx, policy, champion, mon)
        return draft.finish("rebaselined")

    # a drop that only the flagged rows carry is no evidence: held for a person, nothing is built
    if decision.explained and not decision.improve:
        n, by = (screened.flagged, screened.excluded_why) if screened is not None else (0, "")
        why.add(Why.OUTCOME, f"held: the champion's {policy.model.metric} fell on this window only because of {n} "
                             f"labelled row(s) the data-trust checks flagged ({by}); without them it did not drop, so "
                             "nothing is built — look at the flagged rows (window.trust) before they become training "
                             "data")
        why.extend(Why.DECISION, decision.reasons)
        if screened is not None and screened.trust is not None:
            why.extend(Why.NOTE, screened.trust.reasons)
        sections["trigger"]["without_acting"] = past.idle_streak() + 1
        _quiet_log(ctx, policy, champion, mon)
        return draft.finish("held")

    # may it act? the guards that need the training pool (kaizen.monitor.rules.act)
    from kaizen.monitor.rules import ambiguity, data_findings, holdout_guard, trust_guard

    why.extend(Why.STOP, decision.stops)
    why.extend(Why.DECISION, decision.reasons)
    stopped: str | None = None
    tg = None
    if decision.improve:
        tg = trust_guard(policy, decision, screened.trust)
        hold = holdout_guard(policy, len(screened.holdout))
        sections["trigger"]["act"] = [g.to_dict() for g in (tg, hold) if g is not None]
        if tg is not None and tg.blocks:
            why.extend(Why.STOP, [r for r in screened.trust.reasons if "(blocks the cycle)" in r])
            why.add(Why.STOP, tg.message)
            why.extend(Why.NOTE, screened.trust.reasons)
            stopped = "rejected"
        elif hold.blocks:
            why.add(Why.STOP, hold.message)
            stopped = "skipped"
    acting = decision.improve and stopped is None
    if (decision.triggered or decision.improve) and not acting:
        n = past.idle_streak() + 1
        sections["trigger"]["without_acting"] = n
        if n > 1:
            why.add(Why.IDLE, f"the trigger has fired {n} cycles in a row without acting: check the reason above "
                              "(budget, cooldown, too few labelled rows for the gates, a trust block)")
    elif not acting:
        sections["trigger"]["without_acting"] = 0
    report = wants_report(policy, decision.triggered or decision.improve, past.windows_since_report())
    if not acting and not report:
        _quiet_log(ctx, policy, champion, mon)
        return draft.finish(stopped or "skipped")

    with ctx.mlflow_run() as runlog:
        from kaizen.cycle.challenge import attempt_line, climb_ladder, log_metrics, refit_on_holdout
        from kaizen.cycle.watch import log_monitor, log_window_input, write_cycle_report

        work = Work.of(ctx, runlog)
        log_monitor(runlog, mon)
        if report:
            draft.report = write_cycle_report(runlog, policy, window, watch, seed=draft.seed, cycle_id=draft.id,
                                              path=ctx.workdir / "report" / f"{draft.id}.html")
        if not acting:
            return draft.finish(stopped or "skipped")

        full = screened.window
        log_window_input(runlog, full, policy)
        sections["window"].update({k: v for k, v in full.summary().items()
                                   if k not in sections["window"] or k.startswith("history")})
        rejected, notes = new_problems(full, last)
        why.extend(Why.NEWS, rejected)
        why.extend(Why.NOTE, notes)
        why.add(Why.NOTE, screened.grown)
        overridden = tg if tg is not None and tg.verdict == "asks" else None
        if screened.trust is not None:
            why.extend(Why.NOTE, screened.trust.reasons)

        # build: climb the ladder (kaizen/cycle/ladder.py) until a challenger passes the gates
        draft.step(Step.BUILDING)
        climbed = climb_ladder(work, policy, full, champion, champ_model, screened.train, screened.holdout, decision,
                               past)
        draft.add_cost(build_cpu_seconds=climbed.cpu_seconds)
        if climbed.last is None:
            raise BuildError("no rung of the ladder built a challenger: " + "; ".join(
                f"{a['rung']}: {a.get('error') or a.get('skipped')}" for a in climbed.attempts))
        built, judged = climbed.winner or climbed.last, climbed.judged
        sections["challenger"] = {**built.section, **judged.challenger, "rung": climbed.rung,
                                  "ladder": climbed.attempts}
        sections["gates"] = [g.to_dict() for g in judged.gates]
        sections["champion"].update(judged.champion)
        log_metrics(runlog, judged)
        verdict = "passed" if not judged.failed else "failed: " + ", ".join(g.name for g in judged.failed)
        draft.step(Step.GATED, version=built.version, verdict=verdict)
        if climbed.winner is None:
            why.extend(Why.STOP, [f"gate {g.name} failed: {g.message}" for g in judged.failed])
            why.add(Why.STOP, "no rung of the ladder passed the gates: " + "; ".join(
                attempt_line(a) for a in climbed.attempts))
            return draft.finish("rejected")
        why.add(Why.NOTE, f"rung {climbed.rung} passed all gates: " + judged.messages())

        # refit on train + holdout, then settle: promote, or wait for a person, shadow, reject
        version = built.version
        if policy.gates.refit_on_holdout:
            refit = refit_on_holdout(work, policy, full, built, climbed.train, screened.holdout, champ_model)
            sections["challenger"].update(gated_version=built.version, refit=refit.info)
            if refit.passed:
                sections["challenger"]["version"] = refit.version
            draft.add_cost(refit_cpu_seconds=refit.cpu_seconds, build_cpu_seconds=refit.cpu_seconds)
            why.add(Why.NOTE, refit.reason)
            version = refit.version
        ask = ambiguity(policy, decision, screened.trust, data_findings(_training_warnings(full)), overridden)
        if ask is not None:
            sections["trigger"]["ambiguity"] = ask.to_dict()
        outcome = settle(work, policy, champion.version, version, built.version, judged, ask)
        sections["champion"].update(outcome.champion)
        why.add(Why.OUTCOME, outcome.reason)
        why.extend(Why.NOTE, outcome.also)
        return draft.finish(outcome.decision)


def _training_warnings(window: Any) -> list[tuple[str, tuple[str, ...]]]:
    """(batch, warnings) of the batches a challenger learns from: the window's and its history's."""
    used = set(window.batches) | set(window.history_batches)
    return [(b, tuple(m)) for b, m in window.warnings if b in used]


def _quiet_log(ctx: RunContext, policy: Policy, champion: Any, mon: Any) -> None:
    """A cycle that opens no MLflow run logs its numbers to the champion's monitoring run."""
    from kaizen.cycle.watch import log_quiet

    run_id = log_quiet(ctx.registry, policy, champion, mon, cycle_id=ctx.draft.id)
    if run_id is not None:
        ctx.draft.sections.setdefault("trigger", {})["monitoring_run_id"] = run_id
