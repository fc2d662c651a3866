"""The challenger must not regress on the trusted golden set: a non-inferiority test.

The golden set is the one piece of evidence no production row produced, so the burden of proof
lies on the challenger. With ``gates.golden_test = "non_inferiority"`` (the default) both models
are scored on ``gates.bootstrap_resamples`` paired bootstrap resamples of the golden rows (seeded)
and the challenger passes only when the one-sided ``gates.confidence`` lower bound of its change
(:func:`kaizen.metrics.improvement`: challenger − champion, relative for rmse/mae) is above
``-gates.golden_margin``. "Not significantly worse" is not enough: a 3-point loss on 400 rows
that the noise cannot rule out fails. ``"margin"`` judges the point estimate alone (change
``>= -golden_margin``), for golden sets too small to bound anything.
"""

from __future__ import annotations

import math

import numpy as np

from kaizen.gates._base import Evidence, Gate, GateResult
from kaizen.metrics import improvement, improvements, paired_bootstrap, score

__all__ = ["GoldenGate", "lower_bound"]


def lower_bound(gains: np.ndarray, confidence: float) -> float:
    """The one-sided ``confidence`` lower bound of the finite ``gains`` (NaN when there are none)."""
    g = gains[np.isfinite(gains)]
    return float(np.quantile(g, 1 - confidence)) if len(g) else float("nan")


class GoldenGate(Gate):
    """Non-inferiority on the golden set: the lower confidence bound of the change is above ``-golden_margin``."""

    name = "golden"
    order = 30

    def check(self, evidence: Evidence) -> GateResult:
        g = evidence.golden
        if g is None:
            return self.result(True, "no golden set in the policy: nothing to regress on", rows=0)
        spec = evidence.policy.gates
        metric = evidence.policy.model.metric
        pos = evidence.policy.model.positive_label
        margin = spec.golden_margin
        chall = score(metric, g.y, g.challenger.labels, g.challenger.scores, pos_label=pos)
        if g.champion is None:
            return self.result(not math.isnan(chall), f"challenger {metric} {chall:.4f} on the golden set "
                               "(no champion to compare with)", metric=metric, rows=len(g.y), challenger=chall)
        champ = score(metric, g.y, g.champion.labels, g.champion.scores, pos_label=pos)
        if math.isnan(champ) or math.isnan(chall):
            return self.result(False, f"{metric} is undefined on the golden set", rows=len(g.y),
                               champion=champ, challenger=chall)
        gain = improvement(metric, chall, champ)
        numbers = dict(metric=metric, rows=len(g.y), champion=champ, challenger=chall, change=gain, margin=margin,
                       test=spec.golden_test)
        head = (f"challenger {metric} {chall:.4f} vs champion {champ:.4f} on {len(g.y)} golden rows "
                f"(change {gain:+.4f}")
        if spec.golden_test == "margin":
            ok = gain >= -margin
            return self.result(ok, f"{head}; margin {margin:g}, point estimate)" + ("" if ok else ": regression"),
                               **numbers)
        old, new = paired_bootstrap(metric, g.y, (g.champion.labels, g.champion.scores),
                                    (g.challenger.labels, g.challenger.scores), pos_label=pos,
                                    seed=evidence.seed, resamples=spec.bootstrap_resamples)
        low = lower_bound(improvements(metric, new, old), spec.confidence)
        ok = bool(np.isfinite(low) and low > -margin)
        numbers.update(lower_bound=low, confidence=spec.confidence, resamples=spec.bootstrap_resamples)
        verdict = ("shows it is no worse than the margin" if ok else
                   "does not show it is no worse than the margin: non-inferiority not shown")
        return self.result(ok, f"{head}; {spec.confidence:.0%} lower bound {low:+.4f} vs margin -{margin:g}) "
                               f"{verdict}", **numbers)
