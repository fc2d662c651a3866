"""Every policy-defined slice of the holdout must show non-inferiority: the challenger carries the burden of proof.

Each ``[[gates.slices]]`` table cuts one column of the holdout rows into slices
(``values``: one slice per value; ``edges``: ``[e0, e1)``, ``[e1, e2)``, ..., the last one
closed). Both models are scored on every slice. A slice with fewer than
``gates.min_slice_rows`` rows (or where the metric is undefined) is reported, not judged. For
the others, ``gates.bootstrap_resamples`` paired resamples of the slice's rows (seeded, and by
the slice's label, so a slice's verdict does not depend on the other slices listed) give the
one-sided ``gates.confidence`` lower bound of the change (challenger − champion): the slice
passes only when it is above ``-gates.slice_tolerance``. "Not significantly worse" is not
enough: a slice whose noise cannot rule out a regression beyond the tolerance fails. The gate
passes when every judged slice passes; as an intersection-union test it needs no correction
for the number of slices (each must be shown, so listing more slices only makes it stricter).
``p_value`` per slice is the share of resamples at or below ``-slice_tolerance``.
"""

from __future__ import annotations

import math
import zlib
from typing import Any

import numpy as np

from kaizen.data.predictions import Predictions
from kaizen.gates._base import Evidence, Gate, GateResult, Labelled
from kaizen.metrics import improvement, improvements, paired_bootstrap, score
from kaizen.policy import SliceSpec

__all__ = ["SlicesGate", "slice_masks"]


def slice_masks(frame: Any, spec: SliceSpec) -> list[tuple[str, np.ndarray]]:
    """``(label, row mask)`` of each slice of ``spec`` on ``frame``; ``KeyError``/``TypeError`` name the problem."""
    import pandas as pd

    if spec.column not in frame.columns:
        raise KeyError(f"column {spec.column!r} is not in the holdout rows")
    col = frame[spec.column]
    if spec.values:
        return [(f"{spec.column} = {v!r}", col.isin([v]).to_numpy()) for v in spec.values]
    if not pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
        raise TypeError(f"column {spec.column!r} is not numeric ({col.dtype}); edges need numbers")
    x = col.to_numpy(dtype=float, na_value=np.nan)
    e = spec.edges
    out = []
    for i, (a, b) in enumerate(zip(e[:-1], e[1:], strict=True)):
        last = i == len(e) - 2
        mask = (x >= a) & ((x <= b) if last else (x < b))
        out.append((f"{spec.column} in [{a:g}, {b:g}{']' if last else ')'}", mask))
    return out


def _part(p: Predictions, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    return np.asarray(p.labels)[mask], None if p.scores is None else np.asarray(p.scores)[mask]


class SlicesGate(Gate):
    """Every judged slice shows non-inferiority: its lower confidence bound is above ``-gates.slice_tolerance``."""

    name = "slices"
    order = 40

    def enabled(self, gates: Any) -> bool:
        return bool(gates.slices)

    def check(self, evidence: Evidence) -> GateResult:
        policy, h, frame = evidence.policy, evidence.holdout, evidence.holdout_frame
        spec = policy.gates
        if h.champion is None:
            return self.result(True, "no champion to compare slices with", slices=[])
        if frame is None or len(frame) != len(h.y):
            return self.result(False, "the holdout rows' columns are not in the evidence: slices cannot be cut",
                               slices=[])
        table: list[dict[str, Any]] = []
        problems: list[str] = []
        for k, s in enumerate(spec.slices):
            try:
                masks = slice_masks(frame, s)
            except (KeyError, TypeError) as exc:
                problems.append(f"gates.slices[{k}]: {exc.args[0]}")
                continue
            for label, mask in masks:
                table.append(self._slice(evidence, h, label, mask))
        judged = [row for row in table if row["judged"]]
        bad = [row for row in judged if not row["shown"]]
        numbers = dict(metric=policy.model.metric, tolerance=spec.slice_tolerance, confidence=spec.confidence,
                       min_rows=spec.min_slice_rows, judged=len(judged), reported=len(table) - len(judged),
                       slices=table, problems=problems)
        if problems or bad:
            what = [f"slice {r['slice']}: change {r['change']:+.4f}, {spec.confidence:.0%} lower bound "
                    f"{r['lower_bound']:+.4f} is not above -{spec.slice_tolerance:g}: non-inferiority not shown"
                    for r in bad]
            return self.result(False, "; ".join(problems + what), **numbers)
        return self.result(True, f"every judged slice is shown no worse than -{spec.slice_tolerance:g} "
                                 f"({len(judged)} judged at {spec.confidence:.0%}, {len(table) - len(judged)} too "
                                 "small or undefined, reported)", **numbers)

    def _slice(self, ev: Evidence, h: Labelled, label: str, mask: np.ndarray) -> dict[str, Any]:
        policy = ev.policy
        metric, pos, spec = policy.model.metric, policy.model.positive_label, policy.gates
        rows = int(mask.sum())
        row: dict[str, Any] = {"slice": label, "rows": rows, "judged": False}
        if rows == 0:
            return {**row, "note": "no rows"}
        y = np.asarray(h.y)[mask]
        old, new = _part(h.champion, mask), _part(h.challenger, mask)
        champ = score(metric, y, *old, pos_label=pos)
        chall = score(metric, y, *new, pos_label=pos)
        row.update(champion=champ, challenger=chall)
        if math.isnan(champ) or math.isnan(chall):
            return {**row, "note": f"{metric} undefined"}
        row["change"] = improvement(metric, chall, champ)
        if rows < spec.min_slice_rows:
            return {**row, "note": f"fewer than {spec.min_slice_rows} rows: reported, not judged"}
        a, b = paired_bootstrap(metric, y, old, new, pos_label=pos, seed=[ev.seed, zlib.crc32(label.encode())],
                                resamples=spec.bootstrap_resamples)
        gains = improvements(metric, b, a)
        gains = gains[np.isfinite(gains)]
        low = float(np.quantile(gains, 1 - spec.confidence)) if len(gains) else float("nan")
        # H0: the slice is worse than the tolerance; its p-value is the share of resamples where it is
        p = (1 + int(np.sum(gains <= -spec.slice_tolerance))) / (1 + len(gains))
        return {**row, "judged": True, "lower_bound": low, "p_value": p,
                "shown": bool(np.isfinite(low) and low > -spec.slice_tolerance)}
