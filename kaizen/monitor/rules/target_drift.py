"""Signal: the label distribution of the window's labelled rows drifted from the reference labels
(``trigger.target_drift``; off unless set).

The same machinery as feature drift (Evidently's stattests, :func:`kaizen.monitor.estimate.target_drift`,
computed by the cycle beside the monitor: ``monitor.extras["target_drift"]``), with its own method
(``trigger.target_drift``, which arms it) and threshold (``trigger.target_drift_threshold``; by default
0.05 for a p-value method, 0.1 for a distance); a method that does not fit the labels' kind is swapped
like the feature default. Unknown while fewer than
``trigger.min_labelled_rows`` rows carry a label.

**Drift-family evidence, never an exemption.** Flipped labels (an attacker relabelling a segment) move
the label distribution as much as an honest prior shift: the suspicious rows produce this evidence.
So it is one of :data:`~kaizen.monitor.rules._base.DRIFT_SIGNALS`: discounted while labelled
performance shows no drop (``data_drift_alone = false``), never labelled evidence for
:func:`~kaizen.monitor.rules.act.ambiguity`, and it overrides no guard and no trust block.
"""

from __future__ import annotations

from dataclasses import dataclass

from kaizen._fields import setting
from kaizen.monitor.rules._base import Rule, RuleResult, TriggerInputs
from kaizen.policy import DRIFT_METHODS, Policy

__all__ = ["TARGET_DRIFT", "TargetDriftRule"]

TARGET_DRIFT = "target_drift"


@dataclass(frozen=True)
class Settings:
    target_drift: str | None = setting(None, choices=DRIFT_METHODS, off=True,
                                       doc="signal: the labels of the window's labelled rows drifted from the "
                                           "reference labels (a prior shift, or flipped labels), by this drift "
                                           "method (e.g. \"jensenshannon\"); none or false: off")
    target_drift_threshold: float | None = setting(None, lo=0, lo_open=True, off=True,
                                                   doc="the target drift's threshold; none: 0.05 for a p-value "
                                                       "method, 0.1 for a distance")


class TargetDriftRule(Rule):
    name = TARGET_DRIFT
    role, order = "signal", 22
    settings = Settings

    def evaluate(self, policy: Policy, inputs: TriggerInputs) -> RuleResult | None:
        trig = policy.trigger
        if not trig.target_drift:
            return None
        mon = inputs.monitor
        need, have = trig.min_labelled_rows, int(getattr(mon, "labelled_rows", 0) or 0)
        td = (getattr(mon, "extras", None) or {}).get("target_drift")
        if have < need or td is None:
            why = (f"{have} labelled rows (trigger.min_labelled_rows = {need})" if have < need
                   else "not computed for this window")
            return RuleResult(self.name, False, f"target drift unknown: {why}", None, None, "unknown",
                              {"labelled_rows": have})
        return RuleResult(self.name, bool(td.drifted),
                          f"target drift {td.method} score {td.score:.4g} on {have} labelled rows "
                          f"({'drifted' if td.drifted else 'stable'} at threshold {td.threshold:g})",
                          float(td.score), float(td.threshold), details={**td.to_dict(), "labelled_rows": have})
