"""Signal: the champion's *estimated* metric fell below the baseline (``trigger.estimated_drop``; off unless set).

Performance before labels: the estimate (:mod:`kaizen.monitor.estimate`: confidence-based for binary
classifiers, direct loss estimation of mae/rmse for regressors; computed by the cycle beside the
monitor: ``monitor.extras["estimate"]``) reads every row of the window, labelled or not. It fires when
``drop(metric, estimated, baseline) >= trigger.estimated_drop`` (relative for mae/rmse); the
window needs ``trigger.min_rows`` rows like every signal.

**Unlabelled evidence, treated as drift.** The estimate is a function of the features and the
champion's scores only. It belongs to the drift family (:data:`~kaizen.monitor.rules._base.DRIFT_SIGNALS`):
``data_drift_alone = false`` discounts it while labelled performance is measured and shows no drop, it
is never labelled evidence (:attr:`~kaizen.monitor.rules.Decision.labelled_evidence`), it overrides no
guard and no trust block, and a challenger it triggers must pass every gate on labelled holdout rows
like any other.

**Estimated and realised side by side.** The details hold, per batch of the window, the first estimate
any cycle recorded for it with the serving champion (``estimated``, the cycle in ``estimated_in``: the
estimate made while its labels were still missing, when a cycle saw it then) and, once its labels arrive, the champion's
realised metric on them (``realised``, ``labelled_rows``); the window's realised metric is
``monitor.champion_metric``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from kaizen._fields import setting
from kaizen.metrics import drop, score
from kaizen.monitor.rules._base import Rule, RuleResult, TriggerInputs, finite
from kaizen.past import signal
from kaizen.policy import Policy

__all__ = ["ESTIMATED", "EstimatedDropRule"]

ESTIMATED = "estimated_drop"
_HOW = {"cbpe": "confidence-based", "dle": "direct loss estimation"}


@dataclass(frozen=True)
class Settings:
    estimated_drop: float | None = setting(None, lo=0, hi=1, lo_open=True, off=True,
                                           doc="signal (label-free): the champion's metric estimated without "
                                               "labels (confidence-based for classifiers, direct loss estimation "
                                               "of mae/rmse for regressors) fell at least this far below the "
                                               "baseline; none or false: off")


class EstimatedDropRule(Rule):
    name = ESTIMATED
    role, order = "signal", 25
    settings = Settings

    def evaluate(self, policy: Policy, inputs: TriggerInputs) -> RuleResult | None:
        thr = policy.trigger.estimated_drop
        if thr is None:
            return None
        metric, base = policy.model.metric, inputs.baseline
        est = (getattr(inputs.monitor, "extras", None) or {}).get("estimate")
        if est is None:
            return RuleResult(self.name, False, f"estimated {metric} unknown: not computed for this window", None,
                              thr, "unknown")
        details: dict[str, Any] = {**est.to_dict(), "baseline": base,
                                   "realised": _finite_or_none(getattr(inputs.monitor, "champion_metric", None)),
                                   "labelled_rows": int(getattr(inputs.monitor, "labelled_rows", 0) or 0)}
        details["batches"] = _side_by_side(policy, inputs, est)
        if not finite(est.value):
            return RuleResult(self.name, False, f"estimated {metric} unknown: {est.why_unknown or 'undefined'}",
                              None, thr, "unknown", details)
        side = _realised_text(details)
        if not finite(base):
            return RuleResult(self.name, False, f"estimated {metric} {est.value:.4f} on {est.rows} rows; no "
                              f"baseline to compare with{side}", None, thr, "unknown", details)
        d = drop(metric, est.value, base)
        details["drop"] = d
        how = _HOW.get(est.method, est.method)
        return RuleResult(self.name, d >= thr, f"estimated {metric} {est.value:.4f} on {est.rows} rows (label-free, "
                          f"{how}) vs baseline {base:.4f}: drop {d:+.4f} (threshold {thr:.4f}, "
                          f"trigger.estimated_drop){side}", d, thr, details=details)


def _side_by_side(policy: Policy, inputs: TriggerInputs, est: Any) -> list[dict[str, Any]]:
    """Per batch: the first recorded estimate and, where labels have arrived, the realised metric."""
    earlier = _earlier_estimates(inputs)
    realised = _realised_by_batch(policy, inputs)
    out = []
    for b, n, v in est.batches:
        first = earlier.get(b)
        row: dict[str, Any] = {"batch": b, "rows": n, "estimated": v, "estimated_in": None}
        if first is not None:
            row.update(estimated=first[0], estimated_in=first[1])
        if b in realised:
            row.update(realised=realised[b][0], labelled_rows=realised[b][1])
        out.append(row)
    return out


def _earlier_estimates(inputs: TriggerInputs) -> dict[str, tuple[float | None, str]]:
    """batch -> (its first recorded estimate, the record's id), over the history given, oldest first; only the
    serving champion's estimates (another version's are of another model)."""
    out: dict[str, tuple[float | None, str]] = {}
    for r in inputs.history or ():
        if inputs.champion is not None and str((r.champion or {}).get("version")) != str(inputs.champion):
            continue
        sig = signal(r, ESTIMATED)
        if sig is None:
            continue
        for row in (sig.get("details") or {}).get("batches") or ():
            if isinstance(row, Mapping) and row.get("batch") is not None and str(row["batch"]) not in out:
                out[str(row["batch"])] = (row.get("estimated"), str(row.get("estimated_in") or r.id))
    return out


def _realised_by_batch(policy: Policy, inputs: TriggerInputs) -> dict[str, tuple[float | None, int]]:
    if inputs.labelled_y is None or inputs.labelled_batches is None or not len(inputs.labelled_y):
        return {}
    y, pred, names = inputs.labelled_y, inputs.labelled_pred, np.asarray(inputs.labelled_batches, dtype=object)
    labels, scores = np.asarray(pred.labels), None if pred.scores is None else np.asarray(pred.scores)
    out: dict[str, tuple[float | None, int]] = {}
    for b in dict.fromkeys(names.tolist()):
        rows = names == b
        v = score(policy.model.metric, y[rows], labels[rows], None if scores is None else scores[rows],
                  pos_label=policy.model.positive_label)
        out[str(b)] = (v if finite(v) else None, int(rows.sum()))
    return out


def _realised_text(details: Mapping[str, Any]) -> str:
    """What `kaizen show` prints beside the estimate: the realised figures, the window's and per labelled batch."""
    real = details.get("realised")
    text = "" if real is None else f"; realised {real:.4f} on {details.get('labelled_rows')} labelled rows"
    pairs = [f"{b['batch']} {_f(b.get('estimated'))} / {_f(b.get('realised'))}" for b in details.get("batches") or ()
             if b.get("labelled_rows")]
    if pairs:
        text += "; per batch estimated / realised: " + ", ".join(pairs[-6:]) + (
            f" (and {len(pairs) - 6} earlier)" if len(pairs) > 6 else "")
    return text


def _f(v: Any) -> str:
    return f"{v:.4f}" if finite(v) else "n/a"


def _finite_or_none(v: Any) -> float | None:
    return float(v) if finite(v) else None
