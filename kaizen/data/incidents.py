"""Corrupted columns: the value patterns an upstream bug leaves and honest drift does not.

Drift moves a column's distribution; a pipeline bug *maps* it. A sign bug, a unit change, a
constant offset, relabelled categories or a column copied onto another keep the reference's
shape exactly, only transformed. So each detector applies the corruption's inverse to the
batch and asks whether the result matches the reference closely while the batch as it is does
not. The comparison is quantile to quantile: ``GRID`` (the 5 %, 10 %, ..., 95 % quantiles, tails
left out so that a heavier tail is not a corruption), distances in units of the reference's own
5-95 % spread (:func:`distance`); for categories, total variation between level frequencies.

=============  ==================================================================================
detector       fires when
=============  ==================================================================================
sign flip      the reference's non-zero values are (almost) all of one sign and the batch's
               (almost) all of the other; or, for a column of both signs, ``-x`` matches the
               reference, the values as they are do not, and no shift smaller than ``offset_min_shift``
               x its 5-95 % range comes within half a ``match_distance`` of the mirror's fit
               (a symmetric column's ``-x`` *is* a shift)
rescaled       ``x / k`` matches the reference (a scaling through 0, as a unit change is), with
               ``k`` at least ``scale_factor`` (or at most its inverse), while the values as they
               are do not
offset         ``x - c`` matches the reference while the values as they are do not, ``c`` is at
               least ``offset_min_shift`` x the reference's 5-95 % range and at least
               ``offset_outside_share`` of the values lie outside the reference's [min, max]
remapped       the level shares match the reference's within ``remap_match`` under a one-to-one
               relabelling that is not the identity, while as labelled they differ by at least
               ``remap_distance`` (total variation)
copied column  a column equals another feature column on every row where both have a value, and
               in the reference the two are equal on less than ``copy_max_reference_share``
=============  ==================================================================================

A column that cannot be judged (fewer than ``incident_min_values`` values in the batch or the
reference, or a constant 5-95 % range) is never reported. Everything the detectors need from the
reference (quantiles, signs, level shares, the columns' values for pair equality) is computed
once, by :meth:`ReferenceShapes.build`; a detector costs a fraction of a millisecond per column
at 1,000 rows. Where two detectors would tell one story, one does: ``sign_flip`` before
``rescaled`` and ``offset``, ``copied_column`` before the others (see :mod:`kaizen.data.checks`).

This module knows nothing of checks or policies beyond the thresholds it is handed:
:mod:`kaizen.data.checks` turns each :class:`Finding` into a ``CheckResult`` (one module per check,
``sign_flip.py`` ... ``copied_column.py``, which also declare the thresholds).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pandas loads when a detector runs: the policy reader imports the check modules
    import pandas as pd

    from kaizen.data.checks import ChecksSpec

__all__ = ["GRID", "Finding", "LevelShape", "NumericShape", "ReferenceShapes", "copied_columns", "distance",
           "level_counts", "offset", "remapped", "rescaled", "sign_flip"]

#: the quantiles compared: 5 %, 10 %, ..., 95 %
GRID = np.linspace(0.05, 0.95, 19)


@dataclass(frozen=True)
class Finding:
    """One corrupted column: the values judged, the story in words, the numbers."""

    column: str
    rows: int
    detail: str
    numbers: Mapping[str, Any] = field(default_factory=dict)


def _count(n: int) -> str:
    return f"{n:,}"


def _g(x: float) -> str:
    return f"{x:.3g}"


# --------------------------------------------------------------------------------------------
# the reference, once
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class NumericShape:
    """One numeric reference column: finite values, signs, [min, max] and its quantiles on ``GRID``."""

    values: int
    negative: int
    positive: int
    min: float
    max: float
    quantiles: np.ndarray = field(repr=False, compare=False)

    @classmethod
    def of(cls, v: np.ndarray) -> NumericShape | None:
        v = v[np.isfinite(v)]
        if not len(v):
            return None
        return cls(len(v), int((v < 0).sum()), int((v > 0).sum()), float(v.min()), float(v.max()),
                   _quantiles(v))

    @property
    def spread(self) -> float:
        """The 5-95 % range: the unit of every distance (0 when the column is constant on it)."""
        return float(self.quantiles[-1] - self.quantiles[0])


def _one_sign(positive: int, negative: int, tolerance: float) -> int:
    nonzero = positive + negative
    if not nonzero:
        return 0
    if negative <= tolerance * nonzero:
        return 1
    if positive <= tolerance * nonzero:
        return -1
    return 0


@dataclass(frozen=True)
class LevelShape:
    """One categorical reference column: how many values, and each level's share of them."""

    values: int
    shares: Mapping[Hashable, float]


