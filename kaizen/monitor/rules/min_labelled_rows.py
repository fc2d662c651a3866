"""Guard: enough labelled rows in the window to build and judge a challenger (``trigger.min_labelled_rows``)."""

from __future__ import annotations

from kaizen.monitor.rules._base import Rule, RuleResult, TriggerInputs, guard
from kaizen.policy import Policy

__all__ = ["MinLabelledRowsGuard"]


class MinLabelledRowsGuard(Rule):
    name = "min_labelled_rows"
    role, order = "guard", 40

    def evaluate(self, policy: Policy, inputs: TriggerInputs) -> RuleResult:
        need, rows = policy.trigger.min_labelled_rows, inputs.monitor.labelled_rows
        ok = rows >= need
        return RuleResult(self.name, ok, f"{rows} labelled rows in the window (need {need})", rows, need, guard(ok))
