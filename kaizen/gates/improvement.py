"""The challenger must beat the champion on the same held-out, time-later rows."""

from __future__ import annotations

import math

from kaizen.gates._base import Evidence, Gate, GateResult
from kaizen.metrics import improvement, score


class ImprovementGate(Gate):
    """``improvement(challenger, champion) >= gates.min_improvement`` on the holdout rows."""

    name = "improvement"

    def check(self, evidence: Evidence) -> GateResult:
        metric = evidence.policy.model.metric
        pos = evidence.policy.model.positive_label
        need = evidence.policy.gates.min_improvement
        h = evidence.holdout
        if h.champion is None:
            return self.result(False, "no champion predictions to compare with", rows=len(h.y))
        champ = score(metric, h.y, h.champion.labels, h.champion.scores, pos_label=pos)
        chall = score(metric, h.y, h.challenger.labels, h.challenger.scores, pos_label=pos)
        if math.isnan(champ) or math.isnan(chall):
            return self.result(False, f"{metric} is undefined on the {len(h.y)} holdout rows",
                               rows=len(h.y), champion=champ, challenger=chall)
        gain = improvement(metric, chall, champ)
        ok = gain >= need
        verb = "beats" if ok else "does not beat"
        return self.result(
            ok, f"challenger {metric} {chall:.4f} {verb} champion {champ:.4f} by the required {need:g} "
                f"(improvement {gain:+.4f}) on {len(h.y)} holdout rows",
            metric=metric, rows=len(h.y), champion=champ, challenger=chall, improvement=gain, required=need)