def _label(value: Any) -> str:
    """A category as compared: numbers by value (1, 1.0 and numpy's 1 are one level), the rest as text."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, float, np.integer, np.floating)):
        f = float(value)
        return str(int(f)) if f.is_integer() else repr(f)
    return str(value)


def level_counts(s: pd.Series) -> pd.Series:
    """Level (:func:`_label`) -> count of the non-null values of ``s``, most frequent first."""
    import pandas as pd

    counts = s.value_counts(dropna=True)
    out = pd.Series(counts.to_numpy(), index=[_label(v) for v in counts.index], dtype="int64")
    if out.index.has_duplicates:
        out = out.groupby(level=0).sum().sort_values(ascending=False, kind="stable")
    return out


@dataclass(frozen=True)
class ReferenceShapes:
    """What the detectors compare a batch with; immutable once built."""

    numeric: Mapping[str, NumericShape]
    levels: Mapping[str, LevelShape]
    #: each column's values (numeric as float, categorical as codes of their text, null = NaN), for pair shares
    matrix: Mapping[str, np.ndarray] = field(repr=False, compare=False)

    @classmethod
    def build(cls, reference: pd.DataFrame, numerical: Sequence[str], categorical: Sequence[str]) -> ReferenceShapes:
        import pandas as pd

        numeric = {}
        for c in numerical:
            shape = NumericShape.of(pd.to_numeric(reference[c], errors="coerce").to_numpy("float64", na_value=np.nan))
            if shape is not None:
                numeric[c] = shape
        levels = {}
        for c in categorical:
            counts = level_counts(reference[c])
            total = int(counts.sum())
            if total:
                levels[c] = LevelShape(total, MappingProxyType((counts / total).to_dict()))
        return cls(MappingProxyType(numeric), MappingProxyType(levels),
                   MappingProxyType(_columns(reference, numerical, categorical)))

    def equal_share(self, a: str, b: str) -> tuple[float, int]:
        """(share of the reference rows where ``a`` equals ``b``, rows where both have a value)."""
        x, y = self.matrix[a], self.matrix[b]
        both = ~np.isnan(x) & ~np.isnan(y)
        n = int(both.sum())
        return (float((x[both] == y[both]).mean()) if n else 0.0), n


def _columns(frame: pd.DataFrame, numerical: Sequence[str], categorical: Sequence[str]) -> dict[str, np.ndarray]:
    import pandas as pd

    out = {c: pd.to_numeric(frame[c], errors="coerce").to_numpy("float64", na_value=np.nan)
           for c in numerical if c in frame.columns}
    cats = [c for c in categorical if c in frame.columns and not pd.api.types.is_datetime64_any_dtype(frame[c])]
    index: dict[str, int] = {}  # one code per level over every categorical column: equal text, equal code
    for c in cats:
        codes, uniques = pd.factorize(frame[c], use_na_sentinel=True)
        table = np.array([index.setdefault(_label(u), len(index)) for u in uniques] + [np.nan], dtype="float64")
        out[c] = table[codes]  # the sentinel -1 picks the trailing NaN
    return out


# --------------------------------------------------------------------------------------------
# numeric columns
# --------------------------------------------------------------------------------------------

def _quantiles(v: np.ndarray) -> np.ndarray:
    """``np.quantile(v, GRID)`` (linear interpolation) for finite ``v``, at a fraction of its overhead."""
    s = np.sort(v)
    pos = GRID * (len(s) - 1)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, len(s) - 1)
    return s[lo] + (pos - lo) * (s[hi] - s[lo])


def distance(batch_quantiles: np.ndarray, ref: NumericShape) -> float:
    """Mean absolute gap between two sets of ``GRID`` quantiles, in units of the reference's 5-95 % spread."""
    return float(np.abs(batch_quantiles - ref.quantiles).sum() / (len(GRID) * ref.spread))


