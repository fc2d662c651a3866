"""The challenger's probabilities must be no worse calibrated than the champion's: a non-inferiority test of
the Brier score on the holdout.

A challenger picked on roc_auc (or accuracy) can rank rows as well while its probabilities drift from the
frequencies they claim, and whatever reads the score as a probability (a threshold, an expected cost, a
pricing rule) then acts on wrong numbers. The Brier score (the mean squared gap between P(positive) and the
0/1 outcome) measures both. Both models are scored on the same holdout rows; the per-row differences
of squared error are resampled ``gates.bootstrap_resamples`` times (a paired bootstrap, seeded by
``build.seed``), and the challenger passes only when the one-sided ``gates.confidence`` upper bound of
its Brier score minus the champion's is below ``gates.max_brier_loss``: the burden of proof is the
challenger's, as for the golden gate. Binary classification only; off unless ``gates.max_brier_loss``
is set.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from kaizen._fields import setting
from kaizen.gates._base import Evidence, Gate, GateResult
from kaizen.metrics import bootstrap_weights

__all__ = ["CalibrationGate"]


@dataclass(frozen=True)
class Settings:
    max_brier_loss: float | None = setting(None, lo=0, hi=1, off=True,
                                           doc="turns on the calibration gate: the one-sided confidence upper bound "
                                               "of (challenger - champion) Brier score on the holdout must be below "
                                               "this")


def upper_bound(diff: np.ndarray, *, confidence: float, resamples: int, seed: int) -> float:
    """The one-sided ``confidence`` upper bound of the mean of ``diff`` (paired bootstrap of its rows)."""
    n = len(diff)
    means = np.concatenate([w @ diff / n for w in bootstrap_weights(n, resamples, seed)])
    return float(np.quantile(means, confidence))


class CalibrationGate(Gate):
    """Brier-score non-inferiority on the holdout: the upper bound of (challenger - champion) < ``max_brier_loss``."""

    name = "calibration"
    order = 35
    settings = Settings
    tasks = ("binary_classification",)
    switch = "max_brier_loss"

    def enabled(self, gates: Any) -> bool:
        return gates.max_brier_loss is not None

    def check(self, evidence: Evidence) -> GateResult:
        spec, model = evidence.policy.gates, evidence.policy.model
        margin, h = spec.max_brier_loss, evidence.holdout
        if margin is None:
            return self.result(True, "no calibration margin (gates.max_brier_loss)", margin=None)
        if h.challenger.scores is None:
            return self.result(False, "the challenger gives no probabilities: its calibration cannot be judged",
                               margin=margin, rows=len(h.y))
        y = (np.asarray(h.y) == model.positive_label).astype(float)
        chall = (np.asarray(h.challenger.scores, dtype=float) - y) ** 2
        if h.champion is None:
            brier = float(chall.mean()) if len(y) else float("nan")
            return self.result(bool(np.isfinite(brier)), f"challenger Brier score {brier:.4f} on {len(y)} holdout "
                               "rows (no champion to compare with)", rows=len(y), challenger=brier, margin=margin)
        if h.champion.scores is None:
            return self.result(False, "the champion gives no probabilities to compare calibration with",
                               margin=margin, rows=len(y))
        champ = (np.asarray(h.champion.scores, dtype=float) - y) ** 2
        diff = chall - champ
        if not len(y) or not np.isfinite(diff).all():
            return self.result(False, f"the Brier score is undefined on the {len(y)} holdout rows (no rows, or a "
                               "probability that is not a number)", rows=len(y), margin=margin)
        upper = upper_bound(diff, confidence=spec.confidence, resamples=spec.bootstrap_resamples, seed=evidence.seed)
        ok = upper < margin
        champ_b, chall_b = float(champ.mean()), float(chall.mean())
        verdict = ("shows it is calibrated no worse than the margin" if ok else
                   "does not show it is calibrated no worse than the margin: non-inferiority not shown")
        return self.result(ok, f"challenger Brier score {chall_b:.4f} vs champion {champ_b:.4f} on {len(y)} holdout "
                               f"rows (change {chall_b - champ_b:+.4f}; {spec.confidence:.0%} upper bound "
                               f"{upper:+.4f} vs margin {margin:g}) {verdict}",
                           rows=len(y), champion=champ_b, challenger=chall_b, change=chall_b - champ_b,
                           upper_bound=upper, margin=margin, confidence=spec.confidence,
                           resamples=spec.bootstrap_resamples)
