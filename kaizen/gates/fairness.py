"""A sensitive column's groups must not be treated more unequally than the champion treats them.

Optional: it runs when the policy names ``gates.fairness_column``. The groups
are the column's distinct values on the holdout rows. ``gates.fairness_metric``:

* ``demographic_parity``: the share of rows predicted positive, per group;
* ``equal_opportunity``: the share of positive rows predicted positive (true-positive rate), per group.

A model's gap is the largest group rate minus the smallest, over groups with at
least ``gates.min_slice_rows`` rows the rate is computed on (all rows, or the
positive rows). The challenger passes when its gap exceeds the champion's by
at most ``gates.fairness_tolerance``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from kaizen.gates._base import Evidence, Gate, GateResult

__all__ = ["FairnessGate", "group_rates"]

#: a sensitive column with more distinct values than this is not a grouping
MAX_GROUPS = 50


def group_rates(groups: np.ndarray, y: np.ndarray, predicted: np.ndarray, how: str,
                min_rows: int) -> dict[str, Any]:
    """Per group: rows the rate is computed on and the rate (None below ``min_rows``)."""
    out: dict[str, Any] = {}
    for g in sorted({x for x in groups.tolist() if x == x and x is not None}, key=str):
        m = groups == g
        if how == "equal_opportunity":
            m = m & y
        n = int(m.sum())
        out[str(g)] = {"rows": n, "rate": float(predicted[m].mean()) if n >= min_rows else None}
    return out


def _gap(rates: dict[str, Any]) -> float | None:
    r = [v["rate"] for v in rates.values() if v["rate"] is not None]
    return float(max(r) - min(r)) if len(r) >= 2 else None


class FairnessGate(Gate):
    """The challenger's parity gap is at most the champion's + ``gates.fairness_tolerance``."""

    name = "fairness"
    order = 50
    tasks = ("binary_classification",)
    switch = "fairness_column"

    def enabled(self, gates: Any) -> bool:
        return gates.fairness_column is not None

    def check(self, evidence: Evidence) -> GateResult:
        policy, h, frame = evidence.policy, evidence.holdout, evidence.holdout_frame
        spec, pos = policy.gates, policy.model.positive_label
        col, how, tol = spec.fairness_column, spec.fairness_metric, spec.fairness_tolerance
        base = dict(column=col, fairness_metric=how, tolerance=tol, min_rows=spec.min_slice_rows)
        if frame is None or len(frame) != len(h.y):
            return self.result(False, "the holdout rows' columns are not in the evidence: no groups to compare",
                               **base)
        if col not in frame.columns:
            return self.result(False, f"gates.fairness_column {col!r} is not in the holdout rows", **base)
        groups = frame[col].to_numpy(dtype=object)
        distinct = len({x for x in groups.tolist() if x == x and x is not None})
        if distinct > MAX_GROUPS:
            return self.result(False, f"gates.fairness_column {col!r} has {distinct} distinct values on the holdout "
                                      f"(at most {MAX_GROUPS}): name a categorical column", **base)
        y = np.asarray(h.y) == pos
        chall = group_rates(groups, y, np.asarray(h.challenger.labels) == pos, how, spec.min_slice_rows)
        gap_new = _gap(chall)
        if h.champion is None:
            return self.result(True, "no champion to compare with", **base, challenger_gap=gap_new, challenger=chall)
        champ = group_rates(groups, y, np.asarray(h.champion.labels) == pos, how, spec.min_slice_rows)
        gap_old = _gap(champ)
        numbers = dict(**base, champion_gap=gap_old, challenger_gap=gap_new, champion=champ, challenger=chall)
        if gap_new is None or gap_old is None:
            return self.result(True, f"fewer than 2 groups of {col!r} with {spec.min_slice_rows}+ rows: "
                                     "nothing to compare", **numbers)
        worse = gap_new - gap_old
        ok = worse <= tol
        return self.result(ok, f"{how.replace('_', ' ')} gap across {col!r}: challenger {gap_new:.4f} vs champion "
                               f"{gap_old:.4f} ({worse:+.4f}; tolerance {tol:g})" + ("" if ok else ": worse"),
                           **numbers, change=worse)
