"""Signal: the share of feature columns whose drift test fired (``trigger.drift_share``)."""

from __future__ import annotations

from kaizen.monitor.rules._base import Rule, RuleResult, TriggerInputs
from kaizen.policy import Policy

__all__ = ["DriftShareRule"]


class DriftShareRule(Rule):
    name = "drift_share"
    role, order = "signal", 10

    def evaluate(self, policy: Policy, inputs: TriggerInputs) -> RuleResult | None:
        thr = policy.trigger.drift_share
        if thr is None:
            return None
        mon = inputs.monitor
        share = float(mon.drift_share)
        cols = ", ".join(mon.drifted_columns) or "none"
        return RuleResult(self.name, share >= thr, f"data drift in {share:.0%} of columns (threshold {thr:.0%}); "
                          f"drifted: {cols}", share, thr)
