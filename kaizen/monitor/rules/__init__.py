"""Trigger rules: every decision about acting, with its reasons. One rule per module.

The registry is the folder: every rule class a module of this package defines with a ``role``
(``"signal"`` or ``"guard"``) and an ``order`` joins :data:`SIGNALS` or :data:`GUARDS`, and the
``[trigger]`` settings it declares join :class:`kaizen.policy.TriggerSpec`. Adding a rule is adding
a module.

Two families share one result type (:class:`RuleResult`: value, threshold,
verdict, message). *Signals* say the model may need work; *guards* say
whether this cycle may act on it. Every armed rule reports its numbers,
fired or not, so the log shows how close a quiet cycle came.

Signals
    ``performance_drop`` (:mod:`.performance_drop`; labelled evidence, judged without the rows
    the data-trust checks flagged); ``drift_share`` and ``prediction_drift`` (unlabelled
    evidence: the share of drifted feature columns, the drift of the champion's outputs);
    ``target_drift`` and ``estimated_drop`` (off unless set; the label distribution against the
    reference's, the champion's metric estimated without labels: :mod:`.target_drift`,
    :mod:`.estimated_drop`), drift-family evidence like the two before them.

Verdicts of a signal (``fired`` in the record is the verdict on this window alone; later
cycles read it for hysteresis)
    ``quiet``       did not fire on this window;
    ``unknown``     could not be measured (performance without labels or baseline);
    ``explained``   performance: the raw drop fired, but not without the rows the trust checks
                    flagged; it does not count and the cycle holds the window for a person;
    ``held``        fired on this window, but not on ``consecutive`` windows in a row
                    (a performance drop of ``immediate_factor`` times its threshold or more,
                    judged without flagged rows, counts at once): this one and the previous
                    windows judged with the same champion (:meth:`kaizen.past.Past.streak`);
    ``discounted``  a drift signal that fired on enough windows while performance was
                    measured on this window and did not fire, with ``data_drift_alone = false``:
                    data drift alone (seasonal data drifts on every batch) is no reason to build
                    when labels show the model is fine. Without labelled performance drift counts
                    on its own; with a performance drop (even one still held) it corroborates;
    ``fired``       counts towards the decision.

Combination: ``combine = "any"`` triggers when at least one signal's
verdict is ``fired``; ``"all"`` when every armed signal's is.

Guards (verdict ``holds`` or ``blocks``), in the order their reasons are given (their declared
``order``): ``budget`` (:mod:`.budget`), ``shadow`` (:mod:`.shadow`), ``min_labelled_rows``, the
guards a policy turns on by their own settings, ``cooldown`` (:mod:`.cooldown`; a decisive drop
overrides it). A window below ``trigger.min_rows``
(:mod:`.min_rows`) is not judged at all. When no signal triggers and every guard holds, the
schedule (:mod:`.schedule`) may still ask for a refit of the champion's recipe. Re-baselining:
:mod:`.rebaseline`. Guards that need the training pool (holdout size, trust blocks, ambiguity):
:mod:`.act`.

The decision's first reason is the decisive one: why it improves, what blocks it, or why it is
quiet. Without history (``decide(policy, monitor, baseline)``) hysteresis and cooldown are not
checked and say so, and no re-baselining happens.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from kaizen._plugins import classes_in, discover
from kaizen.monitor.rules._base import (
    DRIFT_SIGNALS,
    PERFORMANCE,
    Decision,
    Rule,
    RuleResult,
    TriggerInputs,
    finite,
)
from kaizen.monitor.rules.act import ambiguity, data_findings, holdout_guard, trust_guard
from kaizen.monitor.rules.cooldown import COOLDOWN_EVENTS
from kaizen.monitor.rules.min_rows import MinRowsGuard
from kaizen.monitor.rules.prequential import PREQUENTIAL
from kaizen.monitor.rules.rebaseline import rebaseline
from kaizen.monitor.rules.schedule import ScheduledRefit
from kaizen.monitor.rules.sequential import SEQUENTIAL
from kaizen.past import Past
from kaizen.policy import Policy

__all__ = ["COOLDOWN_EVENTS", "Decision", "GUARDS", "PERFORMANCE", "RULES", "Rule", "RuleResult", "SIGNALS",
           "TriggerInputs", "ambiguity", "data_findings", "decide", "holdout_guard", "trust_guard"]

#: every signal and guard, found in this package's modules (each rule declares its ``role`` and ``order``)
RULES: tuple[Rule, ...] = tuple(sorted(
    discover(__name__, __path__, lambda m: [cls() for cls in classes_in(m, Rule, where=lambda c: c.role)]),
    key=lambda x: (x.role, x.order, x.name)))
#: the signals, in the order they are evaluated and recorded
SIGNALS: tuple[Rule, ...] = tuple(x for x in RULES if x.role == "signal")
#: the guards, in the order a blocked decision gives their reasons
GUARDS: tuple[Rule, ...] = tuple(x for x in RULES if x.role == "guard")
if {x.role for x in RULES} - {"signal", "guard"}:
    raise TypeError(f"a trigger rule's role is 'signal' or 'guard'; got {sorted({x.role for x in RULES})}")
SCHEDULE = ScheduledRefit()
#: signals that are accumulated evidence: no hysteresis, and each triggers on its own under combine = "all"
ACCUMULATED = (SEQUENTIAL, PREQUENTIAL)
_PERFORMANCE_RULE = next(x for x in SIGNALS if x.name == PERFORMANCE)


def decide(policy: Policy, inputs: TriggerInputs | Any, baseline: float | None = None) -> Decision:
    """The cycle's decision. ``decide(policy, monitor, baseline)`` still works (no history, no rows)."""
    if not isinstance(inputs, TriggerInputs):
        inputs = TriggerInputs(monitor=inputs, baseline=baseline)
    trig = policy.trigger
    past = inputs.past(policy)
    size = MinRowsGuard().evaluate(policy, inputs)
    if size.blocks:
        return Decision("skip", (MinRowsGuard.too_small(size),), signals=(), guards=(size,), combine=trig.combine,
                        judged=False)
    new_base, base_reason = rebaseline(policy, inputs, past, _PERFORMANCE_RULE)
    judged = inputs if new_base is None else replace(inputs, baseline=new_base)
    raw = [r for r in (s.evaluate(policy, judged) for s in SIGNALS) if r is not None]
    signals = _discount(policy, [_sustain(policy, r, past, reset=new_base is not None) for r in raw])
    guards = tuple(r for r in (g.evaluate(policy, inputs) for g in GUARDS) if r is not None)
    counted = [s for s in signals if s.verdict == "fired"]
    if any(s.details.get("decisive") for s in counted):  # a decisive drop does not wait out a cooldown either
        guards = tuple(replace(g, fired=True, verdict="holds", message=g.message + "; overridden: the performance "
                               "drop is decisive (trigger.immediate_factor)")
                       if g.rule == "cooldown" and g.blocks else g for g in guards)
    # accumulated evidence (the sequential test, the standing challenger) counts on its own, also with combine = "all"
    monitored = [s for s in signals if s.rule not in ACCUMULATED]
    triggered = (bool(monitored) and (all(s.verdict == "fired" for s in monitored) if trig.combine == "all"
                                      else any(s.verdict == "fired" for s in monitored))) \
        or any(s.verdict == "fired" for s in signals if s.rule in ACCUMULATED)
    # only the standing challenger asks: its evidence is about the champion's own recipe refit, the first rung
    rungs = ("refit",) if triggered and [s.rule for s in counted] == [PREQUENTIAL] else None
    blocked = [g for g in guards if g.blocks]
    schedule = SCHEDULE.evaluate(policy, inputs)
    extra = (base_reason,) if base_reason else ()
    notes = _label_note(inputs)
    done = dict(signals=tuple(signals), guards=guards, combine=trig.combine, rebaseline=new_base,
                rebaseline_reason=base_reason, schedule=schedule)
    why = tuple(f"triggered ({s.rule}): {s.message}" for s in _first_performance(counted))
    if triggered and not blocked:
        return Decision("improve", why + extra + notes, triggered=True, rungs=rungs, **done)
    if triggered:
        return Decision("skip", tuple(f"cannot improve: {g.message}" for g in blocked) + why + extra + notes,
                        triggered=True, **done)
    quiet = extra + _quiet_reasons(policy, signals) + notes
    if schedule is not None and schedule.fired and not blocked:
        return Decision("improve", (schedule.message, *quiet), triggered=False, rungs=("refit",), **done)
    return Decision("skip", quiet, triggered=False, **done)


