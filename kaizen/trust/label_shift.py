"""Label shift beyond what the features explain, in one segment alone: "one segment relabelled".

The champion's predictions on the new rows already account for how their *features* moved:
rows it predicts at 5 % churn should churn about 5 % of the time. So a row's residual (label
minus the champion's probability) is the part of its label the feature drift does not explain.
For every segment (:mod:`kaizen.trust._segments`: categorical levels, one-sided decile ranges
such as ``tenure_months >= 51``) and every stretch of new rows (all, halves, quarters, ... down
to ``trust.min_rows``, :func:`~kaizen.trust._base.spans`) the segment's mean residual is compared
with the other rows' (a shift of the whole population is the trigger's business), minus the same
contrast on the reference rows (the champion's own error there: a model that under-predicts one
contract type on its training rows is not evidence of poisoning). A segment has *moved* when that
shift is at least ``trust.min_label_shift`` and ``trust.z`` standard errors.

A real concept change moves labels too. Two tests tell a relabelled segment from it, and a
moved segment is a finding only when it passes both:

1. **Confined**: among the stretch's rows outside the segment, no segment of another column
   moved beyond what chance gives among that many segments (family-wise 5 %). A concept change
   moves labels in several places at once.
2. **Not a rule of the features**: a logistic regression fit on the stretch's *other* new rows
   (a concept change is a rule it learns; a numeric range is reached by extrapolation, a
   categorical level it never saw is left out of its inputs) still leaves the segment's labels
   ``min_label_shift`` and ``z`` beyond its predictions, the same way.

Then the segment's rows labelled with the class that rose (or fell) are named. The record says
which segments moved and which test cleared them otherwise.

Measured with a champion bootstrapped by Kaizen (experiments/attacks.py, docs/policies.md): a
relabelled segment of ~130 rows in a 1,000-row batch (30 % flipped) moved 0.18-0.44 with z 6-11;
the churn concept-change scenario and streams left 5 findings in 180 cycles at the defaults.
Regression targets are not judged (a strongly non-linear response, such as demand against price,
defeated the linear extrapolation of test 2).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from kaizen.data.predictions import Predictions
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
from kaizen.trust._segments import contrast, outside_bar, segments, shifts

__all__ = ["LabelShift"]

#: moved segments (strongest first) tested per stretch
MAX_CANDIDATES = 20


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
    rest_shift: float | None = None  # the segment's labels over a model of the other new rows
    rest_z: float | None = None      # None: that model explains them (or could not be fit)

    @property
    def unexplained(self) -> bool:
        return self.confined and self.rest_z is not None


class LabelShift(TrustCheck):
    name = "label_shift"

    def check(self, inputs: TrustInputs) -> TrustFinding:
        spec, new = inputs.spec, inputs.new
        n = len(new)
        if not inputs.classification:
            return self.finding(inputs, None, inputs.unjudged, task=inputs.task)
        if n < spec.min_rows:
            return self.finding(inputs, None, f"not judged: {n} new rows, fewer than trust.min_rows = "
                                              f"{spec.min_rows}", new_rows=n)
        y, p, ref, ry, rp = _labels_and_predictions(inputs)
        if np.isin(p, (0.0, 1.0)).all():
            return self.finding(inputs, None, "not judged: the champion gives hard labels, no probabilities (a "
                                              "residual needs P(positive))", new_rows=n)
        residual, variance = y - p, _variance(p)
        segs = segments(inputs.reference, [new, ref], inputs.schema)
        names = [s[1] for s in segs]
        columns = np.array([s[0] for s in segs], dtype=object)
        member = np.stack([s[2][0] for s in segs], axis=1) if segs else np.zeros((n, 0), bool)
        ref_member = np.stack([s[2][1] for s in segs], axis=1) if segs else np.zeros((len(ref), 0), bool)
        base = contrast(ref_member, ry - rp, _variance(rp)) if len(ref) else None
        bar = outside_bar(len(segs))
        rest_model = _RestModel(inputs, y)
        moved: list[_Moved] = []
        for a, b in spans(n, spec.min_rows):
            r, v = residual[a:b], variance[a:b]
            here = shifts(contrast(member[a:b], r, v), base, b - a, spec.z, spec.min_label_shift)
            for j in [j for j in np.argsort(-np.abs(here.z)) if here.moved[j]][:MAX_CANDIDATES]:
                inside = member[a:b, j]
                keep = ~ref_member[:, j]
                out_base = contrast(ref_member[keep], (ry - rp)[keep], _variance(rp[keep])) \
                    if base is not None else None
                rest = shifts(contrast(member[a:b][~inside], r[~inside], v[~inside]), out_base, int((~inside).sum()),
                              spec.z, spec.min_label_shift)
                other = columns != columns[j]
                strongest = int(np.argmax(np.where(other, np.abs(rest.z), -1.0))) if other.any() else None
                blocker = (np.abs(rest.z) >= bar) & other
                m = _Moved(a, b, int(j), int(here.count[j]), float(here.shift[j]), float(here.z[j]),
                           float(y[a:b][inside].mean()), float(p[a:b][inside].mean()),
                           float(base.diff[j]) if base is not None else None,
                           float(rest.z[strongest]) if strongest is not None else 0.0,
                           int(np.argmax(np.where(blocker, np.abs(rest.z), -1.0))) if blocker.any() else strongest,
                           not blocker.any())
                if m.confined:
                    m = dataclasses.replace(m, **rest_model.beyond(a, b, inside, str(columns[j]), m.shift))
                moved.append(m)
                if m.unexplained:
                    break
        numbers: dict[str, Any] = dict(new_rows=n, segments=len(segs), stretches=len(spans(n, spec.min_rows)),
                                       min_label_shift=spec.min_label_shift, outside_bar=bar,
                                       reference_baseline=bool(len(ref)))
        note = "" if len(ref) else (" (no champion predictions on the reference: its own errors by segment are not "
                                    "discounted)")
        found = [m for m in moved if m.unexplained]
        if not found:
            if not moved:
                return self.finding(inputs, None, "no segment's labels moved beyond the champion's predictions "
                                                  f"against the other rows by >= {spec.min_label_shift:g} and z >= "
                                                  f"{spec.z:g}" + note, **numbers)
            u = max(moved, key=lambda m: abs(m.z))
            numbers.update(_describe(u, names, columns), moved_segments=len({m.segment for m in moved}))
            if not u.confined:
                why = (f"not in one alone (outside it {names[u.outside_segment]} moved too, z = {u.outside_z:.1f})")
            else:
                why = "a model of the other new rows predicts its labels as they are (a rule of the features)"
            return self.finding(inputs, None, f"labels moved in {numbers['moved_segments']} segment(s) (largest "
                                              f"{names[u.segment]} in {describe_span((u.start, u.stop), n)}: "
                                              f"{u.shift:+.3f}, z = {u.z:.1f}) but {why}: reads as a concept "
                                              "change, not flagged" + note, **numbers)
        best = max(found, key=lambda m: abs(m.z))
        flagged = np.zeros(n, bool)
        for m in found:
            flagged[m.start:m.stop] |= member[m.start:m.stop, m.segment] & (
                np.sign(residual[m.start:m.stop]) == np.sign(m.shift))
        numbers.update(_describe(best, names, columns), stretches_fired=len(found))
        own = "" if best.reference_shift is None else f"; {best.reference_shift:+.3f} on the reference"
        return self.finding(inputs, new.index[flagged],
                            f"labels of segment {names[best.segment]} ({best.rows} of "
                            f"{describe_span((best.start, best.stop), n)}) moved {best.shift:+.3f} beyond the "
                            f"champion's predictions against the other rows (positive rate {best.observed:.3f}, "
                            f"predicted {best.predicted:.3f}{own}; z = {best.z:.1f}); no other column's segment moved "
                            f"outside it (largest z {best.outside_z:.1f}) and a model of the other new rows leaves it "
                            f"{best.rest_shift:+.3f} (z = {best.rest_z:.1f}): one segment relabelled; "
                            f"{int(flagged.sum())} row(s) named" + note, **numbers)


class _RestModel:
    """Test 2 of the module doc: do the stretch's other new rows, modelled on their own, predict the segment?"""

    def __init__(self, inputs: TrustInputs, y: np.ndarray) -> None:
        self.inputs, self.y = inputs, y
        self.sources = encoded_sources(inputs.reference, inputs.schema)
        self._x: np.ndarray | None = None

    def beyond(self, a: int, b: int, inside: np.ndarray, column: str, direction: float) -> dict[str, float | None]:
        """``rest_shift`` and ``rest_z`` of the segment's labels over the model's predictions; ``rest_z`` is None
        unless they are ``min_label_shift`` and ``z`` beyond them in ``direction``."""
        from sklearn.linear_model import LogisticRegression

        inputs, spec = self.inputs, self.inputs.spec
        if self._x is None:
            (self._x,) = encode(inputs.reference, [inputs.new], inputs.schema)
        x, y = self._x[a:b], self.y[a:b]
        if column in inputs.schema.numerical:
            spread = pd.to_numeric(inputs.new[column].iloc[a:b][~inside], errors="coerce").nunique()
            if spread < 3:  # no spread of this column outside the segment to carry a rule into it
                return {"rest_shift": None, "rest_z": None}
            keep = np.ones(x.shape[1], bool)
        else:
            keep = self.sources != column
        if y[~inside].min() == y[~inside].max():
            return {"rest_shift": None, "rest_z": None}
        model = LogisticRegression(C=1.0, max_iter=1000).fit(x[~inside][:, keep], y[~inside])
        q = model.predict_proba(x[inside][:, keep])[:, 1]
        e = y[inside] - q
        z = float(e.sum() / np.sqrt(_variance(q).sum()))
        shift = float(e.mean())
        ok = np.sign(shift) == np.sign(direction) and abs(shift) >= spec.min_label_shift and abs(z) >= spec.z
        return {"rest_shift": shift, "rest_z": z if ok else None}


