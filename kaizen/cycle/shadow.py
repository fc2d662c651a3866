"""Shadow promotion: a challenger that passed the gates earns the champion's place on live windows.

With ``promotion.mode = "shadow"`` a cycle whose challenger passed every gate does not promote
it: the version gets the registry alias ``shadow`` (tag ``kaizen.status = shadow``) and the
cycle records ``shadowing``. Each later cycle scores the shadow beside the champion on exactly
the window's labelled rows (:func:`score`) and keeps the scores in its record
(``trigger.shadow``). After ``promotion.shadow_windows`` windows (:func:`verdict`) the shadow is
promoted if it beat the champion on at least ``promotion.shadow_min_wins`` of them — through
:func:`kaizen.registry.promotion.commit`, so a champion changed meanwhile refuses it — and otherwise
rejected. While a shadow runs, the trigger builds no other challenger.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from kaizen.data.frames import labelled, model_frame, target_values
from kaizen.ledger import Record
from kaizen.policy import Policy

__all__ = ["SHADOW", "score", "verdict"]

#: the registry alias of the version being shadowed
SHADOW = "shadow"


def score(policy: Policy, shadow: Any, model: Any, window: Any, champion_metric: float | None) -> dict[str, Any]:
    """The shadow's metric on the window's labelled rows beside the champion's (the same rows)."""
    from kaizen.metrics import improvement
    from kaizen.metrics import score as metric_of

    rows = labelled(window.current, window.schema)
    out: dict[str, Any] = {"version": shadow.version, "rows": len(rows), "champion_metric": champion_metric,
                           "since": shadow.tags.get("kaizen.shadow_since"),
                           "judged_against": shadow.tags.get("kaizen.shadow_of")}
    if not len(rows) or champion_metric is None or not math.isfinite(champion_metric):
        out.update(window_metric=None, win=None)
        return out
    p = model.predict(model_frame(rows, window.schema))
    value = metric_of(policy.model.metric, target_values(rows, window.schema, policy.model.task), p.labels,
                      p.scores, pos_label=policy.model.positive_label)
    gain = improvement(policy.model.metric, value, champion_metric) if np.isfinite(value) else float("nan")
    out.update(window_metric=float(value) if np.isfinite(value) else None,
               improvement=float(gain) if np.isfinite(gain) else None,
               win=bool(np.isfinite(gain) and gain > 0))
    return out


def verdict(policy: Policy, history: list[Record], current: dict[str, Any]) -> tuple[str, str]:
    """("promote" | "reject" | "wait", why) from this window's score and the earlier ones of the same shadow."""
    version = current["version"]
    scored = [(r.trigger or {}).get("shadow") for r in history
              if r.policy == policy.name and r.kind == "cycle" and ((r.trigger or {}).get("shadow") or {})
              .get("version") == version]
    windows = [s for s in [*scored, current] if s and s.get("win") is not None]
    need, min_wins = policy.promotion.shadow_windows, policy.promotion.shadow_min_wins
    wins = sum(1 for s in windows if s["win"])
    current.update(windows=len(windows), wins=wins)
    table = ", ".join(f"{s['window_metric']:.4f} vs {s['champion_metric']:.4f}" for s in windows)
    if len(windows) < need:
        if wins + (need - len(windows)) < min_wins:
            return "reject", (f"shadow version {version} cannot reach {min_wins} wins in {need} windows any more "
                              f"(won {wins} of {len(windows)}: {table})")
        return "wait", f"shadow version {version}: won {wins} of {len(windows)} windows so far ({need} needed; {table})"
    if wins >= min_wins:
        return "promote", (f"shadow version {version} beat the champion on {wins} of {len(windows)} live windows "
                           f"(promotion.shadow_min_wins = {min_wins}; {table})")
    return "reject", (f"shadow version {version} beat the champion on only {wins} of {len(windows)} live windows "
                      f"(promotion.shadow_min_wins = {min_wins}; {table})")
