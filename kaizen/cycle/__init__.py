"""One improvement cycle for one policy: load → monitor → decide → build → gate → promote → record.

The package reads like the cycle: this module is the orchestrator; ``watch`` looks at the
window (what is new, the monitor, the trigger's inputs, the report), ``challenge`` builds and
judges (the time split, the ladder, the refit on the holdout), ``promote`` commits (or shadows,
or waits for a person, or rolls back).

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

from kaizen.champion import serving_champion
from kaizen.config import Config
from kaizen.cycle.challenge import (
    attempt_line,
    check_trust,
    climb_ladder,
    log_metrics,
    refit_on_holdout,
    split_by_time,
)
from kaizen.cycle.promote import auto_rollback, promote_or_wait, promote_shadow, shadow_verdict
from kaizen.cycle.watch import (
    idle_trigger,
    log_monitor,
    log_quiet,
    log_window_input,
    monitor_window,
    new_problems,
    nothing_to_do,
    over_budget,
    performance_baseline,
    refit_due,
    trigger_decision,
    wants_report,
    window_only,
    write_cycle_report,
)
from kaizen.errors import BuildError
from kaizen.journal import Step
from kaizen.ledger import Record, last_of
from kaizen.policy import Policy
from kaizen.runner import RunContext, run

__all__ = ["HISTORY_RECORDS", "run_cycle"]

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
    champion = serving_champion(registry, policy)
    draft.sections["champion"] = {"version": champion.version}

    # load: the window only; the history is read when a challenger is built
    window = load_window(window_only(policy))
    draft.sections["window"] = window.summary()
    # a bounded read of the log, newest last: what the trigger, the ladder and the "nothing new" check look back on
    history = ctx.ledger.tail(policy.name, HISTORY_RECORDS)
    # a champion alias moved outside Kaizen: restored (and alerted) or adopted, by promotion.on_foreign_champion
    from kaizen.history import handle_foreign_champion

    if handle_foreign_champion(ctx, policy, history, champion.version, serving_tags=champion.tags):
        champion = registry.champion(policy.name)
    last = last_of(history, policy.name, kinds=("cycle",))
    quiet = nothing_to_do(window, last, policy)
    problems = new_problems(window, last)
    draft.reasons.extend(problems)
    if quiet:  # a batch rejected just now is the news; otherwise why there is nothing to do
        draft.reasons.insert(len(problems) if any(" rejected: " in p for p in problems) else 0, quiet)
        return draft.finish("skipped")

    # monitor
    from kaizen.champion import load_champion

    champ_model, _ = load_champion(champion, policy, ctx.config.registry_uri)
    mon, sides = monitor_window(ctx, policy, champion, champ_model, window)
    draft.sections["champion"]["window_metric"] = mon.champion_metric
    draft.step(Step.MONITORED)

    # a champion promoted recently that does worse than the one it replaced: rolled back
    rolled = auto_rollback(ctx, policy, champion, mon, sides[2], window, history)
    if rolled is not None:
        return rolled

    # a challenger in shadow: scored beside the champion on this window; promoted, rejected or still waiting
    shadowed = shadow_verdict(ctx, policy, window, mon, history)
    if shadowed is not None and shadowed[0] == "promote":
        return promote_shadow(ctx, policy, champion, shadowed, mon)

    # decide
    baseline = performance_baseline(ctx, policy, champ_model, window)
    decision = trigger_decision(policy, mon, baseline, window, sides[2], history, draft.seed)
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
    scheduled = not decision.improve and shadowed is None and refit_due(policy, decision, history)
    if scheduled:
        decision = dataclasses.replace(decision, action="improve", reasons=(
            f"scheduled refit: {policy.trigger.refit_every_batches} or more batches since the last challenger was "
            f"built (trigger.refit_every_batches); the champion's recipe is refit and gated, no search",
            *decision.reasons))
        draft.sections["trigger"].update(action="improve", scheduled=True)
    if not decision.improve:
        draft.reasons[:0] = decision.reasons
        idle_trigger(draft, decision.triggered, history, policy)
    else:
        draft.reasons.extend(decision.reasons)
        over = over_budget(draft, policy, ctx.ledger)
        if over:
            draft.reasons.insert(0, over)
            idle_trigger(draft, True, history, policy)
            decision = dataclasses.replace(decision, action="skip")
    report = wants_report(policy, decision.improve, history)
    if not decision.improve and not report:
        # a quiet cycle opens no MLflow run: its numbers go to the champion's monitoring run
        log_quiet(ctx, policy, champion, mon)
        return draft.finish("skipped")

    with ctx.mlflow_run() as mlrun:
        log_monitor(mon)
        if report:
            write_cycle_report(ctx, policy, window, sides)
        if not decision.improve:
            return draft.finish("skipped")

        window = load_window(policy)  # with its history, to train on
        log_window_input(window, policy)
        draft.sections["window"].update({k: v for k, v in window.summary().items()
                                         if k not in draft.sections["window"] or k.startswith("history")})
        draft.reasons.extend(r for r in new_problems(window, last) if r not in draft.reasons)

        # build: climb the ladder (kaizen/ladder.py) until a challenger passes the gates
        train, holdout, grown = split_by_time(window, policy)
        # data trust: poisoned-looking new rows are dropped, or the cycle is blocked (kaizen/trust)
        decisive = any(sig.details.get("decisive") and sig.verdict == "fired" for sig in decision.signals)
        train, holdout, blocked = check_trust(ctx, policy, window, champ_model, train, holdout,
                                              decisive_drop=decisive)
        if blocked:
            idle_trigger(draft, True, history, policy)
            return draft.finish("rejected")
        if len(holdout) < policy.gates.min_holdout_rows:
            draft.reasons.insert(0, f"triggered but cannot act: {len(holdout)} labelled holdout rows in the newest "
                                    f"batches are too few to judge a challenger (gates.min_holdout_rows = "
                                    f"{policy.gates.min_holdout_rows}, gates.max_holdout_batches = "
                                    f"{policy.gates.max_holdout_batches})")
            idle_trigger(draft, True, history, policy)
            return draft.finish("skipped")
        if grown:
            draft.reasons.append(grown)
        draft.step(Step.BUILDING)
        climbed = climb_ladder(ctx, policy, window, champion, champ_model, train, holdout, decision, history,
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
        log_metrics(mlrun, judged)
        verdict = "passed" if not judged.failed else "failed: " + ", ".join(g.name for g in judged.failed)
        draft.step(Step.GATED, version=built.version, verdict=verdict)
        if climbed.winner is None:
            draft.reasons[:0] = [f"gate {g.name} failed: {g.message}" for g in judged.failed] + [
                "no rung of the ladder passed the gates: " + "; ".join(attempt_line(a) for a in climbed.attempts)]
            return draft.finish("rejected")
        draft.reasons.append(f"rung {climbed.rung} passed all gates: " + judged.messages())

        # refit on train + holdout, then promote (or wait for a person)
        version = built.version
        if policy.gates.refit_on_holdout:
            version = refit_on_holdout(ctx, policy, window, built, climbed.train, holdout, champ_model)
        return promote_or_wait(ctx, policy, champion.version, version, built.version, judged)


# -- steps ----------------------------------------------------------------------------------------
