"""The challenger must not regress on the trusted golden set."""

from __future__ import annotations

import math

import numpy as np

from kaizen.gates._base import Evidence, Gate, GateResult
from kaizen.metrics import improvement, improvements, paired_bootstrap, score


class GoldenGate(Gate):
    """``improvement(challenger, champion) >= -gates.golden_tolerance`` on the golden set.

    With ``gates.golden_test = "significance"`` a larger loss fails only when it is significant: the
    ``gates.confidence`` quantile of the paired bootstrap of the change stays below ``-golden_tolerance``.
    """

    name = "golden"

    def check(self, evidence: Evidence) -> GateResult:
        g = evidence.golden
        if g is None:
            return self.result(True, "no golden set in the policy: nothing to regress on", rows=0)
        metric = evidence.policy.model.metric
        pos = evidence.policy.model.positive_label
        tol = evidence.policy.gates.golden_tolerance
        chall = score(metric, g.y, g.challenger.labels, g.challenger.scores, pos_label=pos)
        if g.champion is None:
            return self.result(not math.isnan(chall), f"challenger {metric} {chall:.4f} on the golden set "
                               "(no champion to compare with)", metric=metric, rows=len(g.y), challenger=chall)
        champ = score(metric, g.y, g.champion.labels, g.champion.scores, pos_label=pos)
        if math.isnan(champ) or math.isnan(chall):
            return self.result(False, f"{metric} is undefined on the golden set", rows=len(g.y),
                               champion=champ, challenger=chall)
        gain = improvement(metric, chall, champ)
        ok = gain >= -tol
        numbers = dict(metric=metric, rows=len(g.y), champion=champ, challenger=chall, change=gain, tolerance=tol)
        how = ""
        spec = evidence.policy.gates
        if not ok and spec.golden_test == "significance":
            # the loss beyond the tolerance must be real, not the noise of a few hundred golden rows
            old, new = paired_bootstrap(metric, g.y, (g.champion.labels, g.champion.scores),
                                        (g.challenger.labels, g.challenger.scores), pos_label=pos,
                                        seed=evidence.seed, resamples=spec.bootstrap_resamples)
            gains = improvements(metric, new, old)
            gains = gains[np.isfinite(gains)]
            upper = float(np.quantile(gains, spec.confidence)) if len(gains) else float("nan")
            ok = bool(np.isfinite(upper) and upper >= -tol)
            numbers.update(upper_bound=upper, confidence=spec.confidence)
            how = (f"; the loss is {'within' if ok else 'beyond'} the tolerance at {spec.confidence:.0%} confidence "
                   f"(upper bound {upper:+.4f})")
        return self.result(
            ok, f"challenger {metric} {chall:.4f} vs champion {champ:.4f} on {len(g.y)} golden rows "
                f"(change {gain:+.4f}; tolerance {tol:g}){how}{'' if ok else ': regression'}", **numbers)
