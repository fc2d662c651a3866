"""Trigger rules: turn the monitor's numbers into ``improve`` or ``skip``, with reasons.

Two families share one result type. *Signals* say something changed
(dataset drift share, prediction drift, a performance drop against the
baseline); *guards* say whether the window can support a challenger at all
(enough rows, enough labelled rows). A cycle improves when any signal fires
and every guard holds. Every rule reports its value and threshold, fired or
not, so the log shows how close a quiet cycle came.

The performance baseline is the level the model had before any drift (set at
bootstrap and only ever raised by promotions), not the current champion's
last score: a weak challenger promoted after a drift must not silence the
trigger while performance is still below where it was.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from kaizen.metrics import drop
from kaizen.policy import Policy

__all__ = ["Decision", "RuleResult", "decide", "SIGNALS", "GUARDS"]


@dataclass(frozen=True)
class RuleResult:
    rule: str
    fired: bool
    message: str
    value: float | None = None
    threshold: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "fired": self.fired, "value": self.value, "threshold": self.threshold,
                "message": self.message}


@dataclass(frozen=True)
class Decision:
    action: str                       # "improve" or "skip"
    reasons: tuple[str, ...]
    signals: tuple[RuleResult, ...]
    guards: tuple[RuleResult, ...]

    @property
    def improve(self) -> bool:
        return self.action == "improve"

    def to_dict(self) -> dict[str, Any]:
        return {"action": self.action, "reasons": list(self.reasons),
                "signals": [r.to_dict() for r in self.signals], "guards": [r.to_dict() for r in self.guards]}


class Rule(ABC):
    name = ""

    @abstractmethod
    def evaluate(self, policy: Policy, monitor: Any, baseline: float | None) -> RuleResult | None:
        """None when the rule is switched off in the policy."""


class DriftShareRule(Rule):
    name = "drift_share"

    def evaluate(self, policy: Policy, monitor: Any, baseline: float | None) -> RuleResult | None:
        thr = policy.trigger.drift_share
        if thr is None:
            return None
        share = float(monitor.drift_share)
        fired = share >= thr
        cols = ", ".join(monitor.drifted_columns) or "none"
        return RuleResult(self.name, fired, f"data drift in {share:.0%} of columns (threshold {thr:.0%}); "
                          f"drifted: {cols}", share, thr)


class PredictionDriftRule(Rule):
    name = "prediction_drift"

    def evaluate(self, policy: Policy, monitor: Any, baseline: float | None) -> RuleResult | None:
        pd_ = monitor.prediction_drift
        if not policy.trigger.prediction_drift or pd_ is None:
            return None
        return RuleResult(self.name, bool(pd_.drifted),
                          f"prediction drift {pd_.method} score {pd_.score:.4g} "
                          f"({'drifted' if pd_.drifted else 'stable'} at threshold {pd_.threshold:g})",
                          float(pd_.score), float(pd_.threshold))


class PerformanceDropRule(Rule):
    name = "performance_drop"

    def evaluate(self, policy: Policy, monitor: Any, baseline: float | None) -> RuleResult | None:
        thr = policy.trigger.performance_drop
        if thr is None:
            return None
        metric = policy.model.metric
        cur = monitor.champion_metric
        if cur is None or (isinstance(cur, float) and math.isnan(cur)):
            return RuleResult(self.name, False, f"champion {metric} unknown: no usable labelled rows", None, thr)
        if baseline is None:
            return RuleResult(self.name, False, f"champion {metric} {cur:.4f}; no baseline to compare with",
                              None, thr)
        d = drop(metric, cur, baseline)
        fired = d >= thr
        return RuleResult(self.name, fired, f"champion {metric} {cur:.4f} on {monitor.labelled_rows} labelled "
                          f"rows vs baseline {baseline:.4f}: drop {d:+.4f} (threshold {thr:g})", d, thr)


class MinRowsGuard(Rule):
    name = "min_rows"

    def evaluate(self, policy: Policy, monitor: Any, baseline: float | None) -> RuleResult:
        need = policy.trigger.min_rows
        ok = monitor.rows >= need
        return RuleResult(self.name, ok, f"{monitor.rows} rows in the window (need {need})", monitor.rows, need)


class MinLabelledRowsGuard(Rule):
    name = "min_labelled_rows"

    def evaluate(self, policy: Policy, monitor: Any, baseline: float | None) -> RuleResult:
        need = policy.trigger.min_labelled_rows
        ok = monitor.labelled_rows >= need
        return RuleResult(self.name, ok, f"{monitor.labelled_rows} labelled rows in the window (need {need})",
                          monitor.labelled_rows, need)


SIGNALS: tuple[Rule, ...] = (DriftShareRule(), PredictionDriftRule(), PerformanceDropRule())
GUARDS: tuple[Rule, ...] = (MinRowsGuard(), MinLabelledRowsGuard())


def decide(policy: Policy, monitor: Any, baseline: float | None) -> Decision:
    signals = tuple(r for r in (s.evaluate(policy, monitor, baseline) for s in SIGNALS) if r is not None)
    guards = tuple(g.evaluate(policy, monitor, baseline) for g in GUARDS)
    fired = [s for s in signals if s.fired]
    failed = [g for g in guards if not g.fired]
    if not fired:
        reasons = ("no trigger fired: " + "; ".join(s.message for s in signals),) if signals else (
            "no trigger rule is armed in the policy",)
        return Decision("skip", reasons, signals, guards)
    if failed:
        reasons = tuple(f"triggered ({s.rule}): {s.message}" for s in fired) + tuple(
            f"cannot improve: {g.message}" for g in failed)
        return Decision("skip", reasons, signals, guards)
    return Decision("improve", tuple(f"triggered ({s.rule}): {s.message}" for s in fired), signals, guards)
