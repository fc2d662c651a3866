"""Automatic rollback: a new champion that does worse than the one it retired, beyond noise, is rolled back.

Automatic rollback (``[promotion] auto_rollback_windows = M``, 0 = off): for the
first M labelled windows after a gated promotion (a cycle's, or an approval's),
:func:`check_auto_rollback` compares the new champion's realised metric with the
holdout metric of the champion it retired (the promoting record's
``champion.holdout_metric``). A window counts when it has at least
``trigger.min_labelled_rows`` labelled rows. With ``drop`` read as the policy reads
it (a difference for scores, relative for errors), ``tol`` =
``auto_rollback_tolerance`` and ``z`` = ``auto_rollback_se``, it fires when

- the mean drop over the k windows seen so far exceeds ``max(tol, z × SE_mean)``,
  ``SE_mean = sqrt(Σ SE_i²) / k``, or
- this window's drop exceeds ``max(2 tol, z × SE)``,

where SE is the window metric's standard error (:func:`kaizen.metrics.standard_error`);
a window whose SE is unknown is judged on the tolerance alone. One window's metric
moves by 1–2 points at 400–1,000 rows: the SE term keeps noise from undoing a
promotion the gates approved.
"""

from __future__ import annotations

import math
from typing import Any

from kaizen.ledger import Record
from kaizen.monitor.rules._base import finite as _finite
from kaizen.registry.history import new_champion

__all__ = ["GATED_KINDS", "check_auto_rollback"]

#: kinds of promotion whose record holds the retired champion's holdout metric (gated promotions)
GATED_KINDS = ("cycle", "approval")


def check_auto_rollback(policy: Any, history: list[Record], window_metric: float | None, labelled_rows: int,
                        champion_version: str, *, window_se: float | None = None) -> str | None:
    """Why ``champion_version`` should be rolled back after this window (module docstring), or None.

    ``history``: the policy's records, oldest first, not yet including this cycle's (a cycle's bounded
    read; a promotion older than it is not checked). ``window_metric``, ``labelled_rows``: the
    champion's metric on this window's labelled rows and their number. ``window_se``: that metric's
    standard error in metric units (:func:`kaizen.metrics.standard_error`); None: unknown (for
    accuracy it is then computed from the metric and the rows).
    """
    from kaizen.metrics import drop

    spec, metric = policy.promotion, policy.model.metric
    need = policy.trigger.min_labelled_rows
    if spec.auto_rollback_windows <= 0 or not _finite(window_metric) or labelled_rows < need:
        return None
    mine = [r for r in history if r.policy == policy.name]
    at = next((i for i in range(len(mine) - 1, -1, -1) if new_champion(mine[i]) == str(champion_version)), None)
    if at is None or mine[at].kind not in GATED_KINDS:
        return None  # not promoted in the history read, or not by the gates (bootstrap, retrain, a rollback)
    promo = mine[at]
    judged = next((r for r in mine[:at] if r.id == promo.resolves), promo) if promo.resolves else promo
    ref, old = (judged.champion or {}).get("holdout_metric"), (promo.champion or {}).get("replaced")
    if not _finite(ref) or old is None:
        return None
    seen: dict[Any, tuple[float, float | None]] = {}  # window -> (drop, SE of the drop)
    for r in mine[at + 1:]:
        ch, tr = r.champion or {}, r.trigger or {}
        m, n = ch.get("window_metric"), (tr.get("monitor") or {}).get("labelled_rows") or 0
        if r.kind != "cycle" or str(ch.get("version")) != str(champion_version) or not _finite(m) or n < need:
            continue
        seen[tuple((r.window or {}).get("batches") or ()) or r.id] = (drop(metric, m, ref), _se_of(r, metric, ref))
    if window_se is None and metric == "accuracy":
        window_se = math.sqrt(max(window_metric * (1 - window_metric), 0.0) / labelled_rows)
    d_now = drop(metric, window_metric, ref)
    se_now = _to_drop_units(metric, window_se, ref)
    windows = [*seen.values(), (d_now, se_now)]
    k = len(windows)
    if k > spec.auto_rollback_windows:
        return None
    tol, z = spec.auto_rollback_tolerance, spec.auto_rollback_se or 0.0
    mean = sum(d for d, _ in windows) / k
    ses = [s for _, s in windows]
    se_mean = math.sqrt(sum(s * s for s in ses)) / k if all(_finite(s) for s in ses) else None
    thr_mean = max(tol, z * se_mean) if se_mean is not None else tol
    thr_one = max(2 * tol, z * se_now) if _finite(se_now) else 2 * tol
    head = (f"automatic rollback: champion v{champion_version} (promoted by {promo.kind} {promo.id}) realised "
            f"{metric} {window_metric:.4f} on {labelled_rows} labelled rows of this window, against {ref:.4f} of "
            f"the champion it retired (v{old}) on the holdout")
    rules = (f"(promotion.auto_rollback_tolerance = {tol:g}, auto_rollback_se = {spec.auto_rollback_se}, window "
             f"{k} of auto_rollback_windows = {spec.auto_rollback_windows})")
    if mean > thr_mean:
        se_txt = f" = max({tol:g}, {z:g} × SE {se_mean:.4f})" if se_mean is not None else " = the tolerance"
        return (f"{head}: the mean drop over {k} window(s) since the promotion is {mean:+.4f}, more than "
                f"{thr_mean:.4f}{se_txt} {rules}")
    if d_now > thr_one:
        se_txt = f" = max(2 × {tol:g}, {z:g} × SE {se_now:.4f})" if _finite(se_now) else " = 2 × the tolerance"
        return f"{head}: this window's drop is {d_now:+.4f}, more than {thr_one:.4f}{se_txt} {rules}"
    return None


def _to_drop_units(metric: str, se: float | None, ref: float) -> float | None:
    """A standard error in metric units, read as the policy reads a drop (relative to ``ref`` for errors)."""
    from kaizen.policy import HIGHER_IS_BETTER

    if not _finite(se):
        return None
    if HIGHER_IS_BETTER[metric]:
        return float(se)
    return float(se) / abs(ref) if ref else None


def _se_of(r: Record, metric: str, ref: float) -> float | None:
    """The standard error of a past window's metric, from its performance signal (stored in drop units)."""
    from kaizen.policy import HIGHER_IS_BETTER

    for s in (r.trigger or {}).get("signals") or ():
        if s.get("rule") == "performance_drop":
            d = s.get("details") or {}
            se, base = d.get("se"), d.get("baseline")
            if not _finite(se):
                return None
            if not HIGHER_IS_BETTER[metric]:  # relative to that cycle's baseline: back to metric units first
                se = se * abs(base) if _finite(base) else None
            return _to_drop_units(metric, se, ref)
    return None
