"""Schedule: a gated refit of the champion's recipe every ``trigger.refit_every_batches`` windows.

Not a signal of trouble: when no signal triggers and every guard holds, a scheduled refit climbs
only the ladder's first rung (the champion's recipe fit on recent rows, no search) and is gated
like any challenger. 0 switches it off.
"""

from __future__ import annotations

from kaizen.monitor.rules._base import Rule, RuleResult, TriggerInputs
from kaizen.policy import Policy

__all__ = ["ScheduledRefit"]


class ScheduledRefit(Rule):
    name = "refit_every_batches"

    def evaluate(self, policy: Policy, inputs: TriggerInputs) -> RuleResult | None:
        every = policy.trigger.refit_every_batches
        if every <= 0:
            return None
        past = inputs.past(policy)
        seen = 1 + (past.windows_since_build() if past is not None else 0)
        due = seen >= every
        return RuleResult(self.name, due, f"scheduled refit: {seen} batch(es) since the last challenger was built "
                          f"(trigger.refit_every_batches = {every}); the champion's recipe is refit and gated, no "
                          "search" if due else f"{seen} of {every} batches toward the next scheduled refit",
                          seen, every)
