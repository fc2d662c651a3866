"""Label shift beyond what the features explain, confined to one segment: "one segment relabelled".

The champion's predictions on the new rows already account for how their *features* moved:
rows it predicts at 5 % churn should churn about 5 % of the time. So a row's residual (label
minus the champion's probability; regression: minus its prediction) is the part of its label
the feature drift does not explain. A segment has *moved* when its mean residual differs from
the other rows' (of the same stretch of new rows) by at least ``trust.min_label_shift`` (a
rate; regression: in standard deviations of the reference target) and by ``trust.z`` standard
errors. Comparing with the other rows, not with zero, leaves a shift of the whole population
(the champion's calibration drifting, a new base rate) to the trigger.

Segments: each categorical level (reference and new), and each numeric column's one-sided
ranges at the reference's deciles (``tenure < q10`` ... ``tenure >= q90``: the shape of "long-tenure
customers"), holding at most half the stretch's rows. Stretches: all new rows, halves,
quarters, ... down to ``trust.min_rows`` (:func:`kaizen.trust._base.spans`), so one poisoned
batch is not diluted by a long history and a slow poisoning adds up.

A real concept change moves labels too, but in many places (several columns, both directions).
So a moved segment is a finding only when it is **confined**: among the stretch's rows outside
it, no segment of another column has moved. Then the segment's rows whose residual points the
way the segment moved (classification: those labelled with the class that rose) are named. A
shift spread over several unrelated segments reads as a concept change: it is not flagged, and
the finding's message says which segments moved. The label-noise check and the golden gate
remain for it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from kaizen.data.schema import Schema
from kaizen.models import Predictions
from kaizen.policy import TrustSpec
from kaizen.trust._base import (
    TrustCheck,
    TrustFinding,
    TrustInputs,
    describe_span,
    encode,
    encoded_sources,
    positive,
    spans,
)

__all__ = ["LabelShift", "outside_bar", "segments"]

#: fewest rows a segment (and the rest of the stretch) needs before its shift is judged
MIN_SEGMENT_ROWS = 30
#: a segment larger than this share of a stretch is most of the population, not a segment
MAX_SEGMENT_SHARE = 0.5
#: moved segments (strongest first) whose confinement is tested per stretch
MAX_CANDIDATES = 20
#: "no other segment moved outside it" means: none beyond what chance gives among that many segments
#: (family-wise 5 %, Bonferroni): about |z| 3.5 for 100 segments, whatever its shift
CONFINED_FAMILY_ALPHA = 0.05


def outside_bar(segments: int) -> float:
    """The |z| no segment of another column may reach outside a segment for that segment to be confined."""
    from statistics import NormalDist

    return NormalDist().inv_cdf(1 - CONFINED_FAMILY_ALPHA / 2 / max(segments, 1))
DECILES = tuple(i / 10 for i in range(1, 10))


@dataclass(frozen=True)
class _Contrast:
    """Per segment of one set of rows: its rows, its mean residual minus the other rows', that difference's variance."""

    count: np.ndarray
    diff: np.ndarray
    var: np.ndarray


def _contrast(member: np.ndarray, residual: np.ndarray, variance: np.ndarray | None) -> _Contrast:
    """``variance`` per row (classification: p(1 - p)); None: each side's sample variance (Welch; regression)."""
    n = len(residual)
    m = member.astype(float)
    count = m.sum(axis=0)
    rest = n - count
    total = m.T @ residual
    with np.errstate(divide="ignore", invalid="ignore"):
        diff = total / count - (residual.sum() - total) / rest
        if variance is None:
            sq, all_sq, all_total = m.T @ residual ** 2, float((residual ** 2).sum()), float(residual.sum())
            var_in = (sq - total ** 2 / count) / (count - 1)
            var_out = ((all_sq - sq) - (all_total - total) ** 2 / rest) / (rest - 1)
            v = np.maximum(var_in, 0) / count + np.maximum(var_out, 0) / rest
        else:
            var = m.T @ variance
            v = var / count ** 2 + (variance.sum() - var) / rest ** 2
    ok = (count >= MIN_SEGMENT_ROWS) & (rest >= MIN_SEGMENT_ROWS)
    return _Contrast(count, np.where(ok, diff, 0.0), np.where(ok, v, 0.0))


