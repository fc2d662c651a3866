"""Signal: the champion's metric on the window's labelled rows fell below the baseline beyond its noise.

The threshold is ``max(performance_drop, performance_drop_se × SE)``, SE the metric's standard
error on those rows (:func:`kaizen.metrics.standard_error`) read as a drop (for rmse/mae relative
to the window's own level). Unknown without labelled rows or without a baseline.

**A drop caused by flagged rows is no evidence.** When the data-trust checks flagged some of the
window's labelled rows (``TriggerInputs.excluded``: a relabelled segment, burst copies, outliers,
contradicted labels), the drop is judged on the window *without* them: the value and threshold
of the result are that figure (the raw one is in ``details``). A window whose raw drop fired but
whose drop without the flagged rows does not has the verdict ``explained``: it does not count,
and the cycle holds it for a person (:mod:`kaizen.cycle`). The decisive-drop override
(``trigger.immediate_factor``) therefore uses the figure without the flagged rows too.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from kaizen.metrics import drop, score, standard_error
from kaizen.monitor.rules._base import PERFORMANCE, Rule, RuleResult, TriggerInputs, finite
from kaizen.policy import Policy

__all__ = ["PerformanceDropRule"]


class PerformanceDropRule(Rule):
    name = PERFORMANCE
    role, order = "signal", 30

    def evaluate(self, policy: Policy, inputs: TriggerInputs) -> RuleResult | None:
        floor = policy.trigger.performance_drop
        if floor is None:
            return None
        metric, cur, base = policy.model.metric, inputs.monitor.champion_metric, inputs.baseline
        if not finite(cur):
            return RuleResult(self.name, False, f"champion {metric} unknown: no usable labelled rows",
                              None, floor, "unknown")
        if not finite(base):
            return RuleResult(self.name, False, f"champion {metric} {cur:.4f}; no baseline to compare with",
                              None, floor, "unknown")
        thr, how, details = _threshold(policy, inputs, cur, None)
        d = drop(metric, cur, base)
        details.update(baseline=base, champion_metric=cur)
        message = (f"champion {metric} {cur:.4f} on {inputs.monitor.labelled_rows} labelled rows vs baseline "
                   f"{base:.4f}: drop {d:+.4f} (threshold {thr:.4f}{how})")
        ex = inputs.excluded
        if ex is None or not np.any(ex):
            return RuleResult(self.name, d >= thr, message, d, thr, details=details)
        keep = ~np.asarray(ex, bool)
        y, pred = inputs.labelled_y[keep], inputs.labelled_pred
        labels = np.asarray(pred.labels)[keep]
        scores = None if pred.scores is None else np.asarray(pred.scores)[keep]
        clean = score(metric, y, labels, scores, pos_label=policy.model.positive_label) if keep.any() \
            else float("nan")
        details.update(raw_drop=d, raw_threshold=thr, excluded_rows=int((~keep).sum()), clean_rows=int(keep.sum()),
                       excluded_by=inputs.excluded_why)
        flagged = (f"without the {int((~keep).sum())} labelled row(s) the trust checks flagged"
                   f"{' (' + inputs.excluded_why + ')' if inputs.excluded_why else ''}")
        if not finite(clean):
            details.update(clean_metric=None)
            fired = d >= thr
            return RuleResult(self.name, False, message + f"; {flagged}, {metric} cannot be measured on the "
                              f"{int(keep.sum())} other rows: " + ("the drop comes from the flagged rows alone, no "
                              "evidence the champion broke" if fired else "no drop"), d, thr,
                              "explained" if fired else "quiet", details)
        cthr, chow, _ = _threshold(policy, inputs, clean, keep)
        cd = drop(metric, clean, base)
        details.update(clean_metric=clean, clean_drop=cd, clean_threshold=cthr)
        message += (f"; {flagged}: {metric} {clean:.4f} on {int(keep.sum())} rows, drop {cd:+.4f} "
                    f"(threshold {cthr:.4f}{chow})")
        if d >= thr and cd < cthr:
            return RuleResult(self.name, False, message + ": the drop comes from the flagged rows, no evidence the "
                              "champion broke", cd, cthr, "explained", details)
        return RuleResult(self.name, cd >= cthr, message, cd, cthr, details=details)


def _threshold(policy: Policy, inputs: TriggerInputs, level: float, keep: np.ndarray | None
               ) -> tuple[float, str, dict[str, Any]]:
    """max(floor, k × SE of the drop) on the labelled rows (``keep`` of them); the SE in drop units."""
    floor, k = policy.trigger.performance_drop, policy.trigger.performance_drop_se
    details: dict[str, Any] = {"floor": floor, "k": k, "se": None, "n": None}
    if k is None:
        return floor, " = performance_drop", details
    if inputs.labelled_y is None:
        return floor, f" = performance_drop; the {k:g} × standard error term needs the labelled rows", details
    y, pred = inputs.labelled_y, inputs.labelled_pred
    labels, scores = np.asarray(pred.labels), None if pred.scores is None else np.asarray(pred.scores)
    if keep is not None:
        y, labels, scores = y[keep], labels[keep], None if scores is None else scores[keep]
    se = standard_error(policy.model.metric, y, labels, scores, pos_label=policy.model.positive_label,
                        seed=inputs.seed)
    if not policy.model.higher_is_better:
        # an error metric's drop is relative (cur / baseline − 1); its noise is read relative to the window's own
        # level (the relative SE is scale-free), not to the baseline: a window whose errors doubled has an SE twice
        # as large in metric units, which must not hide the very drop it measures
        se = se / abs(level) if finite(level) and level else float("nan")
    details.update(se=se if finite(se) else None, n=len(y))
    if not finite(se):
        return floor, f" = performance_drop; standard error undefined on {len(y)} rows", details
    return max(floor, k * se), f" = max({floor:g}, {k:g} × SE {se:.4f} at n={len(y)})", details
