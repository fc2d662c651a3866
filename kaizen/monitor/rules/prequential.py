"""Signal: the standing cheap challenger beats the champion, accumulated over several windows.

The cycle keeps a prequential shadow (:mod:`kaizen.cycle.prequential`): the champion's recipe refit
on the rows *before* each new batch, scored on that batch beside the champion. One window's gain of
3–5 points is within a 200-row holdout's noise; the gains of several windows, each measured on
rows neither model had seen, add up. This signal fires when the lower bound of the
``prequential.confidence`` interval of the accumulated gain exceeds ``prequential.min_improvement``
over at least ``prequential.min_windows`` windows with the serving champion, and still does with any
one window left out (no single batch may carry the evidence alone) — the same bar the
significance gate sets for one holdout (:mod:`kaizen.gates.significance`), met with more rows, not
lowered. A cycle it triggers climbs only the ladder's first rung (the recipe refit on the newest
rows), whose improvement gate may be met by this evidence; every other gate still runs.

Accumulated evidence already: ``trigger.consecutive`` does not apply, and ``combine = "all"``
is about the monitored signals (a firing of this one triggers on its own). Its rows come from the
window's labels, so when the trust checks flagged rows of the window the cycle decides again with
the window's score computed without them (verdict ``explained`` when only they carried it), and a
promotion it leads to with any trust finding on the training rows waits for a person
(:func:`kaizen.monitor.rules.act.ambiguity`).
"""

from __future__ import annotations

from kaizen.monitor.rules._base import Rule, RuleResult, TriggerInputs
from kaizen.policy import Policy

__all__ = ["PREQUENTIAL", "PrequentialRule"]

PREQUENTIAL = "prequential"


class PrequentialRule(Rule):
    name = PREQUENTIAL
    role, order = "signal", 34

    def evaluate(self, policy: Policy, inputs: TriggerInputs) -> RuleResult | None:
        spec = policy.prequential
        if not spec.enabled:
            return None
        acc = inputs.prequential
        metric = policy.model.metric
        if acc is None:
            return None  # not scored by the caller (decide() called with the monitor's numbers only)
        if not acc:
            return RuleResult(self.name, False, "standing challenger not scored on this window", None,
                              spec.min_improvement, "unknown")
        if acc.get("unscored"):
            return RuleResult(self.name, False, f"standing challenger: {acc['unscored']}", None, spec.min_improvement,
                              "unknown", dict(acc))
        k, need = int(acc["windows"]), spec.min_windows
        gain, lo = acc["gain"], acc["lower"]
        msg = (f"standing challenger (the champion's recipe refit before each batch) vs the champion over {k} "
               f"window(s), {acc['rows']} rows neither had seen: {metric} gain {gain:+.4f}, "
               f"{spec.confidence:.0%} lower bound {lo:+.4f} (prequential.min_improvement = {spec.min_improvement:g})")
        without = acc.get("lower_without")
        robust = without is not None and without > spec.min_improvement
        fired = k >= need and lo > spec.min_improvement and robust
        if fired:
            msg += f"; with any one window left out at least {without:+.4f}: the refit is better beyond the noise"
        elif k < need:
            msg += f"; {k} of the {need} windows needed (prequential.min_windows)"
        elif lo > spec.min_improvement:
            msg += (f"; but with one window left out the lower bound falls to {without:+.4f}: one batch carries the "
                    "evidence, which no single batch may do alone" if without is not None else
                    "; one window alone cannot make the evidence")
        verdict = "fired" if fired else "quiet"
        raw = acc.get("raw")
        if raw and raw.get("fired") and not fired:
            msg += (f"; with the {acc.get('excluded_rows', 0)} row(s) the trust checks flagged the lower bound would "
                    f"be {raw['lower']:+.4f}: the gain comes from the flagged rows")
            verdict = "explained"
        return RuleResult(self.name, fired, msg, lo, spec.min_improvement, verdict, dict(acc))