def _label_note(inputs: TriggerInputs) -> tuple[str, ...]:
    mon = inputs.monitor
    if mon.labelled_rows:
        return ()
    return (f"no labels have arrived for the window (0 of {mon.rows} rows labelled): the champion's performance is "
            "unknown and no challenger can be judged",)


def _quiet_reasons(policy: Policy, signals: list[RuleResult]) -> tuple[str, ...]:
    if not signals:
        return ("no trigger rule is armed in the policy",)
    if not any(s.fired or s.verdict == "explained" for s in signals):
        return ("no trigger fired: " + "; ".join(s.message for s in signals),)
    out: list[str] = []
    if policy.trigger.combine == "all":
        missing = [s.rule for s in signals if s.verdict != "fired"]
        out.append(f"not every signal fired (trigger.combine = \"all\"): {', '.join(missing)} did not")
    out += [f"{s.verdict} ({s.rule}): {s.message}" for s in _first_performance(signals) if s.verdict != "quiet"]
    rest = [s.message for s in signals if s.verdict == "quiet"]
    return tuple(out) + ((("quiet: " + "; ".join(rest)),) if rest else ())


def _sustain(policy: Policy, r: RuleResult, past: Past | None, *, reset: bool) -> RuleResult:
    """Hysteresis: a raw firing counts once it fired on ``consecutive`` windows in a row."""
    need = policy.trigger.consecutive
    if not r.fired or r.rule in ACCUMULATED:  # accumulated across windows already
        return r
    factor = policy.trigger.immediate_factor
    if (r.rule == PERFORMANCE and factor is not None and finite(r.value) and finite(r.threshold)
            and r.threshold > 0 and r.value >= factor * r.threshold):
        return replace(r, message=r.message + f"; at least {factor:g} × its threshold: decisive, counts at once "
                                              "(trigger.immediate_factor)", details={**r.details, "decisive": True})
    if need == 1:
        return r
    if past is None:
        return replace(r, message=r.message + f"; trigger.consecutive = {need} not checked (no history given)")
    prev = 0 if reset and r.rule == PERFORMANCE else past.streak(r.rule, need - 1)
    windows = prev + 1
    details = {**r.details, "windows": windows, "consecutive": need}
    if windows >= need:
        return replace(r, message=r.message + f"; fired on {need} consecutive windows", details=details)
    return replace(r, verdict="held", details=details,
                   message=r.message + f"; fired on {windows} of the {need} consecutive windows needed "
                                       "(trigger.consecutive)")


def _discount(policy: Policy, signals: list[RuleResult]) -> list[RuleResult]:
    """``data_drift_alone = false``: drift does not count while labelled performance is measured and fine."""
    perf = next((s for s in signals if s.rule == PERFORMANCE), None)
    if policy.trigger.data_drift_alone or perf is None or perf.verdict == "unknown" or perf.fired:
        return signals
    shows = ("shows no drop beyond the rows the trust checks flagged" if perf.verdict == "explained"
             else "shows no drop")
    note = (f"; discounted: {policy.model.metric} on {perf.details.get('n') or 'the'} labelled rows {shows} "
            "and drift alone is no reason to build (trigger.data_drift_alone = false)")
    return [replace(s, verdict="discounted", message=s.message + note)
            if s.rule in DRIFT_SIGNALS and s.verdict == "fired" else s for s in signals]


def _first_performance(signals: list[RuleResult]) -> list[RuleResult]:
    return sorted(signals, key=lambda s: s.rule != PERFORMANCE)
