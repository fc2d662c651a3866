"""Guard: while a challenger is evaluated in shadow (``promotion.mode = "shadow"``) no other is built."""

from __future__ import annotations

from kaizen.monitor.rules._base import Rule, RuleResult, TriggerInputs, guard
from kaizen.policy import Policy

__all__ = ["ShadowGuard"]


class ShadowGuard(Rule):
    name = "shadow"
    role, order = "guard", 20

    def evaluate(self, policy: Policy, inputs: TriggerInputs) -> RuleResult | None:
        if inputs.shadow is None:
            return None
        return RuleResult(self.name, False, f"a shadow challenger (version {inputs.shadow}) is being evaluated; no "
                          "other challenger is built meanwhile", None, None, guard(False),
                          {"version": inputs.shadow})
