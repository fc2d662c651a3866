"""Signal: the champion's outputs drifted from its outputs on the reference (``trigger.prediction_drift``)."""

from __future__ import annotations

from kaizen.monitor.rules._base import Rule, RuleResult, TriggerInputs
from kaizen.policy import Policy

__all__ = ["PredictionDriftRule"]


class PredictionDriftRule(Rule):
    name = "prediction_drift"
    role, order = "signal", 20

    def evaluate(self, policy: Policy, inputs: TriggerInputs) -> RuleResult | None:
        pd_ = inputs.monitor.prediction_drift
        if not policy.trigger.prediction_drift or pd_ is None:
            return None
        return RuleResult(self.name, bool(pd_.drifted),
                          f"prediction drift {pd_.method} score {pd_.score:.4g} "
                          f"({'drifted' if pd_.drifted else 'stable'} at threshold {pd_.threshold:g})",
                          float(pd_.score), float(pd_.threshold))
