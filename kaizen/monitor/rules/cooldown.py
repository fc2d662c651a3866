"""Guard: the first ``trigger.cooldown_batches`` windows after a promotion or a rejection do not build.

A promotion, a rejected challenger or one left awaiting approval (by a cycle or a person;
bootstrap excluded) starts a cooldown. A decisive performance drop overrides it
(:func:`kaizen.monitor.rules.decide`): an abrupt change must not serve a broken model one batch longer.
"""

from __future__ import annotations

from kaizen.monitor.rules._base import Rule, RuleResult, TriggerInputs, guard
from kaizen.policy import Policy

__all__ = ["COOLDOWN_EVENTS", "CooldownGuard"]

#: decisions that start a cooldown (kinds cycle, approval, rejection)
COOLDOWN_EVENTS = ("promoted", "rejected", "awaiting_approval")
_WHAT = {"promoted": "a promotion", "rejected": "a rejection",
         "awaiting_approval": "a challenger left awaiting approval"}


class CooldownGuard(Rule):
    name = "cooldown"
    role, order = "guard", 50

    def evaluate(self, policy: Policy, inputs: TriggerInputs) -> RuleResult | None:
        need = policy.trigger.cooldown_batches
        if need == 0:
            return None
        past = inputs.past(policy)
        if past is None:
            return RuleResult(self.name, True, "cooldown not checked: no history given", None, need, "holds")
        event, since = past.since_event(COOLDOWN_EVENTS)
        if event is None:
            return RuleResult(self.name, True, "no promotion or rejection to cool down from", None, need, "holds")
        ok = since >= need
        msg = (f"{since} of the {need} cycle(s) with new batches that must pass after {_WHAT[event.decision]} "
               f"(record {event.id}) have passed (trigger.cooldown_batches = {need})")
        return RuleResult(self.name, ok, ("cooldown over: " if ok else "cooldown: ") + msg, since, need, guard(ok),
                          {"since": event.id})