def _median(x: np.ndarray) -> float:
    return float(np.sort(x)[len(x) // 2])  # len(GRID) is odd: the exact median


def _weighted_median(x: np.ndarray, w: np.ndarray) -> float:
    order = np.argsort(x)
    cum = np.cumsum(w[order])
    return float(x[order][np.searchsorted(cum, cum[-1] / 2)])


def _judged(v: np.ndarray, ref: NumericShape, min_values: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(finite values, their ``GRID`` quantiles), or None when the column cannot be judged: too few values,
    or a constant 5-95 % range here or in the reference."""
    v = v[np.isfinite(v)]
    if len(v) < min_values or ref.values < min_values or ref.spread <= 0:
        return None
    q = _quantiles(v)
    return (v, q) if q[-1] > q[0] else None


def _shifted(q: np.ndarray, ref: NumericShape) -> tuple[float, float]:
    """(the constant that, added, brings the quantiles closest to the reference's; the distance then)."""
    c = _median(ref.quantiles - q)
    return c, distance(q + c, ref)


def _scaled(q: np.ndarray, ref: NumericShape) -> tuple[float, float]:
    """(the factor through 0 that brings the quantiles closest to the reference's, 0 if none is positive;
    the distance then)."""
    nz = q != 0
    if not nz.any():
        return 0.0, np.inf
    a = _weighted_median(ref.quantiles[nz] / q[nz], np.abs(q[nz]))
    return (a, distance(a * q, ref)) if a > 0 else (0.0, np.inf)


def _sign_crossed(v: np.ndarray, ref: NumericShape, spec: ChecksSpec) -> tuple[int, int, int] | None:
    """(reference sign, positive, negative) when a one-signed reference column has turned to the other sign."""
    sign = _one_sign(ref.positive, ref.negative, spec.sign_tolerance)
    if not sign or ref.positive + ref.negative < spec.incident_min_values:
        return None
    pos, neg = int((v > 0).sum()), int((v < 0).sum())  # NaN compares False
    if pos + neg < spec.incident_min_values or _one_sign(pos, neg, spec.sign_tolerance) != -sign:
        return None
    return sign, pos, neg


def _signed(x: float) -> str:
    return f"+ {_g(x)}" if x >= 0 else f"- {_g(-x)}"


def sign_flip(column: str, v: np.ndarray, ref: NumericShape, spec: ChecksSpec) -> Finding | None:
    """A one-signed column turned to the other sign, or a two-signed one mirrored (``-x``)."""
    crossed = _sign_crossed(v, ref, spec)
    if crossed is not None:
        return _crossed(column, v, ref, spec, *crossed)
    if _one_sign(ref.positive, ref.negative, spec.sign_tolerance):
        return None
    judged = _judged(v, ref, spec.incident_min_values)
    if judged is None:
        return None
    x, q = judged
    mirrored, as_is = distance(-q[::-1], ref), distance(q, ref)  # -x's quantiles, the values' own
    if not mirrored <= spec.match_distance < as_is:
        return None
    c, shifted = _shifted(q, ref)
    better = shifted - mirrored >= spec.match_distance / 2
    if not better and abs(c) < spec.offset_min_shift * ref.spread:
        return None  # a small shift explains it about as well (a symmetric column): drift or not, no evidence
    why = (f"the best constant shift only comes to {shifted:.2g}" if better else
           f"the shift that matches as well is {_g(c)}, beyond {spec.offset_min_shift:g} x that range")
    return Finding(column, len(x),
                   f"the {_count(len(x))} values are the reference mirrored: -x matches it at distance "
                   f"{mirrored:.2g}, as they are {as_is:.2g}, and {why} (units of the reference's 5-95 % range "
                   f"{_g(ref.spread)}, a match is <= {spec.match_distance:g}): a sign bug upstream, not drift",
                   dict(values=len(x), mirrored_distance=mirrored, shifted_distance=shifted, shift=c,
                        distance=as_is, match_distance=spec.match_distance))


def _crossed(column: str, v: np.ndarray, ref: NumericShape, spec: ChecksSpec, sign: int, pos: int,
             neg: int) -> Finding:
    n = int(np.isfinite(v).sum())
    zeros = n - pos - neg
    now, other, was = ("negative", "positive", ">= 0") if sign > 0 else ("positive", "negative", "<= 0")
    told = f"{_count(neg if sign > 0 else pos)} of {_count(n)} values are {now}"
    stray = pos if sign > 0 else neg
    told += "".join(f", {_count(k)} {what}" for k, what in ((zeros, "are 0"), (stray, other)) if k)
    ref_stray = ref.negative if sign > 0 else ref.positive
    told += (f"; the reference's {_count(ref.values)} are all {was}" if not ref_stray else
             f"; {_count(ref.values - ref_stray)} of the reference's {_count(ref.values)} are {was}")
    numbers: dict[str, Any] = dict(values=n, positive=pos, negative=neg, zeros=zeros, reference_values=ref.values,
                                   reference_positive=ref.positive, reference_negative=ref.negative)
    judged = _judged(v, ref, spec.incident_min_values)
    if judged is not None:
        c, mirrored = _shifted(-judged[1][::-1], ref)
        numbers.update(mirrored_distance=mirrored, mirror_shift=c)
        form = "-x" if abs(c) <= 1e-9 * ref.spread else f"-x {_signed(c)}"
        told += f" (mirrored, {form} matches the reference: distance {mirrored:.2g})"
    return Finding(column, n, f"{told}: a sign bug upstream, not drift", numbers)


def rescaled(column: str, v: np.ndarray, ref: NumericShape, spec: ChecksSpec) -> Finding | None:
    """The column is the reference times a factor far from 1 (a unit or scale change)."""
    judged = _judged(v, ref, spec.incident_min_values)
    if judged is None:
        return None
    x, q = judged
    a, scaled = _scaled(q, ref)
    if a <= 0 or max(a, 1 / a) < spec.scale_factor or scaled > spec.match_distance:
        return None
    as_is = distance(q, ref)
    if as_is <= spec.match_distance:
        return None
    if spec.sign_flip != "off" and sign_flip(column, x, ref, spec) is not None:
        return None  # sign_flip reports it
    factor = 1 / a
    told = f"x {_g(factor)}" if factor >= 1 else f"/ {_g(a)}"
    undo = f"divided by {_g(factor)}" if factor >= 1 else f"multiplied by {_g(a)}"
    return Finding(column, len(x),
                   f"the {_count(len(x))} values are the reference's {told}: {undo} they match it at distance "
                   f"{scaled:.2g}, as they are {as_is:.2g} (units of the reference's 5-95 % range, a match is "
                   f"<= {spec.match_distance:g}; a factor of {spec.scale_factor:g} or more is no drift): a unit or "
                   f"scale change upstream, not drift",
                   dict(values=len(x), factor=factor, scaled_distance=scaled, distance=as_is,
                        match_distance=spec.match_distance, scale_factor=spec.scale_factor))


def offset(column: str, v: np.ndarray, ref: NumericShape, spec: ChecksSpec) -> Finding | None:
    """The column is the reference plus a constant that moves most of it outside the reference's [min, max]."""
    x = v[np.isfinite(v)]
    outside = int(((x < ref.min) | (x > ref.max)).sum())
    if not len(x) or outside < spec.offset_outside_share * len(x):
        return None
    judged = _judged(x, ref, spec.incident_min_values)
    if judged is None:
        return None
    q = judged[1]
    c, shifted = _shifted(q, ref)
    as_is = distance(q, ref)
    if not shifted <= spec.match_distance < as_is or abs(c) < spec.offset_min_shift * ref.spread:
        return None
    if spec.sign_flip != "off" and sign_flip(column, x, ref, spec) is not None:
        return None  # sign_flip reports it
    share = outside / len(x)
    return Finding(column, len(x),
                   f"{_count(outside)} of {_count(len(x))} values ({share:.0%}) lie outside the reference range "
                   f"[{_g(ref.min)}, {_g(ref.max)}], yet shifted by {_g(c)} ({abs(c) / ref.spread:.2g} x the "
                   f"reference's 5-95 % range {_g(ref.spread)}) they match it at distance {shifted:.2g}, as they "
                   f"are {as_is:.2g} (a match is <= {spec.match_distance:g} of that range): a constant offset "
                   f"upstream, not drift",
                   dict(values=len(x), outside=outside, share=share, offset=-c, shifted_distance=shifted,
                        distance=as_is, reference_min=ref.min, reference_max=ref.max,
                        match_distance=spec.match_distance))


# --------------------------------------------------------------------------------------------
# categorical columns
# --------------------------------------------------------------------------------------------

def _relabelling(batch: pd.Series, ref: Mapping[Hashable, float]) -> tuple[dict[Hashable, Hashable], float]:
    """The one-to-one map batch level -> reference level closest to the reference (total variation), ties to
    the identity; and its distance. Levels without a partner map to None (a share of 0 on the other side)."""
    from scipy.optimize import linear_sum_assignment

    b_levels, r_levels = list(batch.index), list(ref)
    k = max(len(b_levels), len(r_levels))
    fb = np.zeros(k)
    fb[:len(b_levels)] = batch.to_numpy(float)
    fr = np.zeros(k)
    fr[:len(r_levels)] = [ref[level] for level in r_levels]
    cost = np.abs(fb[:, None] - fr[None, :])
    same = np.zeros((k, k), bool)
    index = {level: j for j, level in enumerate(r_levels)}
    for i, level in enumerate(b_levels):
        if level in index:
            same[i, index[level]] = True
    rows, cols = linear_sum_assignment(cost + 1e-9 * ~same)  # among equal costs, keep a level's own name
    mapping = {b_levels[i]: (r_levels[j] if j < len(r_levels) else None)
               for i, j in zip(rows, cols, strict=True) if i < len(b_levels)}
    return mapping, float(cost[rows, cols].sum() / 2)


def _sorted_tv(a: np.ndarray, b: np.ndarray) -> float:
    """The least total variation over every one-to-one relabelling: pair the shares in sorted order."""
    k = max(len(a), len(b))
    a, b = np.sort(np.r_[a, np.zeros(k - len(a))]), np.sort(np.r_[b, np.zeros(k - len(b))])
    return float(np.abs(a - b).sum() / 2)


def _tv_identity(batch: pd.Series, ref: Mapping[Hashable, float]) -> float:
    levels = set(batch.index) | set(ref)
    return float(sum(abs(batch.get(level, 0.0) - ref.get(level, 0.0)) for level in levels) / 2)


def remapped(column: str, counts: pd.Series, ref: LevelShape, spec: ChecksSpec) -> Finding | None:
    """Level frequencies that match the reference's only after relabelling the levels."""
    n = int(counts.sum())
    if n < spec.incident_min_values or ref.values < spec.incident_min_values or len(ref.shares) < 2:
        return None
    shares = counts / n
    as_is = _tv_identity(shares, ref.shares)
    if as_is < spec.remap_distance:
        return None
    best = _sorted_tv(shares.to_numpy(float), np.fromiter(ref.shares.values(), float))  # the optimum, cheap
    if best > spec.remap_match:
        return None
    mapping, relabelled = _relabelling(shares, ref.shares)
    moved = [(b, r) for b, r in mapping.items() if b != r and r is not None]
    if not moved:
        return None
    moved.sort(key=lambda br: -ref.shares[br[1]])
    pairs = ", ".join(f"{r!r} ({ref.shares[r]:.1%} in the reference) -> {b!r} ({shares[b]:.1%} here)"
                      for b, r in moved[:5]) + (f" and {len(moved) - 5} more" if len(moved) > 5 else "")
    unseen = [b for b, _ in moved if b not in ref.shares]
    how = "renamed" if unseen and len(unseen) == len(moved) else "swapped" if not unseen else "swapped or renamed"
    return Finding(column, n,
                   f"the {_count(n)} values' level frequencies match the reference's only after relabelling: "
                   f"{pairs}; relabelled they are {relabelled:.2g} apart, as labelled {as_is:.2g} (total "
                   f"variation; a match is <= {spec.remap_match:g}, a remap needs >= {spec.remap_distance:g} as "
                   f"labelled): levels {how} upstream, not drift",
                   dict(values=n, distance=as_is, relabelled_distance=relabelled,
                        mapping={str(r): str(b) for b, r in moved}, remap_match=spec.remap_match,
                        remap_distance=spec.remap_distance))


# --------------------------------------------------------------------------------------------
# copied columns
# --------------------------------------------------------------------------------------------

def _equal_groups(matrix: dict[str, np.ndarray], min_values: int) -> list[list[str]]:
    """Groups of columns equal on every row where both have a value (at least ``min_values`` such rows, at
    least two distinct values among them)."""
    names = list(matrix)
    parent = {c: c for c in names}

    def root(c: str) -> str:
        while parent[c] != c:
            c = parent[c]
        return c

    for i, a in enumerate(names):
        x = matrix[a]
        for b in names[i + 1:]:
            y = matrix[b]
            both = ~np.isnan(x) & ~np.isnan(y)
            if both.sum() < min_values:
                continue
            xs = x[both]
            if np.array_equal(xs, y[both]) and xs.min() != xs.max():
                parent[root(b)] = root(a)
    groups: dict[str, list[str]] = {}
    for c in names:
        groups.setdefault(root(c), []).append(c)
    return [g for g in groups.values() if len(g) > 1]


def copied_columns(frame: pd.DataFrame, shapes: ReferenceShapes, numerical: Sequence[str],
                   categorical: Sequence[str], spec: ChecksSpec) -> list[Finding]:
    """Columns equal to another feature column of the batch although the reference says they differ.

    Of a group of equal columns, the one whose values sit closest to its own reference is taken as the
    original; each other one is reported as its copy (named by the finding)."""
    out = []
    for kind in (numerical, categorical):
        cols = [c for c in kind if c in frame.columns and c in shapes.matrix]
        if len(cols) < 2:
            continue
        matrix = _columns(frame, cols if kind is numerical else [], cols if kind is categorical else [])
        for group in _equal_groups(matrix, spec.incident_min_values):
            far = {c: _own_distance(frame[c], c, shapes) for c in group}
            original = min(group, key=lambda c: (far[c], group.index(c)))
            for copy in group:
                if copy == original:
                    continue
                share, ref_rows = shapes.equal_share(original, copy)
                if ref_rows < spec.incident_min_values or share >= spec.copy_max_reference_share:
                    continue
                x, y = matrix[original], matrix[copy]
                both = int((~np.isnan(x) & ~np.isnan(y)).sum())
                out.append(Finding(copy, both,
                                   f"equals column {original!r} on all {_count(both)} rows where both have a value, "
                                   f"while in the reference the two are equal on {share:.1%} of {_count(ref_rows)} "
                                   f"rows (a copy needs < {spec.copy_max_reference_share:.0%}): {original!r} copied "
                                   f"onto {copy!r} upstream, not drift (the values sit at distance {far[original]:.2g} "
                                   f"from the reference of {original!r}, {far[copy]:.2g} from that of {copy!r})",
                                   dict(values=both, original=original, reference_equal_share=share,
                                        reference_rows=ref_rows, distance_original=far[original],
                                        distance_copy=far[copy], max_reference_share=spec.copy_max_reference_share)))
    return out


def _own_distance(s: pd.Series, column: str, shapes: ReferenceShapes) -> float:
    """How far a column's batch values sit from its own reference (quantile distance or total variation)."""
    import pandas as pd

    if column in shapes.numeric:
        ref = shapes.numeric[column]
        v = pd.to_numeric(s, errors="coerce").to_numpy("float64", na_value=np.nan)
        v = v[np.isfinite(v)]
        if not len(v) or ref.spread <= 0:
            return np.inf
        return distance(_quantiles(v), ref)
    if column in shapes.levels:
        counts = level_counts(s)
        return _tv_identity(counts / max(int(counts.sum()), 1), shapes.levels[column].shares)
    return np.inf
