"""Guard: enough rows in the window (``trigger.min_rows``).

A window below it is not judged at all (:func:`kaizen.monitor.rules.decide`): a one-row batch
"drifts in 100 % of columns", and counting that toward hysteresis would let noise arm the trigger.
Its record says so first and holds no signals, so it is not a window for any later count.
"""

from __future__ import annotations

from kaizen.monitor.rules._base import Rule, RuleResult, TriggerInputs, guard
from kaizen.policy import Policy

__all__ = ["MinRowsGuard"]


class MinRowsGuard(Rule):
    name = "min_rows"
    role, order = "guard", 30

    def evaluate(self, policy: Policy, inputs: TriggerInputs) -> RuleResult:
        need, rows = policy.trigger.min_rows, inputs.monitor.rows
        ok = rows >= need
        return RuleResult(self.name, ok, f"{rows} rows in the window (need {need})", rows, need, guard(ok))

    @staticmethod
    def too_small(result: RuleResult) -> str:
        """The first reason of a window too small to judge."""
        return (f"window too small to judge: {result.value} rows (need {result.threshold}, trigger.min_rows); "
                "no signal is evaluated and the window does not count toward hysteresis or cooldown")
