"""Signal: evidence of decay accumulated across windows (a sequential test on the champion's per-row loss).

Alongside the per-window rule (:mod:`.performance_drop`), which needs one window's drop to exceed
its own noise, this rule feeds every new labelled row to a sequential test
(:mod:`kaizen.monitor.sequential`, an ADWIN-style cut test) whose state is carried from cycle to cycle in the record
(``details.state`` of this signal): a slow decay of a few points that no single window shows adds
up until it is significant. Its own settings: ``trigger.sequential`` (``"adwin"``, or false
to switch it off), ``sequential_delta`` and ``sequential_threshold``, ``sequential_min_rows``.

Only rows of batches never fed before are fed (a batch that stays in a window of several batches
counts once). The state belongs to the serving champion; a promotion or a re-baselining starts a
fresh one. The evidence is accumulated evidence already, so ``trigger.consecutive`` does not apply.

**Flagged rows are no evidence.** When the data-trust checks flagged some of the window's labelled
rows (``TriggerInputs.excluded``), they are not fed; an alarm that only they would have raised
has the verdict ``explained`` (it does not count; the cycle holds the window for a person), like
the performance rule's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from kaizen.monitor.rules._base import Rule, RuleResult, TriggerInputs
from kaizen.monitor.sequential import adwin, fresh_state, losses
from kaizen.past import signal
from kaizen.policy import Policy

__all__ = ["SEQUENTIAL", "SequentialRule"]

SEQUENTIAL = "sequential"


class SequentialRule(Rule):
    name = SEQUENTIAL
    role, order = "signal", 32

    def evaluate(self, policy: Policy, inputs: TriggerInputs) -> RuleResult | None:
        trig = policy.trigger
        if trig.sequential is None or inputs.labelled_y is None:
            return None  # switched off, or no rows to feed (decide() called with the monitor's numbers only)
        state, why_fresh = _start(inputs)
        y, pred = inputs.labelled_y, inputs.labelled_pred
        new = np.zeros(0, bool) if y is None else _unfed(inputs, state)
        kw = dict(delta=trig.sequential_delta, threshold=trig.sequential_threshold, min_rows=trig.sequential_min_rows)
        x_all = losses(policy.model.task, y[new], np.asarray(pred.labels)[new]) if new.any() else np.zeros(0)
        names = (np.asarray(inputs.labelled_batches, dtype=object)[new] if inputs.labelled_batches is not None
                 else np.full(int(new.sum()), "", dtype=object))
        ex = inputs.excluded
        keep = np.ones(int(new.sum()), bool) if ex is None else ~np.asarray(ex, bool)[new]
        after, fired = _feed(state, x_all, names, keep, kw)
        details: dict[str, Any] = {"state": after, "rows_fed": int(keep.sum()), "started": why_fresh,
                                   "delta": trig.sequential_delta}
        thr = trig.sequential_threshold
        level = f"{_describe(after)} on {after['n']} rows since version {after['champion']} {why_fresh}"
        if not keep.all():
            raw, raw_fired = _feed(state, x_all, names, np.ones_like(keep), kw)
            details.update(excluded_rows=int((~keep).sum()), raw_z=raw.get("z"))
            if raw_fired and not fired:
                return RuleResult(self.name, False, level + f"; with the {int((~keep).sum())} row(s) the trust checks "
                                  f"flagged z would be {raw.get('z', 0.0):.2f}: the rise comes from the flagged rows, "
                                  "no evidence the champion decayed", after.get("z"), thr, "explained", details)
        if fired:
            return RuleResult(self.name, True, level + f": above {thr:g}, the champion's loss has risen beyond its "
                              "noise, accumulated across windows (trigger.sequential)", after.get("z"), thr,
                              details=details)
        return RuleResult(self.name, False, level + f" (threshold {thr:g})", after.get("z"), thr, details=details)


def _feed(state: Mapping[str, Any], x: np.ndarray, names: np.ndarray, keep: np.ndarray,
          kw: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """Feed the kept losses batch by batch (one part each, in order); alarms if the last feed alarms."""
    out, fired = dict(state), False
    fed = list(state.get("batches") or [])
    order = list(dict.fromkeys(names.tolist()))
    for b in order:
        rows = (names == b) & keep
        out, fired = adwin(out, x[rows], **kw)
        fed.append(str(b))
    if not order:
        out, fired = adwin(out, np.zeros(0), **kw)
    out["batches"] = fed[-200:]
    return out, fired


def _describe(st: Mapping[str, Any]) -> str:
    if st.get("split") is None:
        return "sequential test: too few rows to split yet"
    return (f"sequential test: z {st['z']:.2f} at the best split (mean loss {st['older_mean']:.4f} on the older "
            f"{st['older_rows']} rows, {st['newer_mean']:.4f} on the newer {st['newer_rows']})")


def _start(inputs: TriggerInputs) -> tuple[dict[str, Any], str]:
    """The state to continue: the newest window's for the serving champion, unless a promotion or a
    re-baselining came after it."""
    champion = inputs.champion
    if inputs.history is None:
        return fresh_state(champion), "(no history given: a fresh test)"
    for r in reversed(inputs.history):
        if r.decision == "rebaselined":
            break
        sig = signal(r, SEQUENTIAL)
        if sig is None:
            continue
        st = (sig.get("details") or {}).get("state")
        if isinstance(st, Mapping) and str(st.get("champion")) == str(champion):
            return dict(st), "(continued)"
        break
    return fresh_state(champion), "(a fresh test: new champion or baseline)"


def _unfed(inputs: TriggerInputs, state: Mapping[str, Any]) -> np.ndarray:
    """Mask over the labelled rows: those of batches the state has not been fed yet."""
    n = len(inputs.labelled_y)
    if inputs.labelled_batches is None:
        return np.ones(n, bool)
    seen = {str(b) for b in state.get("batches") or ()}
    return np.array([str(b) not in seen for b in inputs.labelled_batches], bool)
