"""The challenger must beat the champion by more than the holdout's noise.

One window's metric has a standard error of 1-2 points at 400-1,000 rows: a
fixed margin promotes noise and blocks real gains alike. This gate compares
both models on the same held-out, time-later rows with a paired bootstrap:
``gates.bootstrap_resamples`` resamples of the rows (seeded), both models
scored on each, and the ``gates.confidence`` interval of the improvement
(:func:`kaizen.metrics.improvement`: a difference for roc_auc, accuracy, f1
and r2, a relative change for rmse and mae). It passes when the interval's
lower bound exceeds ``gates.min_effect``.

Accuracy is a paired count of right and wrong answers, so it is tested
exactly: McNemar's mid-p test on the rows where exactly one model is right
must find the challenger better at the same level (two-sided p below
``1 - confidence``), and the bootstrap lower bound must exceed ``min_effect``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from kaizen.gates._base import Evidence, Gate, GateResult, Labelled
from kaizen.metrics import improvement, improvements, paired_bootstrap

__all__ = ["SignificanceGate", "interval", "mcnemar_midp"]


def interval(gains: np.ndarray, confidence: float) -> tuple[float, float]:
    """The two-sided percentile interval of the finite ``gains`` at ``confidence``."""
    g = gains[np.isfinite(gains)]
    if not len(g):
        return float("nan"), float("nan")
    lo, hi = np.quantile(g, [(1 - confidence) / 2, (1 + confidence) / 2])
    return float(lo), float(hi)


def mcnemar_midp(b: int, c: int) -> float:
    """Two-sided mid-p value of McNemar's exact test for ``b`` and ``c`` discordant pairs.

    ``b``: rows only the first model gets right; ``c``: rows only the second gets right. Under the
    null each discordant row is a fair coin: ``2 P(X < k) + P(X = k)`` with ``X ~ Bin(b + c, 1/2)``
    and ``k = min(b, c)`` (1.0 when there is no discordant row).
    """
    from scipy.stats import binom

    n, k = b + c, min(b, c)
    if n == 0:
        return 1.0
    return float(min(1.0, 2 * binom.cdf(k - 1, n, 0.5) + binom.pmf(k, n, 0.5)))


class SignificanceGate(Gate):
    """The lower bound of the ``gates.confidence`` interval of the holdout improvement exceeds
    ``gates.min_effect`` (accuracy: and McNemar's mid-p test finds the challenger better)."""

    name = "significance"
    order = 20

    def enabled(self, gates: Any) -> bool:
        return gates.promotion_test == "significance"

    def check(self, evidence: Evidence) -> GateResult:
        policy, h = evidence.policy, evidence.holdout
        metric, pos = policy.model.metric, policy.model.positive_label
        spec = policy.gates
        scores = self.holdout_scores(evidence)
        if isinstance(scores, GateResult):
            return scores
        champ, chall = scores
        gain = improvement(metric, chall, champ)
        old, new = paired_bootstrap(metric, h.y, (h.champion.labels, h.champion.scores),
                                    (h.challenger.labels, h.challenger.scores), pos_label=pos,
                                    seed=evidence.seed, resamples=spec.bootstrap_resamples)
        gains = improvements(metric, new, old)
        valid = int(np.isfinite(gains).sum())
        lo, hi = interval(gains, spec.confidence)
        # one-sided bootstrap p-value of "the improvement is at most min_effect"
        p = (1 + int(np.sum(gains[np.isfinite(gains)] <= spec.min_effect))) / (1 + valid)
        numbers = dict(metric=metric, rows=len(h.y), champion=champ, challenger=chall, improvement=gain,
                       ci_low=lo, ci_high=hi, confidence=spec.confidence, min_effect=spec.min_effect,
                       p_value=p, resamples=spec.bootstrap_resamples, valid_resamples=valid, seed=evidence.seed,
                       test="paired bootstrap")
        ok = valid > 0 and lo > spec.min_effect
        why = (f"challenger {metric} {chall:.4f} vs champion {champ:.4f} on {len(h.y)} holdout rows: improvement "
               f"{gain:+.4f}, {spec.confidence:.0%} interval [{lo:+.4f}, {hi:+.4f}] "
               f"{'clears' if ok else 'does not clear'} min_effect {spec.min_effect:g}")
        if metric == "accuracy":
            ok, why = self._mcnemar(h, pos, ok, why, numbers)
        return self.result(ok, why, **numbers)

    def _mcnemar(self, h: Labelled, pos: object, ok: bool, why: str, numbers: dict) -> tuple[bool, str]:
        if pos is None:  # multiclass: a row is right when the label is
            right_old = np.asarray(h.champion.labels) == np.asarray(h.y)
            right_new = np.asarray(h.challenger.labels) == np.asarray(h.y)
        else:
            y = np.asarray(h.y) == pos
            right_old = (np.asarray(h.champion.labels) == pos) == y
            right_new = (np.asarray(h.challenger.labels) == pos) == y
        b = int(np.sum(right_old & ~right_new))
        c = int(np.sum(right_new & ~right_old))
        p = mcnemar_midp(b, c)
        alpha = 1 - numbers["confidence"]
        better = c > b and p < alpha
        numbers.update(test="mcnemar mid-p + paired bootstrap", mcnemar_p=p, only_champion_right=b,
                       only_challenger_right=c)
        why += (f"; McNemar mid-p {p:.4g} ({c} rows only the challenger gets right, {b} only the champion) "
                f"{'is' if better else 'is not'} below {alpha:.3g} in the challenger's favour")
        return ok and better, why
