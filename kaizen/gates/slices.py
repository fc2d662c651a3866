"""No policy-defined slice of the holdout may regress beyond tolerance.

Each ``[[gates.slices]]`` table cuts one column of the holdout rows into slices
(``values``: one slice per value; ``edges``: ``[e0, e1)``, ``[e1, e2)``, ...,
the last one closed). Both models are scored on every slice. A slice with
fewer than ``gates.min_slice_rows`` rows (or where the metric is undefined) is
reported, not judged. For the others, a one-sided bootstrap p-value (seeded,
``gates.bootstrap_resamples`` resamples of the slice's rows, seeded by the slice's label so that a slice's
p-value does not depend on the other slices listed) tests "the
challenger is worse by more than ``gates.slice_tolerance``": the share of
resamples where it is not. Across the judged slices the p-values are
Holm-Bonferroni adjusted, so the more slices a policy lists the more evidence
a regression needs (the chance that any good challenger is blocked by noise
stays below ``1 - gates.confidence``). A slice regresses when its adjusted
p-value is below ``1 - gates.confidence``.
"""

from __future__ import annotations

import math
import zlib
from typing import Any

import numpy as np

from kaizen.gates._base import Evidence, Gate, GateResult, Labelled
from kaizen.metrics import improvement, improvements, paired_bootstrap, score
from kaizen.models import Predictions
from kaizen.policy import SliceSpec

__all__ = ["SlicesGate", "holm", "slice_masks"]


def holm(p: list[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the input order."""
    m = len(p)
    out = [0.0] * m
    running = 0.0
    for rank, i in enumerate(sorted(range(m), key=lambda k: p[k])):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


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
    """No judged slice regresses beyond ``gates.slice_tolerance`` (Holm-adjusted one-sided bootstrap test)."""

    name = "slices"

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
        alpha = 1 - spec.confidence
        for row, adj in zip(judged, holm([row["p_value"] for row in judged]), strict=True):
            row["p_holm"] = adj
            row["regressed"] = adj < alpha
        bad = [row for row in judged if row["regressed"]]
        numbers = dict(metric=policy.model.metric, tolerance=spec.slice_tolerance, alpha=round(alpha, 12),
                       min_rows=spec.min_slice_rows, judged=len(judged), reported=len(table) - len(judged),
                       slices=table, problems=problems)
        if problems or bad:
            what = [f"slice {r['slice']} regressed: {r['change']:+.4f} (Holm-adjusted p {r['p_holm']:.3g} "
                    f"< {alpha:.3g}; tolerance {spec.slice_tolerance:g})" for r in bad]
            return self.result(False, "; ".join(problems + what), **numbers)
        return self.result(True, f"no slice regressed beyond {spec.slice_tolerance:g} ({len(judged)} judged with "
                                 f"Holm-adjusted p-values, {len(table) - len(judged)} too small or undefined)",
                           **numbers)

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
        # H0: the slice is within tolerance; its p-value is the share of resamples where it is
        p = (1 + int(np.sum(gains >= -spec.slice_tolerance))) / (1 + len(gains))
        return {**row, "judged": True, "p_value": p}
