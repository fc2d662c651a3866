"""Trigger rules: turn the monitor's numbers into ``improve`` or ``skip``, with reasons.

Two families share one result type (:class:`RuleResult`: value, threshold,
verdict, message). *Signals* say the model may need work; *guards* say
whether this cycle may act on it. Every armed rule reports its numbers,
fired or not, so the log shows how close a quiet cycle came.

Signals
    ``performance_drop`` (labelled evidence): the champion's metric on the
    window's labelled rows fell below the baseline by at least
    ``max(performance_drop, performance_drop_se × SE)``, where SE is the
    metric's standard error on those rows (:func:`kaizen.metrics.standard_error`),
    read as a drop (for rmse/mae: relative to the baseline). Without the rows
    (or with ``performance_drop_se = false``) the threshold is the fixed
    ``performance_drop``. Unknown when there are no labelled rows or no
    baseline. ``drift_share`` and ``prediction_drift`` (unlabelled
    evidence): the share of drifted feature columns, the drift of the
    champion's outputs.

Verdicts of a signal (``fired`` in the record is always the raw verdict on
this window alone; later cycles read it for hysteresis)
    ``quiet``       did not fire on this window;
    ``unknown``     could not be measured (performance without labels or baseline);
    ``held``        fired on this window, but not on ``consecutive`` windows in a row
                    (a performance drop of ``immediate_factor`` times its threshold or more
                    counts at once):
                    this one and the previous ones judged with the same champion
                    (cycles that saw no new batches are not windows; a promotion
                    ends the run, and for ``performance_drop`` so does a re-baselining);
    ``discounted``  a drift signal that fired on enough windows while performance was
                    measured on this window and did not fire raw, with
                    ``data_drift_alone = false``: data drift alone (seasonal data drifts
                    on every batch) is no reason to build when labels show the model is
                    fine. Without labelled performance (no labels yet, no baseline, or
                    ``performance_drop = false``) drift counts on its own; with a raw
                    performance drop (even one still held) it corroborates and counts;
    ``fired``       counts towards the decision.

Combination: ``combine = "any"`` triggers when at least one signal's
verdict is ``fired``; ``"all"`` when every armed signal's is (a signal that
could not be measured has not fired, so ``"all"`` stays quiet without labels).

Guards (verdict ``holds`` or ``blocks``): ``min_rows``, ``min_labelled_rows``
and ``cooldown``: after a promotion, a rejected challenger or one left
awaiting approval (by a cycle or a person; bootstrap excluded), the next
``cooldown_batches`` cycles that saw new batches may not improve.

Re-baselining: when the last ``rebaseline_after`` challengers, built while
the performance signal fired, each failed the improvement gate (nothing in
between promoted, awaited approval or was decided by a person; a window
whose performance did not fire raw ends the run; skipped and failed cycles
neither count nor end it) and the performance signal fires raw on this
window too, the world has likely become harder: the baseline is reset to
the champion's level, the mean of its window metric over those cycles and
this one. This window's performance is judged against the new baseline;
``Decision.rebaseline`` carries the value for the cycle to store. Between
re-baselinings the baseline is only raised (by promotions): a weak
challenger promoted after a drift does not silence the trigger.

The decision's first reason is the decisive one: why it improves, what
blocks it, or why it is quiet. Without history (the old call
``decide(policy, monitor, baseline)``) hysteresis and cooldown are not
checked and say so, and no re-baselining happens.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from kaizen.ledger import Record
from kaizen.metrics import drop, standard_error
from kaizen.policy import Policy

if TYPE_CHECKING:
    from kaizen.models import Predictions

__all__ = ["Decision", "GUARDS", "RuleResult", "SIGNALS", "TriggerInputs", "decide"]

PERFORMANCE = "performance_drop"
DRIFT_SIGNALS = ("drift_share", "prediction_drift")
#: decisions that start a cooldown (kinds cycle, approval, rejection)
COOLDOWN_EVENTS = ("promoted", "rejected", "awaiting_approval")


@dataclass(frozen=True)
class TriggerInputs:
    """Everything :func:`decide` looks at. Immutable; build one per cycle.

    ``labelled_y`` / ``labelled_pred``: the targets of the window's labelled
    rows and the champion's predictions on exactly those rows (None: the
    performance threshold is the fixed floor). ``history``: this policy's
    earlier promotion-log records, oldest first (None: unknown, so
    hysteresis and cooldown are not checked); records of other policies are
    ignored. ``seed`` seeds the bootstrap of the standard error.
    """

    monitor: Any
    baseline: float | None
    labelled_y: np.ndarray | None = None
    labelled_pred: Predictions | None = None
    history: Sequence[Record] | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if (self.labelled_y is None) != (self.labelled_pred is None):
            raise ValueError("The 'labelled_y' and 'labelled_pred' parameters of TriggerInputs must be given "
                             "together. Got only one of them.")
        if self.labelled_y is not None and len(self.labelled_y) != len(self.labelled_pred.labels):
            raise ValueError(f"The 'labelled_pred' parameter of TriggerInputs must have one prediction per "
                             f"labelled row ({len(self.labelled_y)}). Got {len(self.labelled_pred.labels)} instead.")


@dataclass(frozen=True)
class RuleResult:
    rule: str
    fired: bool                        # signals: fired on this window alone; guards: holds
    message: str
    value: float | None = None
    threshold: float | None = None
    verdict: str = ""                  # see the module docstring; "" reads as fired/quiet
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.verdict:
            object.__setattr__(self, "verdict", "fired" if self.fired else "quiet")

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "fired": self.fired, "verdict": self.verdict, "value": self.value,
                "threshold": self.threshold, "message": self.message, "details": dict(self.details)}


@dataclass(frozen=True)
class Decision:
    action: str                       # "improve" or "skip"
    reasons: tuple[str, ...]          # the decisive reason first
    signals: tuple[RuleResult, ...]
    guards: tuple[RuleResult, ...]
    triggered: bool = False           # the signals asked to improve (a guard may still block)
    combine: str = "any"
    rebaseline: float | None = None   # the new baseline the cycle must store, if reset now
    rebaseline_reason: str | None = None

    @property
    def improve(self) -> bool:
        return self.action == "improve"

    def to_dict(self) -> dict[str, Any]:
        return {"action": self.action, "triggered": self.triggered, "combine": self.combine,
                "reasons": list(self.reasons), "signals": [r.to_dict() for r in self.signals],
                "guards": [r.to_dict() for r in self.guards], "rebaseline": self.rebaseline,
                "rebaseline_reason": self.rebaseline_reason}


class Rule(ABC):
    name = ""

    @abstractmethod
    def evaluate(self, policy: Policy, inputs: TriggerInputs) -> RuleResult | None:
        """None when the rule is switched off in the policy."""


class DriftShareRule(Rule):
    name = "drift_share"

    def evaluate(self, policy: Policy, inputs: TriggerInputs) -> RuleResult | None:
        thr = policy.trigger.drift_share
        if thr is None:
            return None
        mon = inputs.monitor
        share = float(mon.drift_share)
        cols = ", ".join(mon.drifted_columns) or "none"
        return RuleResult(self.name, share >= thr, f"data drift in {share:.0%} of columns (threshold {thr:.0%}); "
                          f"drifted: {cols}", share, thr)


class PredictionDriftRule(Rule):
    name = "prediction_drift"

    def evaluate(self, policy: Policy, inputs: TriggerInputs) -> RuleResult | None:
        pd_ = inputs.monitor.prediction_drift
        if not policy.trigger.prediction_drift or pd_ is None:
            return None
        return RuleResult(self.name, bool(pd_.drifted),
                          f"prediction drift {pd_.method} score {pd_.score:.4g} "
                          f"({'drifted' if pd_.drifted else 'stable'} at threshold {pd_.threshold:g})",
                          float(pd_.score), float(pd_.threshold))


class PerformanceDropRule(Rule):
    name = PERFORMANCE

    def evaluate(self, policy: Policy, inputs: TriggerInputs) -> RuleResult | None:
        floor = policy.trigger.performance_drop
        if floor is None:
            return None
        metric, cur, base = policy.model.metric, inputs.monitor.champion_metric, inputs.baseline
        if not _finite(cur):
            return RuleResult(self.name, False, f"champion {metric} unknown: no usable labelled rows",
                              None, floor, "unknown")
        if not _finite(base):
            return RuleResult(self.name, False, f"champion {metric} {cur:.4f}; no baseline to compare with",
                              None, floor, "unknown")
        thr, how, details = _performance_threshold(policy, inputs)
        d = drop(metric, cur, base)
        details["baseline"], details["champion_metric"] = base, cur
        return RuleResult(self.name, d >= thr, f"champion {metric} {cur:.4f} on {inputs.monitor.labelled_rows} "
                          f"labelled rows vs baseline {base:.4f}: drop {d:+.4f} (threshold {thr:.4f}{how})",
                          d, thr, details=details)


def _performance_threshold(policy: Policy, inputs: TriggerInputs) -> tuple[float, str, dict[str, Any]]:
    """max(floor, k × SE of the drop); the SE is read in drop units (relative for rmse/mae)."""
    floor, k = policy.trigger.performance_drop, policy.trigger.performance_drop_se
    details: dict[str, Any] = {"floor": floor, "k": k, "se": None, "n": None}
    if k is None:
        return floor, " = performance_drop", details
    if inputs.labelled_y is None:
        return floor, f" = performance_drop; the {k:g} × standard error term needs the labelled rows", details
    y, pred = inputs.labelled_y, inputs.labelled_pred
    se = standard_error(policy.model.metric, y, pred.labels, pred.scores,
                        pos_label=policy.model.positive_label, seed=inputs.seed)
    if not policy.model.higher_is_better:
        # an error metric's drop is relative (cur / baseline − 1); its noise is read relative to the window's own
        # level (the relative SE is scale-free), not to the baseline: a window whose errors doubled has an SE twice
        # as large in metric units, which must not hide the very drop it measures
        cur = inputs.monitor.champion_metric
        se = se / abs(cur) if _finite(cur) and cur else float("nan")
    details.update(se=se if _finite(se) else None, n=len(y))
    if not _finite(se):
        return floor, f" = performance_drop; standard error undefined on {len(y)} rows", details
    return max(floor, k * se), f" = max({floor:g}, {k:g} × SE {se:.4f} at n={len(y)})", details


class MinRowsGuard(Rule):
    name = "min_rows"

    def evaluate(self, policy: Policy, inputs: TriggerInputs) -> RuleResult:
        need, rows = policy.trigger.min_rows, inputs.monitor.rows
        ok = rows >= need
        return RuleResult(self.name, ok, f"{rows} rows in the window (need {need})", rows, need, _guard(ok))


class MinLabelledRowsGuard(Rule):
    name = "min_labelled_rows"

    def evaluate(self, policy: Policy, inputs: TriggerInputs) -> RuleResult:
        need, rows = policy.trigger.min_labelled_rows, inputs.monitor.labelled_rows
        ok = rows >= need
        return RuleResult(self.name, ok, f"{rows} labelled rows in the window (need {need})", rows, need, _guard(ok))


class CooldownGuard(Rule):
    name = "cooldown"

    def evaluate(self, policy: Policy, inputs: TriggerInputs) -> RuleResult | None:
        need = policy.trigger.cooldown_batches
        if need == 0:
            return None
        if inputs.history is None:
            return RuleResult(self.name, True, "cooldown not checked: no history given", None, need, "holds")
        recs = _mine(policy, inputs.history)
        at = next((i for i in range(len(recs) - 1, -1, -1) if recs[i].kind != "bootstrap"
                   and recs[i].decision in COOLDOWN_EVENTS), None)
        if at is None:
            return RuleResult(self.name, True, "no promotion or rejection to cool down from", None, need, "holds")
        event = recs[at]
        since = sum(_evaluated(r) for r in recs[at + 1:])
        what = {"promoted": "a promotion", "rejected": "a rejection",
                "awaiting_approval": "a challenger left awaiting approval"}[event.decision]
        ok = since >= need
        msg = (f"{since} of the {need} cycle(s) with new batches that must pass after {what} "
               f"(record {event.id}) have passed (trigger.cooldown_batches = {need})")
        return RuleResult(self.name, ok, ("cooldown over: " if ok else "cooldown: ") + msg, since, need, _guard(ok),
                          {"since": event.id})


SIGNALS: tuple[Rule, ...] = (DriftShareRule(), PredictionDriftRule(), PerformanceDropRule())
GUARDS: tuple[Rule, ...] = (MinRowsGuard(), MinLabelledRowsGuard(), CooldownGuard())


def decide(policy: Policy, inputs: TriggerInputs | Any, baseline: float | None = None) -> Decision:
    """The cycle's decision. ``decide(policy, monitor, baseline)`` still works (no history, no rows)."""
    if not isinstance(inputs, TriggerInputs):
        inputs = TriggerInputs(monitor=inputs, baseline=baseline)
    trig = policy.trigger
    recs = None if inputs.history is None else _mine(policy, inputs.history)
    new_base, base_reason = _rebaseline(policy, inputs, recs)
    judged = inputs if new_base is None else replace(inputs, baseline=new_base)
    raw = [r for r in (s.evaluate(policy, judged) for s in SIGNALS) if r is not None]
    signals = _discount(policy, [_sustain(policy, r, recs, reset=new_base is not None) for r in raw])
    guards = tuple(r for r in (g.evaluate(policy, inputs) for g in GUARDS) if r is not None)
    counted = [s for s in signals if s.verdict == "fired"]
    if any(s.details.get("decisive") for s in counted):  # a decisive drop does not wait out a cooldown either
        guards = tuple(replace(g, fired=True, verdict="holds", message=g.message + "; overridden: the performance "
                               "drop is decisive (trigger.immediate_factor)")
                       if g.rule == "cooldown" and g.verdict == "blocks" else g for g in guards)
    triggered = bool(signals) and (len(counted) == len(signals) if trig.combine == "all" else bool(counted))
    blocked = [g for g in guards if g.verdict == "blocks"]
    extra = (base_reason,) if base_reason else ()
    done = dict(signals=tuple(signals), guards=guards, triggered=triggered, combine=trig.combine,
                rebaseline=new_base, rebaseline_reason=base_reason)
    why = tuple(f"triggered ({s.rule}): {s.message}" for s in _first_performance(counted))
    if triggered and not blocked:
        return Decision("improve", why + extra, **done)
    if triggered:
        return Decision("skip", tuple(f"cannot improve: {g.message}" for g in blocked) + why + extra, **done)
    return Decision("skip", extra + _quiet_reasons(policy, signals), **done)