def _labels_and_predictions(inputs: TrustInputs) -> tuple[np.ndarray, np.ndarray, pd.DataFrame, np.ndarray,
                                                          np.ndarray]:
    """(y, p) on the new rows; the labelled reference rows with their (y, p) when the champion's are given."""
    y, p = positive(inputs, inputs.new), _probability(inputs, inputs.predictions)
    ref = inputs.reference
    if inputs.reference_predictions is None or inputs.schema.target not in ref.columns:
        return y, p, ref.iloc[0:0], np.zeros(0), np.zeros(0)
    labelled = ref[inputs.schema.target].notna().to_numpy()
    ref = ref[labelled]
    return y, p, ref, positive(inputs, ref), _probability(inputs, inputs.reference_predictions)[labelled]


def _probability(inputs: TrustInputs, pred: Predictions) -> np.ndarray:
    """P(positive); a model without scores gives its hard labels as 0/1."""
    if pred.scores is not None:
        return np.asarray(pred.scores, float)
    return (np.asarray(pred.labels) == inputs.positive_label).astype(float)


def _variance(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, 0.01, 0.99)
    return q * (1 - q)


def _describe(m: _Moved, names: list[str], columns: np.ndarray) -> dict[str, Any]:
    return dict(segment=names[m.segment], column=str(columns[m.segment]), start=m.start, rows=m.stop - m.start,
                segment_rows=m.rows, observed=m.observed, predicted=m.predicted, shift=m.shift, z=m.z,
                reference_shift=m.reference_shift, outside_largest_z=m.outside_z,
                outside_segment=names[m.outside_segment] if m.outside_segment is not None else None,
                rest_shift=m.rest_shift, rest_z=m.rest_z)
