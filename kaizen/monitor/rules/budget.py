"""Guard: the policy's daily compute budget (``[budget] daily_cpu_seconds``) is not used up.

The day is a UTC date; a cycle's spend counts toward the day in its ``cost.day`` (a backtest books
the replayed batch's day). Cycles still monitor once it is used up; they do not build.
"""

from __future__ import annotations

from kaizen.cost import budget_problem
from kaizen.monitor.rules._base import Rule, RuleResult, TriggerInputs, guard
from kaizen.policy import Policy

__all__ = ["BudgetGuard"]


class BudgetGuard(Rule):
    name = "budget"
    role, order = "guard", 10

    def evaluate(self, policy: Policy, inputs: TriggerInputs) -> RuleResult | None:
        cap = policy.budget.daily_cpu_seconds
        if cap is None or inputs.spent is None:
            return None
        spent = float(inputs.spent())
        over = budget_problem(cap, spent, inputs.day or "today")
        details = {"day": inputs.day, "spent_cpu_seconds": round(spent, 3), "daily_cpu_seconds": cap}
        return RuleResult(self.name, over is None, over or f"{spent:.1f} of {cap:g} CPU seconds spent on "
                          f"{inputs.day} (budget.daily_cpu_seconds)", round(spent, 3), cap, guard(over is None),
                          details)