def _quiet_reasons(policy: Policy, signals: list[RuleResult]) -> tuple[str, ...]:
    if not signals:
        return ("no trigger rule is armed in the policy",)
    if not any(s.fired for s in signals):
        return ("no trigger fired: " + "; ".join(s.message for s in signals),)
    out: list[str] = []
    if policy.trigger.combine == "all":
        missing = [s.rule for s in signals if s.verdict != "fired"]
        out.append(f"not every signal fired (trigger.combine = \"all\"): {', '.join(missing)} did not")
    out += [f"{s.verdict} ({s.rule}): {s.message}" for s in _first_performance(signals) if s.verdict != "quiet"]
    rest = [s.message for s in signals if s.verdict == "quiet"]
    return tuple(out) + ((("quiet: " + "; ".join(rest)),) if rest else ())


def _sustain(policy: Policy, r: RuleResult, recs: list[Record] | None, *, reset: bool) -> RuleResult:
    """Hysteresis: a raw firing counts once it fired on ``consecutive`` windows in a row."""
    need = policy.trigger.consecutive
    if not r.fired:
        return r
    factor = policy.trigger.immediate_factor
    if (r.rule == PERFORMANCE and factor is not None and _finite(r.value) and _finite(r.threshold)
            and r.threshold > 0 and r.value >= factor * r.threshold):
        return replace(r, message=r.message + f"; at least {factor:g} × its threshold: decisive, counts at once "
                                              "(trigger.immediate_factor)", details={**r.details, "decisive": True})
    if need == 1:
        return r
    if recs is None:
        return replace(r, message=r.message + f"; trigger.consecutive = {need} not checked (no history given)")
    prev = 0 if reset and r.rule == PERFORMANCE else _streak(recs, r.rule, need - 1)
    windows = prev + 1
    details = {**r.details, "windows": windows, "consecutive": need}
    if windows >= need:
        return replace(r, message=r.message + f"; fired on {need} consecutive windows", details=details)
    return replace(r, verdict="held", details=details,
                   message=r.message + f"; fired on {windows} of the {need} consecutive windows needed "
                                       "(trigger.consecutive)")


