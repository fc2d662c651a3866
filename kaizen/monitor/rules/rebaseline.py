"""Re-baselining: when challengers keep failing to beat a champion that is below its baseline.

When the last ``trigger.rebaseline_after`` challengers, built while the performance signal fired,
each failed the improvement (or significance) gate (:meth:`kaizen.past.Past.failed_challengers`)
and the performance signal fires on this window too, the world has likely become harder: the
baseline is reset to the champion's level, the mean of its window metric over those cycles and
this one (each judged without the rows the trust checks flagged, where they did). A baseline only
moves by a recorded decision: the cycle that resets it records ``rebaselined`` with this reason
first and notifies (:mod:`kaizen.cycle`); between re-baselinings it is only raised, by promotions.
"""

from __future__ import annotations

import numpy as np

from kaizen.metrics import drop
from kaizen.monitor.rules._base import Rule, RuleResult, TriggerInputs, finite
from kaizen.past import Past
from kaizen.policy import Policy

__all__ = ["rebaseline"]


def _level(result: RuleResult | None, fallback: float | None) -> float | None:
    """The champion's level a performance result measured: without the flagged rows when a screen ran."""
    if result is not None and finite(result.details.get("clean_metric")):
        return float(result.details["clean_metric"])
    return fallback


def rebaseline(policy: Policy, inputs: TriggerInputs, past: Past | None, perf_rule: Rule
               ) -> tuple[float | None, str | None]:
    """The new baseline and why, when ``rebaseline_after`` challengers in a row failed to beat the champion."""
    k, metric, base = policy.trigger.rebaseline_after, policy.model.metric, inputs.baseline
    cur = inputs.monitor.champion_metric
    if k is None or past is None or not finite(base) or not finite(cur):
        return None, None
    failed = past.failed_challengers()[:k]
    if len(failed) < k:
        return None, None
    perf = perf_rule.evaluate(policy, inputs)
    if perf is None or perf.verdict != "fired":
        return None, None
    levels = []
    for r in failed:
        s = next((s for s in (r.trigger or {}).get("signals", ()) if s.get("rule") == perf_rule.name), None)
        clean = (s or {}).get("details", {}).get("clean_metric")
        m = clean if finite(clean) else ((r.trigger.get("monitor") or {}).get("champion_metric"))
        if finite(m):
            levels.append(float(m))
    level = float(np.mean(levels + [_level(perf, cur)]))
    if drop(metric, level, base) <= 0:
        return None, None
    ids = ", ".join(r.id for r in reversed(failed))
    return level, (f"baseline reset from {base:.4f} to {level:.4f}, the champion's mean {metric} over the last "
                   f"{len(levels) + 1} windows: {k} challenger(s) in a row failed to beat it while performance "
                   f"was below the baseline (cycles {ids}; trigger.rebaseline_after = {k}); the new world may "
                   "be harder")
