"""Segments of rows and how far a segment's labels moved beyond a model's predictions, against the other rows.

Used by :mod:`kaizen.trust.label_shift`. A *segment* is a categorical level, or a one-sided range of
a numeric column at one of the reference's deciles (``tenure < q10`` ... ``tenure >= q90``). For a
set of rows with residuals ``label - P(positive)``, a segment's *contrast* is its mean residual
minus the other rows' mean residual; its variance is binomial (``p (1 - p)`` per row).
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import pandas as pd

from kaizen.data.schema import Schema

__all__ = ["Contrast", "MIN_SEGMENT_ROWS", "Shifts", "contrast", "outside_bar", "segments", "shifts"]

#: fewest rows a segment (and the rest of its rows) needs before its shift is judged
MIN_SEGMENT_ROWS = 30
#: a segment larger than this share of the rows is most of the population, not a segment
MAX_SEGMENT_SHARE = 0.5
#: "no other segment moved outside it" means none beyond what chance gives among that many segments
#: (family-wise 5 %, Bonferroni): about |z| 3.5 for 100 segments
CONFINED_FAMILY_ALPHA = 0.05
DECILES = tuple(i / 10 for i in range(1, 10))


def segments(reference: pd.DataFrame, frames: list[pd.DataFrame], schema: Schema
             ) -> list[tuple[str, str, list[np.ndarray]]]:
    """(column, description, mask over each of ``frames``) of every segment, thresholds from ``reference``."""
    out: list[tuple[str, str, list[np.ndarray]]] = []
    for c in schema.numerical:
        ref = pd.to_numeric(reference[c], errors="coerce").dropna().to_numpy(float)
        if not len(ref):
            continue
        xs = [pd.to_numeric(f[c], errors="coerce").to_numpy(float) for f in frames]
        for t in np.unique(np.quantile(ref, DECILES)):
            if t > ref.min():
                out.append((c, f"{c} < {t:.4g}", [x < t for x in xs]))
                out.append((c, f"{c} >= {t:.4g}", [x >= t for x in xs]))
    for c in schema.categorical:
        vs = [f[c].astype(str).to_numpy() for f in frames]
        levels = set(reference[c].dropna().astype(str)).union(*(set(f[c].dropna().astype(str)) for f in frames))
        out.extend((c, f"{c} == {lv!r}", [v == lv for v in vs]) for lv in sorted(levels))
    return out


@dataclass(frozen=True)
class Contrast:
    """Per segment: its rows, its mean residual minus the other rows', and that difference's variance."""

    count: np.ndarray
    diff: np.ndarray
    var: np.ndarray


def contrast(member: np.ndarray, residual: np.ndarray, variance: np.ndarray) -> Contrast:
    n = len(residual)
    m = member.astype(float)
    count = m.sum(axis=0)
    rest = n - count
    total, var = m.T @ residual, m.T @ variance
    with np.errstate(divide="ignore", invalid="ignore"):
        diff = total / count - (residual.sum() - total) / rest
        v = var / count ** 2 + (variance.sum() - var) / rest ** 2
    ok = (count >= MIN_SEGMENT_ROWS) & (rest >= MIN_SEGMENT_ROWS)
    return Contrast(count, np.where(ok, diff, 0.0), np.where(ok, v, 0.0))


@dataclass(frozen=True)
class Shifts:
    """Per segment: rows, shift (contrast beyond the baseline's), its z, and whether it moved."""

    count: np.ndarray
    shift: np.ndarray
    z: np.ndarray
    moved: np.ndarray


def shifts(here: Contrast, baseline: Contrast | None, rows: int, z_bar: float, min_shift: float) -> Shifts:
    """``here``'s contrasts minus ``baseline``'s (the model's own error on each segment; None: zero), judged:
    a segment moved when it holds at most half the rows and its shift is >= ``min_shift`` and ``z_bar``
    standard errors."""
    diff = here.diff - (baseline.diff if baseline is not None else 0.0)
    var = here.var + (baseline.var if baseline is not None else 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(var > 0, diff / np.sqrt(var), 0.0)
    ok = (here.count >= MIN_SEGMENT_ROWS) & (here.count <= MAX_SEGMENT_SHARE * rows) & (here.var > 0)
    z, diff = np.where(ok, z, 0.0), np.where(ok, diff, 0.0)
    return Shifts(here.count, diff, z, ok & (np.abs(z) >= z_bar) & (np.abs(diff) >= min_shift))


def outside_bar(n_segments: int) -> float:
    """The |z| no segment of another column may reach outside a segment for that segment's move to be its own."""
    return NormalDist().inv_cdf(1 - CONFINED_FAMILY_ALPHA / 2 / max(n_segments, 1))