def _streak(recs: list[Record], rule: str, enough: int) -> int:
    """Earlier windows, newest first, in which ``rule`` fired raw with the current champion (up to ``enough``)."""
    n = 0
    for r in reversed(recs):
        if n >= enough or r.decision == "promoted":
            break
        if not _evaluated(r):
            continue
        s = _signal(r, rule)
        if s is None or not s.get("fired"):
            break
        n += 1
        if rule == PERFORMANCE and r.trigger.get("rebaseline") is not None:
            break
    return n


def _discount(policy: Policy, signals: list[RuleResult]) -> list[RuleResult]:
    """``data_drift_alone = false``: drift does not count while labelled performance is measured and fine."""
    perf = next((s for s in signals if s.rule == PERFORMANCE), None)
    if policy.trigger.data_drift_alone or perf is None or perf.verdict == "unknown" or perf.fired:
        return signals
    note = (f"; discounted: {policy.model.metric} on {perf.details.get('n') or 'the'} labelled rows shows no drop "
            "and drift alone is no reason to build (trigger.data_drift_alone = false)")
    return [replace(s, verdict="discounted", message=s.message + note)
            if s.rule in DRIFT_SIGNALS and s.verdict == "fired" else s for s in signals]


def _rebaseline(policy: Policy, inputs: TriggerInputs, recs: list[Record] | None) -> tuple[float | None, str | None]:
    """The new baseline and why, when ``rebaseline_after`` challengers in a row failed to beat the champion."""
    k, metric, base = policy.trigger.rebaseline_after, policy.model.metric, inputs.baseline
    cur = inputs.monitor.champion_metric
    if k is None or recs is None or not _finite(base) or not _finite(cur):
        return None, None
    failed = _failed_challengers(recs)[:k]
    if len(failed) < k:
        return None, None
    perf = PerformanceDropRule().evaluate(policy, inputs)
    if perf is None or not perf.fired:
        return None, None
    levels = [m for m in (((r.trigger.get("monitor") or {}).get("champion_metric")) for r in failed) if _finite(m)]
    level = float(np.mean(levels + [cur]))
    if drop(metric, level, base) <= 0:
        return None, None
    ids = ", ".join(r.id for r in reversed(failed))
    return level, (f"baseline reset from {base:.4f} to {level:.4f}, the champion's mean {metric} over the last "
                   f"{len(levels) + 1} windows: {k} challenger(s) in a row failed to beat it while performance "
                   f"was below the baseline (cycles {ids}; trigger.rebaseline_after = {k}); the new world may "
                   "be harder")


