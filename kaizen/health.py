"""Is the champion below its baseline right now? The one verdict ``kaizen status``, the UI and ``/metrics`` show.

Read from the newest window of a policy (:func:`kaizen.past.is_window`): its ``performance_drop``
signal holds the champion's metric on the window's labelled rows (judged without the rows the
data-trust checks flagged), the baseline it was compared with, the drop and the threshold.
A drop at or beyond the threshold is ``red``, whatever the cycle then did: rejected challengers,
a cooldown or a held window do not make a broken champion look fine. Only a recorded decision
moves the baseline (a ``rebaselined`` record, a promotion), so only a decision turns it green.
``unknown`` when no window measured the metric (no labels, no baseline, performance off).

Quick to import: no MLflow, no pandas.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from kaizen.ledger import Record
from kaizen.past import PERFORMANCE, is_window, signal

__all__ = ["health"]


def health(records: Iterable[Record], policy: str) -> dict[str, Any]:
    """``{"state": "red" | "ok" | "unknown", ...numbers}`` from ``records`` (oldest first) of ``policy``."""
    newest = None
    for r in records:
        if r.policy == policy and is_window(r):
            s = signal(r, PERFORMANCE)
            if s is not None and s.get("verdict") != "unknown" and s.get("value") is not None:
                newest = (r, s)
    if newest is None:
        return {"state": "unknown", "why": "no window has measured the champion's metric against a baseline yet"}
    r, s = newest
    d = s.get("details") or {}
    cur = d.get("clean_metric", d.get("champion_metric"))
    base = d.get("baseline")
    drop, thr = float(s["value"]), float(s["threshold"])
    red = drop >= thr
    out = {"state": "red" if red else "ok", "record": r.id, "time": r.time, "champion_metric": cur, "baseline": base,
           "drop": drop, "threshold": thr, "champion_version": (r.champion or {}).get("version"),
           "decision": r.decision}
    if red:
        out["why"] = (f"champion v{out['champion_version']} is below its baseline: {_f(cur)} vs {_f(base)} "
                      f"(drop {drop:+.4f} >= threshold {thr:.4f}; record {r.id}, {r.decision})")
    else:
        out["why"] = f"champion at {_f(cur)} vs baseline {_f(base)} (drop {drop:+.4f} < threshold {thr:.4f})"
    return out


def _f(x: Any) -> str:
    return f"{x:.4f}" if isinstance(x, (int, float)) else "?"
