"""The challenger must not regress on the trusted golden set."""

from __future__ import annotations

import math

from kaizen.gates._base import Evidence, Gate, GateResult
from kaizen.metrics import improvement, score


class GoldenGate(Gate):
    """``improvement(challenger, champion) >= -gates.golden_tolerance`` on the golden set."""

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
        return self.result(
            ok, f"challenger {metric} {chall:.4f} vs champion {champ:.4f} on {len(g.y)} golden rows "
                f"(change {gain:+.4f}; tolerance {tol:g}){'' if ok else ': regression'}",
            metric=metric, rows=len(g.y), champion=champ, challenger=chall, change=gain, tolerance=tol)