def _failed_challengers(recs: list[Record]) -> list[Record]:
    """The current run of challengers rejected by the improvement gate while performance fired, newest first."""
    out: list[Record] = []
    for r in reversed(recs):
        if r.kind != "cycle" or r.decision in ("promoted", "awaiting_approval"):
            break
        if not _evaluated(r):
            continue
        perf = _signal(r, PERFORMANCE)
        if perf is None or not perf.get("fired"):
            break
        if r.decision == "rejected":
            if not any(g.get("name") in ("improvement", "significance") and not g.get("passed") for g in r.gates):
                break
            out.append(r)
        if r.trigger.get("rebaseline") is not None:
            break
    return out


def _first_performance(signals: list[RuleResult]) -> list[RuleResult]:
    return sorted(signals, key=lambda s: s.rule != PERFORMANCE)


def _mine(policy: Policy, history: Sequence[Record]) -> list[Record]:
    return [r for r in history if r.policy == policy.name]


def _evaluated(r: Record) -> bool:
    """A cycle that saw new batches and reached the decision (its trigger section holds the signals)."""
    return r.kind == "cycle" and isinstance(r.trigger, Mapping) and "signals" in r.trigger


def _signal(r: Record, rule: str) -> Mapping[str, Any] | None:
    return next((s for s in r.trigger.get("signals", ()) if isinstance(s, Mapping) and s.get("rule") == rule), None)


def _guard(ok: bool) -> str:
    return "holds" if ok else "blocks"


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float, np.number)) and not isinstance(x, bool) and math.isfinite(x)