@dataclass(frozen=True)
class _Shifts:
    """Per segment: shift beyond the reference's (in the shift unit), its z, and whether it moved."""

    count: np.ndarray
    shift: np.ndarray
    z: np.ndarray
    moved: np.ndarray


def _shifts(new: _Contrast, base: _Contrast | None, n: int, unit: float, spec: TrustSpec) -> _Shifts:
    """The new rows' contrast minus the reference's (the champion's own error on the segment), judged."""
    diff = new.diff - (base.diff if base is not None else 0.0)
    var = new.var + (base.var if base is not None else 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(var > 0, diff / np.sqrt(var), 0.0)
    ok = (new.count >= MIN_SEGMENT_ROWS) & (new.count <= MAX_SEGMENT_SHARE * n) & (new.var > 0)
    z, shift = np.where(ok, z, 0.0), np.where(ok, diff / unit, 0.0)
    return _Shifts(new.count, shift, z, ok & (np.abs(z) >= spec.z) & (np.abs(shift) >= spec.min_label_shift))


@dataclass(frozen=True)
class _Moved:
    start: int
    stop: int
    segment: int
    rows: int
    shift: float
    z: float
    observed: float
    predicted: float
    reference_shift: float | None
    outside_z: float
    outside_segment: int | None
    confined: bool
    #: the segment's labels against a model of the stretch's other new rows (None: not judged)
    rest_shift: float | None = None
    rest_z: float | None = None

    @property
    def unexplained(self) -> bool:
        return self.confined and self.rest_z is not None


class LabelShift(TrustCheck):
    name = "label_shift"

    def check(self, inputs: TrustInputs) -> TrustFinding:
        spec, new = inputs.spec, inputs.new
        n = len(new)
        if n < spec.min_rows:
            return self.finding(inputs, None, f"not judged: {n} new rows, fewer than trust.min_rows = "
                                              f"{spec.min_rows}", new_rows=n)
        res = _Residuals.of(inputs)
        segs = segments(inputs.reference, [new, res.reference], inputs.schema)
        names = [s[1] for s in segs]
        columns = np.array([s[0] for s in segs], dtype=object)
        member = np.stack([s[2][0] for s in segs], axis=1) if segs else np.zeros((n, 0), bool)
        ref_member = (np.stack([s[2][1] for s in segs], axis=1) if segs else np.zeros((len(res.reference), 0), bool))
        base = _contrast(ref_member, res.ref_residual, res.ref_variance) if res.has_reference else None
        rest_model = _RestModel(inputs, res)
        bar = outside_bar(len(segs))
        moved: list[_Moved] = []
        for a, b in spans(n, spec.min_rows):
            r, v = res.residual[a:b], _part(res.variance, slice(a, b))
            here = _shifts(_contrast(member[a:b], r, v), base, b - a, res.unit, spec)
            for j in [j for j in np.argsort(-np.abs(here.z)) if here.moved[j]][:MAX_CANDIDATES]:
                inside = member[a:b, j]
                keep = ~ref_member[:, j]
                out_base = (_contrast(ref_member[keep], res.ref_residual[keep], _part(res.ref_variance, keep))
                            if base is not None else None)
                rest = _shifts(_contrast(member[a:b][~inside], r[~inside], _part(v, ~inside)), out_base,
                               int((~inside).sum()), res.unit, spec)
                other = columns != columns[j]
                strongest = int(np.argmax(np.where(other, np.abs(rest.z), -1.0))) if other.any() else None
                blocker = (np.abs(rest.z) >= bar) & other
                m = _Moved(a, b, int(j), int(here.count[j]), float(here.shift[j]), float(here.z[j]),
                           float(res.observed[a:b][inside].mean()), float(res.predicted[a:b][inside].mean()),
                           float(base.diff[j] / res.unit) if base is not None else None,
                           float(rest.z[strongest]) if strongest is not None else 0.0,
                           int(np.argmax(np.where(blocker, np.abs(rest.z), -1.0))) if blocker.any() else strongest,
                           not blocker.any())
                if m.confined:
                    shift, z = rest_model.unexplained(a, b, inside, str(columns[j]), m.shift)
                    m = dataclasses.replace(m, rest_shift=shift, rest_z=z)
                moved.append(m)
                if m.unexplained:
                    break
        numbers: dict[str, Any] = dict(new_rows=n, segments=len(segs), stretches=len(spans(n, spec.min_rows)),
                                       min_label_shift=spec.min_label_shift, unit=res.unit,
                                       reference_baseline=res.has_reference, outside_bar=bar)
        baseline = "" if res.has_reference else " (no champion predictions on the reference: its own errors by " \
                                                 "segment are not discounted)"
        found = [m for m in moved if m.unexplained]
        if not found:
            if not moved:
                return self.finding(inputs, None, f"no segment's labels moved beyond the champion's predictions, "
                                                  f"against the other rows, by >= {spec.min_label_shift:g} and z >= "
                                                  f"{spec.z:g}" + baseline, **numbers)
            u = max(moved, key=lambda m: abs(m.z))
            numbers.update(_describe(u, names, columns), moved_segments=len({m.segment for m in moved}))
            where = f"{names[u.segment]} in {describe_span((u.start, u.stop), n)}: {u.shift:+.3f}, z = {u.z:.1f}"
            if not u.confined:
                why = (f"not in one alone (outside it {names[u.outside_segment]} moved too, z = {u.outside_z:.1f}): "
                       "reads as a concept change")
            else:
                why = ("a model of the other new rows predicts its labels as they are: the features explain the "
                       "move (a concept change)")
            return self.finding(inputs, None, f"labels moved in {len({m.segment for m in moved})} segment(s) "
                                              f"(largest {where}) but {why}; not flagged" + baseline, **numbers)
        best = max(found, key=lambda m: abs(m.z))
        flagged = np.zeros(n, bool)
        for m in found:
            flagged[m.start:m.stop] |= member[m.start:m.stop, m.segment] & (
                np.sign(res.residual[m.start:m.stop]) == np.sign(m.shift))
        numbers.update(_describe(best, names, columns), stretches_fired=len(found))
        what = "positive rate" if inputs.classification else "mean"
        own = "" if best.reference_shift is None else f", {best.reference_shift:+.3f} on the reference"
        return self.finding(inputs, new.index[flagged], f"labels of segment {names[best.segment]} ({best.rows} of "
                                                        f"{describe_span((best.start, best.stop), n)}) moved "
                                                        f"{best.shift:+.3f} beyond the champion's predictions, against "
                                                        f"the other rows and its own error there ({what} "
                                                        f"{best.observed:.3f}, predicted {best.predicted:.3f}{own}; "
                                                        f"z = {best.z:.1f}); no other column's segment moved outside "
                                                        f"it (largest z {best.outside_z:.1f}) and a model of the other "
                                                        f"new rows does not explain it ({best.rest_shift:+.3f}, z = "
                                                        f"{best.rest_z:.1f}): one segment relabelled; {flagged.sum()} "
                                                        "row(s) named" + baseline, **numbers)


class _RestModel:
    """Do the stretch's other new rows, modelled on their own, predict the segment's labels?

    A concept change is a rule of the features: a linear model (logistic; ridge for regression) fit
    on the rows outside the segment carries it into the segment (extrapolating a numeric range
    linearly; a categorical level it never saw is left out of its inputs). A relabelled segment is
    not a rule of the features: its labels stay beyond the model's predictions. ``unexplained``
    gives (shift, z) of the segment's labels over the model's predictions when they are beyond
    ``min_label_shift`` and ``z`` in the segment's direction, else (shift or None, None).
    """

    def __init__(self, inputs: TrustInputs, res: _Residuals) -> None:
        self.inputs, self.res = inputs, res
        self._x: np.ndarray | None = None
        self._sources = encoded_sources(inputs.reference, inputs.schema)

    def unexplained(self, a: int, b: int, inside: np.ndarray, column: str, direction: float
                    ) -> tuple[float | None, float | None]:
        from sklearn.linear_model import LogisticRegression, Ridge

        inputs, spec = self.inputs, self.inputs.spec
        if self._x is None:
            (self._x,) = encode(inputs.reference, [inputs.new], inputs.schema)
        x, y = self._x[a:b], self.res.observed[a:b]
        if column in inputs.schema.numerical:
            outside = pd.to_numeric(inputs.new[column].iloc[a:b][~inside], errors="coerce").nunique()
            if outside < 3:  # no spread outside the segment to carry a rule of this column into it
                return None, None
            keep = np.ones(x.shape[1], bool)
        else:
            keep = self._sources != column
        fit_x, fit_y = x[~inside][:, keep], y[~inside]
        if inputs.classification:
            if fit_y.min() == fit_y.max():
                return None, None
            q = LogisticRegression(C=1.0, max_iter=1000).fit(fit_x, fit_y).predict_proba(x[inside][:, keep])[:, 1]
            e = y[inside] - q
            qv = np.clip(q, 0.01, 0.99)
            z = float(e.sum() / np.sqrt((qv * (1 - qv)).sum()))
            shift = float(e.mean())
        else:
            model = Ridge(alpha=1.0).fit(fit_x, fit_y)
            r = fit_y - model.predict(fit_x)
            spread = 1.4826 * float(np.median(np.abs(r - np.median(r)))) or float(np.std(r)) or 1.0
            e = y[inside] - model.predict(x[inside][:, keep])
            z = float(e.sum() / (spread * np.sqrt(len(e))))
            shift = float(e.mean() / self.res.unit)
        ok = np.sign(shift) == np.sign(direction) and abs(shift) >= spec.min_label_shift and abs(z) >= spec.z
        return shift, (z if ok else None)


@dataclass(frozen=True)
class _Residuals:
    """Label minus the champion's prediction (and its variance per row) on the new and the reference rows."""

    residual: np.ndarray
    variance: np.ndarray | None  # per row (classification); None: estimated per segment (regression)
    observed: np.ndarray
    predicted: np.ndarray
    reference: pd.DataFrame
    ref_residual: np.ndarray
    ref_variance: np.ndarray | None
    unit: float

    @property
    def has_reference(self) -> bool:
        return len(self.ref_residual) > 0

    @classmethod
    def of(cls, inputs: TrustInputs) -> _Residuals:
        ref = inputs.reference
        labelled = ref[inputs.schema.target].notna().to_numpy()
        y, p = positive(inputs, inputs.new), _prediction(inputs, inputs.predictions)
        if inputs.reference_predictions is not None:
            ry = positive(inputs, ref[labelled])
            rp = _prediction(inputs, inputs.reference_predictions)[labelled]
            ref = ref[labelled]
        else:
            ry = rp = np.zeros(0)
            ref = ref.iloc[0:0]
        if inputs.classification:
            v, rv = (np.clip(x, 0.01, 0.99) * (1 - np.clip(x, 0.01, 0.99)) for x in (p, rp))
            return cls(y - p, v, y, p, ref, ry - rp, rv, 1.0)
        # regression: each side's own variance (Welch): residuals spread with the target's level
        target = pd.to_numeric(inputs.reference[inputs.schema.target], errors="coerce")
        unit = float(target.std()) if target.notna().sum() > 1 and float(target.std()) > 0 else 1.0
        return cls(y - p, None, y, p, ref, ry - rp, None, unit)


def _part(variance: np.ndarray | None, rows: Any) -> np.ndarray | None:
    return None if variance is None else variance[rows]


def _prediction(inputs: TrustInputs, pred: Predictions) -> np.ndarray:
    """P(positive) for classification (hard labels as 0/1 when the model gives no scores); the value for regression."""
    if inputs.classification:
        if pred.scores is not None:
            return np.asarray(pred.scores, float)
        return (np.asarray(pred.labels) == inputs.positive_label).astype(float)
    return np.asarray(pred.labels, float)


def segments(reference: pd.DataFrame, frames: list[pd.DataFrame], schema: Schema
             ) -> list[tuple[str, str, list[np.ndarray]]]:
    """(column, description, mask over each of ``frames``) of every segment the check judges (module doc)."""
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
        levels = sorted(set(reference[c].dropna().astype(str)).union(*(set(f[c].dropna().astype(str))
                                                                       for f in frames)))
        out.extend((c, f"{c} == {lv!r}", [v == lv for v in vs]) for lv in levels)
    return out


def _describe(m: _Moved, names: list[str], columns: np.ndarray) -> dict[str, Any]:
    return dict(segment=names[m.segment], column=str(columns[m.segment]), start=m.start, rows=m.stop - m.start,
                segment_rows=m.rows, observed=m.observed, predicted=m.predicted, shift=m.shift, z=m.z,
                reference_shift=m.reference_shift, outside_largest_z=m.outside_z, rest_shift=m.rest_shift,
                rest_z=m.rest_z,
                outside_segment=names[m.outside_segment] if m.outside_segment is not None else None)
