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
from dataclasses import dataclass
from typing import Any

import numpy as np

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
    """watch → decide → act? → challenge → settle; a stage that ends the cycle returns its record."""
    c = _Cycle(ctx, policy)
    if isinstance(seen := c.look(), Record):          # the champion and the window; held or skipped here
        return seen
    if isinstance(watched := c.watch(seen), Record):  # monitor; an automatic rollback; a shadow promoted
        return watched
    if isinstance(decided := c.decide(seen, watched), Record):  # the trigger family on screened rows
        return decided
    if isinstance(act := c.may_act(seen, decided), Record):  # the guards that need the training pool
        return act
    return c.challenge(seen, watched, decided, act)  # ladder, gates, refit, then promote/ask/shadow/reject


@dataclass(frozen=True)
class _Seen:
    champion: Any       # kaizen.registry.champion.Champion
    window: Any         # the window only (kaizen.data.window.Window)
    last: Any           # the policy's last cycle record, or None


@dataclass(frozen=True)
class _Watched:
    model: Any          # the champion's loaded model
    watch: Any          # kaizen.cycle.watch.Watched
    shadowed: Any       # kaizen.cycle.promote.ShadowVerdict, or None


@dataclass(frozen=True)
class _Decided:
    decision: Any       # kaizen.monitor.rules.Decision
    screened: Any       # kaizen.cycle.screen.Screened, or None when the cycle may not act
    watch: Any          # the monitor's view, with predictions for rows the window-only read missed


@dataclass(frozen=True)
class _Act:
    acting: bool
    stopped: str | None  # the decision when a guard stopped it ("rejected", "skipped")
    overridden: Any      # the trust guard that asks instead of blocking (clean-decisive), or None
    report: bool         # write the Evidently report for this cycle


