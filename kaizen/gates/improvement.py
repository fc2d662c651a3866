"""The challenger must beat the champion on the same held-out, time-later rows."""

from __future__ import annotations

from typing import Any

from kaizen.gates._base import Evidence, Gate, GateResult
from kaizen.metrics import improvement


class ImprovementGate(Gate):
    """``improvement(challenger, champion) >= gates.min_improvement`` on the holdout rows."""

    name = "improvement"
    order = 20

    def enabled(self, gates: Any) -> bool:
        return gates.promotion_test == "margin"

    def check(self, evidence: Evidence) -> GateResult:
        metric = evidence.policy.model.metric
        need = evidence.policy.gates.min_improvement
        h = evidence.holdout
        scores = self.holdout_scores(evidence)
        if isinstance(scores, GateResult):
            return scores
        champ, chall = scores
        gain = improvement(metric, chall, champ)
        ok = gain >= need
        verb = "beats" if ok else "does not beat"
        return self.result(
            ok, f"challenger {metric} {chall:.4f} {verb} champion {champ:.4f} by the required {need:g} "
                f"(improvement {gain:+.4f}) on {len(h.y)} holdout rows",
            metric=metric, rows=len(h.y), champion=champ, challenger=chall, improvement=gain, required=need)
