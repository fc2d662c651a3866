"""Guard: enough of the window's rows carry their label before a challenger is built on it
(``trigger.min_labelled_share``; off unless set).

Labels that arrive late rarely arrive at random: a churned customer is labelled when they leave, a
loyal one only when the observation period ends; a fraud chargeback comes before the all-clear.
While only a small share of a window is labelled, its labelled rows are a biased sample of it: the
champion's metric on them, the holdout cut from them and a challenger trained on them all lean the
same way. ``min_labelled_rows`` counts rows and cannot see this; this guard waits until at least
``min_labelled_share`` of the window's rows are labelled. The window's later cycles see the labels
that arrived meanwhile (every cycle reads its batches again), so the wait ends by itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from kaizen._fields import setting
from kaizen.monitor.rules._base import Rule, RuleResult, TriggerInputs, guard
from kaizen.policy import Policy

__all__ = ["MinLabelledShareGuard"]


@dataclass(frozen=True)
class Settings:
    min_labelled_share: float | None = setting(None, lo=0, hi=1, lo_open=True, off=True,
                                               doc="guard: the share of the window's rows that carry a label must "
                                                   "be at least this before a challenger is built; none or false: off")


class MinLabelledShareGuard(Rule):
    name = "min_labelled_share"
    role, order = "guard", 45
    settings = Settings

    def evaluate(self, policy: Policy, inputs: TriggerInputs) -> RuleResult | None:
        need = policy.trigger.min_labelled_share
        if need is None:
            return None
        rows, labelled = inputs.monitor.rows, inputs.monitor.labelled_rows
        share = labelled / rows if rows else 0.0
        ok = share >= need
        return RuleResult(self.name, ok, f"{labelled} of {rows} rows in the window are labelled ({share:.0%}; need "
                          f"{need:.0%}, trigger.min_labelled_share)" + ("" if ok else ": labels that arrive late are "
                          "not a random sample of the window; waiting for more"), share, need, guard(ok),
                          {"rows": rows, "labelled_rows": labelled})