class _Cycle:
    """The stages of one cycle; the only writer of the record (its sections and, through :class:`Reasons`,
    its reasons)."""

    def __init__(self, ctx: RunContext, policy: Policy) -> None:
        self.ctx, self.policy, self.draft, self.registry = ctx, policy, ctx.draft, ctx.registry
        self.why = Reasons(ctx.draft.reasons)
        self.sections = ctx.draft.sections
        self.past = Past(ctx.ledger.tail(policy.name, HISTORY_RECORDS), policy.name)

    def look(self) -> _Seen | Record:
        """The champion (an alias moved outside Kaizen is restored or adopted) and the window only; a data
        incident holds the cycle, nothing new skips it."""
        from kaizen.cycle.watch import new_incidents, new_problems, nothing_to_do, window_only
        from kaizen.data.window import load_window
        from kaizen.registry.history import handle_foreign_champion

        policy, why, past = self.policy, self.why, self.past
        champion = serving_champion(self.registry, policy)
        self.sections["champion"] = {"version": champion.version}
        foreign = handle_foreign_champion(self.registry, policy, list(past.records), champion.version,
                                          cycle_id=self.draft.id, serving_tags=champion.tags)
        if foreign is not None:
            why.add(Why.ALERT, foreign.alert)
            self.sections["champion"].update(foreign.section)
            champion = self.registry.champion(policy.name)

        window = load_window(window_only(policy))  # the history is read when the cycle may act
        self.sections["window"] = window.summary()
        last = past.last_cycle()
        rejected, notes = new_problems(window, last)
        why.extend(Why.NEWS, rejected)
        why.extend(Why.NOTE, notes)
        if incidents := new_incidents(window, last):  # a corrupted column: nothing learns from it, the champion serves
            why.extend(Why.INCIDENT, (f"data incident in batch {name}: " + "; ".join(msgs) + "; the batch is held "
                                      "back (never scored, never learned from) and the champion keeps serving: fix "
                                      "the data upstream" for name, msgs in incidents))
            return self.draft.finish("held")
        if quiet := nothing_to_do(window, past.last_cycle(judged=True), policy):
            why.add(Why.QUIET, quiet)
            return self.draft.finish("skipped")
        return _Seen(champion, window, last)

    def watch(self, seen: _Seen) -> _Watched | Record:
        """Monitor the window; roll back a recent champion that does worse than the one it replaced; score a
        challenger in shadow and promote it when its wait is over."""
        from kaizen.cycle.promote import auto_rollback_reason, promote_shadow, shadow_verdict
        from kaizen.cycle.watch import monitor_window
        from kaizen.registry.champion import load_champion

        ctx, policy, why, champion = self.ctx, self.policy, self.why, seen.champion
        model, _ = load_champion(self.registry, champion, policy, cache=ctx.runtime.models, workdir=ctx.workdir)
        work = Work.of(ctx)
        watch = monitor_window(work, policy, champion, model, seen.window)
        mon = watch.monitor
        self.sections["window"].update(watch.notes)
        self.sections["champion"]["window_metric"] = mon.champion_metric
        self.draft.step(Step.MONITORED)

        rollback_why = auto_rollback_reason(policy, champion, mon, watch.current_predictions, seen.window, self.past,
                                            self.draft.seed)
        if rollback_why:
            from kaizen.cycle.rollback import RollbackRefused, rollback_body

            self.sections["trigger"] = {"monitor": mon.to_dict()}
            try:
                return rollback_body(ctx, policy.name, None, rollback_why, "kaizen", automatic=True,
                                     metric=policy.model.metric)
            except RollbackRefused as exc:
                why.add(Why.NOTE, f"automatic rollback not done: {exc}")

        shadowed = shadow_verdict(work, policy, seen.window, mon, self.past)
        if shadowed is not None and shadowed.action == "promote":
            self.sections["trigger"] = {"monitor": mon.to_dict(), "shadow": shadowed.scores}
            self.sections["challenger"] = {"version": shadowed.version.version, "metric": policy.model.metric,
                                           "window_metric": shadowed.scores.get("window_metric")}
            outcome = promote_shadow(work, policy, champion, shadowed)
            self.sections["champion"].update(outcome.champion)
            why.add(Why.OUTCOME, outcome.reason)
            why.extend(Why.NOTE, outcome.also)
            return self.draft.finish(outcome.decision)
        return _Watched(model, watch, shadowed)

    def decide(self, seen: _Seen, watched: _Watched) -> _Decided | Record:
        """The trigger family on the window's numbers. When the cycle may act, or the champion's metric fell,
        the new rows are screened first and the family decides again without the rows the trust checks
        flag. A re-baselining, or a drop only the flagged rows carry, ends the cycle here."""
        from kaizen.cost import spent_on
        from kaizen.cycle.prequential import accumulate, score, shadow_window
        from kaizen.cycle.screen import screen
        from kaizen.cycle.watch import labelled_batches, labelled_predictions, performance_baseline
        from kaizen.data.frames import model_frame
        from kaizen.data.window import load_window
        from kaizen.monitor.rules import TriggerInputs, decide

        policy, why, draft, watch, shadowed = self.policy, self.why, self.draft, watched.watch, watched.shadowed
        mon = watch.monitor
        baseline, baseline_note = performance_baseline(self.registry, policy, watched.model, seen.window)
        why.add(Why.NOTE, baseline_note)
        y, pred = labelled_predictions(policy, seen.window, watch.current_predictions)
        ledger = self.ctx.ledger
        inputs = TriggerInputs(mon, baseline, labelled_y=y, labelled_pred=pred, history=self.past.records,
                               seed=draft.seed, day=draft.day,
                               shadow=shadowed.version.version if shadowed is not None else None,
                               spent=lambda: spent_on(ledger.since(policy.name, draft.day), policy.name, draft.day),
                               champion=str(seen.champion.version), labelled_batches=labelled_batches(seen.window))
        full = None
        standing = None  # the standing challenger's predictions on the new batches (kaizen.cycle.prequential)
        preq: dict[str, Any] | None = None
        daily = policy.budget.daily_cpu_seconds
        if policy.prequential.enabled and len(y) and mon.rows >= policy.trigger.min_rows:
            if daily is not None and inputs.spent() >= daily:  # its refit is compute too: not beyond the budget
                standing = (f"the policy's daily compute budget is spent ({inputs.spent():.1f} of {daily:g} CPU "
                            "seconds, budget.daily_cpu_seconds)")
            else:
                read: list[Any] = []  # the window with its history, read once if the standing challenger is refit

                def with_history() -> Any:
                    if not read:
                        read.append(load_window(policy))
                    return read[0]

                standing = shadow_window(Work.of(self.ctx), policy, seen.window, seen.champion, watched.model,
                                         self.past, with_history, known=(inputs.labelled_batches, pred))
                full = read[0] if read else None
            if isinstance(standing, str):
                preq = {"unscored": standing}
                inputs = dataclasses.replace(inputs, prequential={"unscored": standing})
                standing = None
            elif standing is not None:
                preq = score(policy, standing, seed=draft.seed)
                inputs = dataclasses.replace(inputs, prequential=accumulate(policy, self.past, preq))
        decision = decide(policy, inputs)

        screened = None
        perf = decision.performance
        if decision.judged and (decision.improve or (perf is not None and perf.fired)):
            full = full if full is not None else load_window(policy)  # with its history
            if len(full.labelled) != len(y):  # rows the window-only read could not tell were copies of history rows
                watch = dataclasses.replace(watch, current_predictions=watched.model.predict(
                    model_frame(full.current, full.schema)))
                y, pred = labelled_predictions(policy, full, watch.current_predictions)
                inputs = dataclasses.replace(inputs, labelled_y=y, labelled_pred=pred,
                                             labelled_batches=labelled_batches(full))
            screened = screen(policy, full, watched.model, seed=draft.seed)
            if screened.trust is not None:
                self.sections["window"]["trust"] = screened.trust.to_dict()
            if screened.excluded is not None:
                inputs = dataclasses.replace(inputs, excluded=screened.excluded, excluded_why=screened.excluded_why)
                if standing is not None and inputs.labelled_batches is not None:
                    # the standing challenger's gain on this window, judged without the flagged rows too
                    rows = np.isin(inputs.labelled_batches, np.array(standing.batches, dtype=object))
                    if int(rows.sum()) == len(standing.y):
                        raw, preq = preq, score(policy, standing, seed=draft.seed, keep=~screened.excluded[rows])
                        inputs = dataclasses.replace(inputs, prequential=accumulate(policy, self.past, preq, raw=raw))
                decision = decide(policy, inputs)
        trigger = self.sections["trigger"] = {"monitor": mon.to_dict(), "baseline": baseline, **decision.to_dict()}
        if preq is not None:
            trigger["prequential"] = preq
        if (budget := next((g for g in decision.guards if g.rule == "budget"), None)) is not None:
            trigger["budget"] = dict(budget.details)
        if shadowed is not None:
            trigger["shadow"] = shadowed.scores
            why.add(Why.NOTE, shadowed.why)

        if decision.rebaseline is not None:  # a baseline moves only by a recorded decision, and nothing else happens
            self.registry.set_baseline(policy.name, decision.rebaseline)
            why.add(Why.OUTCOME, decision.rebaseline_reason)
            why.extend(Why.DECISION, decision.reasons)
            self._quiet_log(seen.champion, mon)
            return draft.finish("rebaselined")

        if decision.explained and not decision.improve:  # only the flagged rows carry the drop: no evidence
            n, by = (screened.flagged, screened.excluded_why) if screened is not None else (0, "")
            why.add(Why.OUTCOME, f"held: the champion's {policy.model.metric} fell on this window only because of "
                                 f"{n} labelled row(s) the data-trust checks flagged ({by}); without them it did not "
                                 "drop, so nothing is built — look at the flagged rows (window.trust) before they "
                                 "become training data")
            why.extend(Why.DECISION, decision.reasons)
            if screened is not None and screened.trust is not None:
                why.extend(Why.NOTE, screened.trust.reasons)
            trigger["without_acting"] = self.past.idle_streak() + 1
            self._quiet_log(seen.champion, mon)
            return draft.finish("held")
        return _Decided(decision, screened, watch)

    def may_act(self, seen: _Seen, decided: _Decided) -> _Act | Record:
        """The guards that need the training pool (:mod:`kaizen.monitor.rules.act`): a trust block, too few
        holdout rows. A cycle that does not act, and owes no report, ends here."""
        from kaizen.cycle.watch import wants_report
        from kaizen.monitor.rules import holdout_guard, trust_guard

        policy, why, decision, screened = self.policy, self.why, decided.decision, decided.screened
        trigger = self.sections["trigger"]
        why.extend(Why.STOP, decision.stops)
        why.extend(Why.DECISION, decision.reasons)
        stopped: str | None = None
        overridden = None
        if decision.improve:
            tg = trust_guard(policy, decision, screened.trust)
            hold = holdout_guard(policy, len(screened.holdout))
            trigger["act"] = [g.to_dict() for g in (tg, hold) if g is not None]
            if tg is not None and tg.blocks:
                why.extend(Why.STOP, [r for r in screened.trust.reasons if "(blocks the cycle)" in r])
                why.add(Why.STOP, tg.message)
                why.extend(Why.NOTE, screened.trust.reasons)
                stopped = "rejected"
            elif hold.blocks:
                why.add(Why.STOP, hold.message)
                stopped = "skipped"
            overridden = tg if tg is not None and tg.verdict == "asks" else None
        acting = decision.improve and stopped is None
        if (decision.triggered or decision.improve) and not acting:
            n = trigger["without_acting"] = self.past.idle_streak() + 1
            if n > 1:
                why.add(Why.IDLE, f"the trigger has fired {n} cycles in a row without acting: check the reason "
                                  "above (budget, cooldown, too few labelled rows for the gates, a trust block)")
        elif not acting:
            trigger["without_acting"] = 0
        report = wants_report(policy, decision.triggered or decision.improve, self.past.windows_since_report())
        if not acting and not report:
            self._quiet_log(seen.champion, decided.watch.monitor)
            return self.draft.finish(stopped or "skipped")
        return _Act(acting, stopped, overridden, report)

    def _quiet_log(self, champion: Any, mon: Any) -> None:
        """Every monitored cycle's numbers are one more step of the policy's monitoring run."""
        from kaizen.cycle.watch import log_quiet

        logged = log_quiet(self.registry, self.policy, champion, mon, cycle_id=self.draft.id)
        if logged is not None:
            self.sections.setdefault("trigger", {}).update(logged)

    def challenge(self, seen: _Seen, watched: _Watched, decided: _Decided, act: _Act) -> Record:
        """In the cycle's MLflow run: the report when owed; climb the ladder until a challenger passes the
        gates, refit it on training + holdout, then settle (promote, ask a person, shadow, reject)."""
        from kaizen.cycle.challenge import attempt_line, climb_ladder, log_metrics, refit_on_holdout
        from kaizen.cycle.promote import settle
        from kaizen.cycle.watch import (
            log_cycle_params,
            log_monitor,
            log_window_input,
            new_problems,
            write_cycle_report,
        )
        from kaizen.monitor.rules import ambiguity, data_findings

        ctx, policy, why, draft, sections = self.ctx, self.policy, self.why, self.draft, self.sections
        decision, screened, champion = decided.decision, decided.screened, seen.champion
        with ctx.mlflow_run() as runlog:
            work = Work.of(ctx, runlog)
            log_monitor(runlog, decided.watch.monitor)
            self._quiet_log(champion, decided.watch.monitor)
            log_cycle_params(runlog, policy, seen.window, champion, decision, seed=draft.seed)
            if act.report:
                draft.report = write_cycle_report(runlog, policy, _rows_of(decided, seen), decided.watch,
                                                  seed=draft.seed, cycle_id=draft.id,
                                                  path=ctx.workdir / "report" / f"{draft.id}.json",
                                                  workspace=ctx.config.evidently_workspace)
                sections["trigger"].setdefault("monitor", {})["report_path"] = draft.report
            if not act.acting:
                return draft.finish(act.stopped or "skipped")

            full = screened.window
            log_window_input(runlog, full, policy)
            sections["window"].update({k: v for k, v in full.summary().items()
                                       if k not in sections["window"] or k.startswith("history")})
            rejected, notes = new_problems(full, seen.last)
            why.extend(Why.NEWS, rejected)
            why.extend(Why.NOTE, notes)
            why.add(Why.NOTE, screened.grown)
            if screened.trust is not None:
                why.extend(Why.NOTE, screened.trust.reasons)

            draft.step(Step.BUILDING)
            climbed = climb_ladder(work, policy, full, champion, watched.model, screened.train, screened.holdout,
                                   decision, self.past)
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

            version = built.version
            if policy.gates.refit_on_holdout:
                refit = refit_on_holdout(work, policy, full, built, climbed.train, screened.holdout, watched.model)
                sections["challenger"].update(gated_version=built.version, refit=refit.info)
                if refit.passed:
                    sections["challenger"]["version"] = refit.version
                draft.add_cost(refit_cpu_seconds=refit.cpu_seconds, build_cpu_seconds=refit.cpu_seconds)
                why.add(Why.NOTE, refit.reason)
                version = refit.version
            ask = ambiguity(policy, decision, screened.trust, data_findings(_training_warnings(full)), act.overridden)
            if ask is not None:
                sections["trigger"]["ambiguity"] = ask.to_dict()
            outcome = settle(work, policy, champion.version, version, built.version, judged, ask)
            sections["champion"].update(outcome.champion)
            why.add(Why.OUTCOME, outcome.reason)
            why.extend(Why.NOTE, outcome.also)
            return draft.finish(outcome.decision)


def _rows_of(decided: _Decided, seen: _Seen) -> Any:
    """The window the watch's current predictions are of: the screened read when they were made on it."""
    full = decided.screened.window if decided.screened is not None else None
    if full is not None and len(decided.watch.current_predictions) == len(full.current):
        return full
    return seen.window


def _training_warnings(window: Any) -> list[tuple[str, tuple[str, ...]]]:
    """(batch, warnings) of the batches a challenger learns from: the window's and its history's."""
    used = set(window.batches) | set(window.history_batches)
    return [(b, tuple(m)) for b, m in window.warnings if b in used]
