"""Value checks on production batches, run before anything learns from a batch or is scored on it.

The schema check (:func:`kaizen.data.schema.check_frame`) asks whether a batch has the
right columns and kinds; these checks ask whether its *values* can be real, against a
:class:`ReferenceProfile` computed once from the reference set. Each check returns one
:class:`CheckResult` per failing column, naming the check, the column, the action and
the numbers::

    check 'magnitude' (block) on column 'income': 412 of 412 rows outside the reference
    range [1200, 9.8e+04] by more than 1000x (extreme 9.7e+16)

The checks, and their default action (``[data.checks]`` in the policy: "block", "warn"
or "off"; see docs/policies.md):

=================  =======  =====  =====================================================
check              default  level  fails when
=================  =======  =====  =====================================================
infinite           block    row    a numeric feature (or a regression target) is +/-inf
all_null           block    batch  a feature is null in every row of the batch
magnitude          block    row    a numeric value's absolute value exceeds
                                   ``magnitude_factor`` x the reference's largest one
out_of_range       warn     row    a numeric value lies outside the reference [min, max]
                                   widened by ``range_tolerance`` x (max - min) each side
null_rate          warn     batch  a feature's null share exceeds the reference's by
                                   more than ``max_null_rate_increase``
unknown_category   warn     row    a categorical value the reference never had (dates
                                   are not categories)
unknown_label      block    row    classification: a label outside the reference's classes
label_range        block    row    regression: a target outside the reference [min, max]
                                   widened as for out_of_range, or not a number
sign_flip          block    batch  a one-signed numeric column turned to the other sign, or
                                   a two-signed one is the reference mirrored (``-x``)
rescaled           block    batch  a numeric column is the reference times a factor at least
                                   ``scale_factor`` from 1 (a unit change)
offset             block    batch  a numeric column is the reference plus a constant that
                                   moves most of it outside the reference's [min, max]
remapped           block    batch  a categorical column's level frequencies match the
                                   reference's only after relabelling its levels
copied_column      block    batch  a feature equals another feature on every row, unlike in
                                   the reference
=================  =======  =====  =====================================================

Block by default what cannot be real (an infinity, an unknown class, a column that is
entirely null, values orders of magnitude off, a target far outside anything seen);
warn for what drift or a genuinely new category can produce.

**Incidents.** The last five (``INCIDENT_CHECKS``, :mod:`kaizen.data.incidents`) recognise a
column an upstream bug corrupted: its values are the reference's mapped by a sign flip, a unit
change, an offset, a relabelling or a copy, which honest drift does not do. A batch failing one
is rejected whole (newest or history) and listed as an incident (``Window.incidents``): neither
the champion nor a challenger should ever see it.

**Row-level vs batch-level.** A row-level check can point at the rows that fail it
(``CheckResult.mask``): dropping them leaves rows that pass it. A batch-level check is a
property of a column over the whole batch (every value null, too many nulls): there is
no row to drop. The window (:mod:`kaizen.data.window`) uses this: a newest batch (a
candidate for the current window) that fails any blocking check is rejected whole; an
older batch (history) that fails a blocking *batch-level* check is rejected whole, while
rows failing a blocking *row-level* check are dropped and counted, so a check added
later never fails cycles on history that was accepted before it existed.

The spread that widens a range is the reference's range (max - min), not its IQR:
heavy-tailed columns (usage, demand) drift beyond the reference max by up to ~10 IQRs
on the shipped scenarios and streams but stay within ~2 ranges.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from kaizen.data import incidents
from kaizen.data.incidents import Finding, ReferenceShapes
from kaizen.data.schema import Schema
from kaizen.policy import ChecksSpec

__all__ = ["CHECKS", "INCIDENT_CHECKS", "ROW_LEVEL", "CheckResult", "NumericRange", "ReferenceProfile",
           "drop_failing_rows", "run_checks"]

CLASSIFICATION = "binary_classification"
#: Checks whose failures name rows (dropped from history); the others judge a column as a whole.
ROW_LEVEL = frozenset({"infinite", "magnitude", "out_of_range", "unknown_category", "unknown_label",
                       "label_range"})
#: Checks that recognise a column corrupted upstream (batch-level): a failing batch is a data incident.
INCIDENT_CHECKS = frozenset({"sign_flip", "rescaled", "offset", "remapped", "copied_column"})
_STRICTNESS = {"off": 0, "warn": 1, "block": 2}


@dataclass(frozen=True)
class NumericRange:
    """The finite values of one numeric reference column: ``[min, max]``."""

    min: float
    max: float

    @property
    def spread(self) -> float:
        """``max - min``; for a constant column its absolute value (or 1 for a constant 0)."""
        width = self.max - self.min
        return width if width > 0 else (self.magnitude or 1.0)

    @property
    def magnitude(self) -> float:
        """The largest absolute value."""
        return max(abs(self.min), abs(self.max))

    def widened(self, tolerance: float) -> tuple[float, float]:
        return self.min - tolerance * self.spread, self.max + tolerance * self.spread


def _key(value: Any) -> Any:
    """Compare categories and labels by value: 1, 1.0 and numpy's 1 are one class; the rest as text."""
    if isinstance(value, (bool, int, float, np.bool_, np.integer, np.floating)):
        return float(value)
    return str(value)


def _floats(s: pd.Series) -> np.ndarray:
    return pd.to_numeric(s, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)


def _range_of(s: pd.Series) -> NumericRange | None:
    v = _floats(s)
    v = v[np.isfinite(v)]
    return NumericRange(float(v.min()), float(v.max())) if len(v) else None


@dataclass(frozen=True)
class ReferenceProfile:
    """What the checks compare a batch with, computed once from the reference set.

    Immutable once built; :meth:`build` is the only constructor callers need.
    """

    schema: Schema
    task: str
    ranges: Mapping[str, NumericRange]           # numerical features with a finite value
    categories: Mapping[str, frozenset[Any]]     # categorical, non-date features -> known values (by _key)
    null_rates: Mapping[str, float]              # every feature
    classes: tuple[Any, ...] = ()                # classification: the reference's labels
    target_range: NumericRange | None = None     # regression: the reference target's range
    shapes: ReferenceShapes | None = None        # what the incident checks compare with

    @classmethod
    def build(cls, reference: pd.DataFrame, schema: Schema, task: str) -> ReferenceProfile:
        ranges = {c: r for c in schema.numerical if (r := _range_of(reference[c])) is not None}
        categories = {c: frozenset(_key(v) for v in pd.unique(reference[c].dropna())) for c in schema.categorical
                      if not pd.api.types.is_datetime64_any_dtype(reference[c])}  # dates are not categories
        null_rates = {c: float(reference[c].isna().mean()) if len(reference) else 0.0 for c in schema.features}
        target = reference[schema.target].dropna()
        classes: tuple[Any, ...] = ()
        target_range = None
        if task == CLASSIFICATION:
            classes = tuple(sorted(pd.unique(target).tolist(), key=lambda v: (str(type(v)), v)))
        else:
            target_range = _range_of(target)
        shapes = ReferenceShapes.build(reference, schema.numerical, list(categories))
        return cls(schema=schema, task=task, ranges=MappingProxyType(ranges),
                   categories=MappingProxyType(categories), null_rates=MappingProxyType(null_rates),
                   classes=classes, target_range=target_range, shapes=shapes)

    @property
    def class_keys(self) -> frozenset[Any]:
        return frozenset(_key(v) for v in self.classes)


@dataclass(frozen=True)
class CheckResult:
    """One check failing on one column of one batch. ``mask`` marks the failing rows (row-level only)."""

    check: str
    column: str
    action: str                  # "block" or "warn"
    rows: int                    # rows concerned
    detail: str                  # the numbers, in words
    numbers: Mapping[str, Any] = field(default_factory=dict)
    mask: np.ndarray | None = field(default=None, compare=False, repr=False)

    @property
    def blocks(self) -> bool:
        return self.action == "block"

    @property
    def row_level(self) -> bool:
        return self.check in ROW_LEVEL

    @property
    def incident(self) -> bool:
        """A column corrupted upstream (a sign flip, a unit change, ...), not a suspicious value."""
        return self.check in INCIDENT_CHECKS

    @property
    def message(self) -> str:
        return f"check {self.check!r} ({self.action}) on column {self.column!r}: {self.detail}"

    def __str__(self) -> str:
        return self.message

    def to_dict(self) -> dict[str, Any]:
        return {"check": self.check, "column": self.column, "action": self.action, "rows": self.rows,
                "message": self.message, "numbers": dict(self.numbers)}


def _num(x: float) -> str:
    return f"{x:.4g}"


def _extreme(v: np.ndarray, mask: np.ndarray) -> float:
    bad = v[mask]
    return float(bad[np.argmax(np.abs(bad))])


def _listing(values: pd.Series, limit: int = 5) -> str:
    counts = values.value_counts()
    shown = ", ".join(f"{v!r} ({n})" for v, n in counts.head(limit).items())
    return shown + (f" and {len(counts) - limit} more" if len(counts) > limit else "")


Check = Callable[[pd.DataFrame, ReferenceProfile, ChecksSpec], list[CheckResult]]


def _result(check: str, column: str, spec: ChecksSpec, rows: int, detail: str,
            mask: np.ndarray | None = None, **numbers: Any) -> CheckResult:
    return CheckResult(check, column, getattr(spec, check), int(rows), detail, MappingProxyType(numbers), mask)


def _numeric_targets(frame: pd.DataFrame, p: ReferenceProfile) -> list[str]:
    cols = [c for c in p.schema.numerical if c in frame.columns]
    if p.task != CLASSIFICATION and p.schema.target in frame.columns:
        cols.append(p.schema.target)
    return cols


def check_infinite(frame: pd.DataFrame, p: ReferenceProfile, spec: ChecksSpec) -> list[CheckResult]:
    out = []
    for c in _numeric_targets(frame, p):
        v = _floats(frame[c])
        pos, neg = v == np.inf, v == -np.inf
        mask = pos | neg
        if mask.any():
            out.append(_result("infinite", c, spec, mask.sum(),
                               f"{int(mask.sum())} of {len(v)} rows are infinite "
                               f"(+inf {int(pos.sum())}, -inf {int(neg.sum())})",
                               mask, positive=int(pos.sum()), negative=int(neg.sum()), batch_rows=len(v)))
    return out


def check_all_null(frame: pd.DataFrame, p: ReferenceProfile, spec: ChecksSpec) -> list[CheckResult]:
    out = []
    for c in p.schema.features:
        if c in frame.columns and len(frame) and frame[c].isna().all() and p.null_rates.get(c, 0.0) < 1.0:
            out.append(_result("all_null", c, spec, len(frame),
                               f"all {len(frame)} rows are null (reference: {p.null_rates.get(c, 0.0):.1%} null)",
                               batch_rows=len(frame), reference_null_rate=p.null_rates.get(c, 0.0)))
    return out


def _far(v: np.ndarray, rng: NumericRange, factor: float) -> np.ndarray:
    if rng.magnitude == 0:  # a constant 0 column gives no scale to be orders of magnitude away from
        return np.zeros(len(v), dtype=bool)
    return np.isfinite(v) & (np.abs(v) > factor * rng.magnitude)


def check_magnitude(frame: pd.DataFrame, p: ReferenceProfile, spec: ChecksSpec) -> list[CheckResult]:
    out = []
    for c, rng in p.ranges.items():
        if c not in frame.columns:
            continue
        v = _floats(frame[c])
        far = _far(v, rng, spec.magnitude_factor)
        if far.any():
            ext = _extreme(v, far)
            out.append(_result("magnitude", c, spec, far.sum(),
                               f"{int(far.sum())} of {len(v)} rows outside the reference range "
                               f"[{_num(rng.min)}, {_num(rng.max)}] by more than {spec.magnitude_factor:g}x "
                               f"(extreme {_num(ext)})",
                               far, batch_rows=len(v), reference_min=rng.min, reference_max=rng.max,
                               factor=spec.magnitude_factor, extreme=ext))
    return out


def check_out_of_range(frame: pd.DataFrame, p: ReferenceProfile, spec: ChecksSpec) -> list[CheckResult]:
    # values the magnitude check already reports at least as strictly are not reported twice
    magnitude_covers = _STRICTNESS[spec.magnitude] >= _STRICTNESS[spec.out_of_range]
    out = []
    for c, rng in p.ranges.items():
        if c not in frame.columns:
            continue
        v = _floats(frame[c])
        lo, hi = rng.widened(spec.range_tolerance)
        bad = np.isfinite(v) & ((v < lo) | (v > hi))
        if magnitude_covers:
            bad &= ~_far(v, rng, spec.magnitude_factor)
        if bad.any():
            ext = _extreme(v, bad)
            out.append(_result("out_of_range", c, spec, bad.sum(),
                               f"{int(bad.sum())} of {len(v)} rows ({bad.mean():.1%}) outside the reference "
                               f"range [{_num(rng.min)}, {_num(rng.max)}] widened by {spec.range_tolerance:g} "
                               f"x its range to [{_num(lo)}, {_num(hi)}] (extreme {_num(ext)})",
                               bad, batch_rows=len(v), share=float(bad.mean()), allowed_min=lo, allowed_max=hi,
                               reference_min=rng.min, reference_max=rng.max, extreme=ext))
    return out


def check_null_rate(frame: pd.DataFrame, p: ReferenceProfile, spec: ChecksSpec) -> list[CheckResult]:
    out = []
    n = len(frame)
    for c in p.schema.features:
        if c not in frame.columns or not n:
            continue
        nulls = int(frame[c].isna().sum())
        ref = p.null_rates.get(c, 0.0)
        if nulls == n and spec.all_null != "off" and ref < 1.0:
            continue  # all_null reports it
        rate = nulls / n
        if rate - ref > spec.max_null_rate_increase:
            out.append(_result("null_rate", c, spec, nulls,
                               f"{nulls} of {n} rows are null ({rate:.1%}) against {ref:.1%} in the reference; "
                               f"the allowed increase is {spec.max_null_rate_increase:.1%}",
                               batch_rows=n, null_rate=rate, reference_null_rate=ref,
                               max_increase=spec.max_null_rate_increase))
    return out


def _unknown(s: pd.Series, known: frozenset[Any]) -> np.ndarray:
    values = [u for u in pd.unique(s.dropna()) if _key(u) not in known]
    return s.isin(values).to_numpy(dtype=bool) if values else np.zeros(len(s), dtype=bool)


def check_unknown_category(frame: pd.DataFrame, p: ReferenceProfile, spec: ChecksSpec) -> list[CheckResult]:
    out = []
    for c, known in p.categories.items():
        if c not in frame.columns:
            continue
        bad = _unknown(frame[c], known)
        if bad.any():
            out.append(_result("unknown_category", c, spec, bad.sum(),
                               f"{int(bad.sum())} of {len(bad)} rows hold categories never seen in the "
                               f"reference: {_listing(frame[c][bad])}",
                               bad, batch_rows=len(bad),
                               values=sorted(map(str, pd.unique(frame[c][bad])))[:20]))
    return out


def check_unknown_label(frame: pd.DataFrame, p: ReferenceProfile, spec: ChecksSpec) -> list[CheckResult]:
    t = p.schema.target
    if p.task != CLASSIFICATION or t not in frame.columns:
        return []
    bad = _unknown(frame[t], p.class_keys)
    if not bad.any():
        return []
    known = ", ".join(map(repr, p.classes))
    return [_result("unknown_label", t, spec, bad.sum(),
                    f"{int(bad.sum())} of {len(bad)} rows have a label outside the reference's classes "
                    f"({known}): {_listing(frame[t][bad])}",
                    bad, batch_rows=len(bad), classes=list(p.classes),
                    values=sorted(map(str, pd.unique(frame[t][bad])))[:20])]


def check_label_range(frame: pd.DataFrame, p: ReferenceProfile, spec: ChecksSpec) -> list[CheckResult]:
    t, rng = p.schema.target, p.target_range
    if p.task == CLASSIFICATION or rng is None or t not in frame.columns:
        return []
    v = _floats(frame[t])
    not_number = frame[t].notna().to_numpy(dtype=bool) & np.isnan(v)
    lo, hi = rng.widened(spec.range_tolerance)
    outside = np.isfinite(v) & ((v < lo) | (v > hi))
    bad = outside | not_number
    if not bad.any():
        return []
    parts = []
    if outside.any():
        parts.append(f"{int(outside.sum())} of {len(v)} rows have a target outside the plausible range "
                     f"[{_num(lo)}, {_num(hi)}] (the reference range [{_num(rng.min)}, {_num(rng.max)}] "
                     f"widened by {spec.range_tolerance:g} x its range; extreme {_num(_extreme(v, outside))})")
    if not_number.any():
        parts.append(f"{int(not_number.sum())} of {len(v)} rows have a target that is not a number "
                     f"({_listing(frame[t][not_number], 3)})")
    return [_result("label_range", t, spec, bad.sum(), "; ".join(parts), bad, batch_rows=len(v),
                    allowed_min=lo, allowed_max=hi, outside=int(outside.sum()), not_numbers=int(not_number.sum()),
                    extreme=_extreme(v, outside) if outside.any() else None)]


def _found(check: str, spec: ChecksSpec, found: Finding | None) -> list[CheckResult]:
    return [] if found is None else [_result(check, found.column, spec, found.rows, found.detail, **found.numbers)]


def _not_copies(out: list[CheckResult], frame: pd.DataFrame, p: ReferenceProfile, spec: ChecksSpec
                ) -> list[CheckResult]:
    """``out`` without the columns that hold a copy of another column: copied_column tells that story."""
    if not out or spec.copied_column == "off":
        return out
    copies = {r.column for r in check_copied_column(frame, p, spec)}
    return [r for r in out if r.column not in copies]


def _numeric_detector(check: str, detect: Callable[..., Finding | None]) -> Check:
    def run(frame: pd.DataFrame, p: ReferenceProfile, spec: ChecksSpec) -> list[CheckResult]:
        if p.shapes is None:
            return []
        out = []
        for c, shape in p.shapes.numeric.items():
            if c in frame.columns:
                out += _found(check, spec, detect(c, _floats(frame[c]), shape, spec))
        return _not_copies(out, frame, p, spec)
    run.__name__ = run.__qualname__ = f"check_{check}"
    run.__doc__ = detect.__doc__
    return run


check_sign_flip = _numeric_detector("sign_flip", incidents.sign_flip)
check_rescaled = _numeric_detector("rescaled", incidents.rescaled)
check_offset = _numeric_detector("offset", incidents.offset)


def check_remapped(frame: pd.DataFrame, p: ReferenceProfile, spec: ChecksSpec) -> list[CheckResult]:
    """Level frequencies that match the reference's only after relabelling the levels."""
    if p.shapes is None:
        return []
    out = []
    for c, shape in p.shapes.levels.items():
        if c in frame.columns:
            out += _found("remapped", spec, incidents.remapped(c, incidents.level_counts(frame[c]), shape, spec))
    return _not_copies(out, frame, p, spec)


def check_copied_column(frame: pd.DataFrame, p: ReferenceProfile, spec: ChecksSpec) -> list[CheckResult]:
    """A feature equal to another feature on every row, unlike in the reference."""
    if p.shapes is None:
        return []
    found = incidents.copied_columns(frame, p.shapes, p.schema.numerical, list(p.categories), spec)
    return [r for f in found for r in _found("copied_column", spec, f)]


#: Every check by name, in the order results are reported.
CHECKS: Mapping[str, Check] = MappingProxyType({
    "infinite": check_infinite,
    "all_null": check_all_null,
    "magnitude": check_magnitude,
    "out_of_range": check_out_of_range,
    "null_rate": check_null_rate,
    "unknown_category": check_unknown_category,
    "unknown_label": check_unknown_label,
    "label_range": check_label_range,
    "sign_flip": check_sign_flip,
    "rescaled": check_rescaled,
    "offset": check_offset,
    "remapped": check_remapped,
    "copied_column": check_copied_column,
})


def run_checks(frame: pd.DataFrame, profile: ReferenceProfile, spec: ChecksSpec) -> tuple[CheckResult, ...]:
    """Every failing (check, column) of ``frame``; checks set to "off" are not run."""
    if len(frame) == 0:
        return ()
    frame = frame.reset_index(drop=True)
    out: list[CheckResult] = []
    for name, check in CHECKS.items():
        if getattr(spec, name) != "off":
            out.extend(check(frame, profile, spec))
    return tuple(out)


def drop_failing_rows(frame: pd.DataFrame, results: tuple[CheckResult, ...] | list[CheckResult]
                      ) -> pd.DataFrame:
    """``frame`` without the rows any blocking row-level result marks (results from :func:`run_checks`)."""
    drop = np.zeros(len(frame), dtype=bool)
    for r in results:
        if r.blocks and r.row_level and r.mask is not None:
            drop |= r.mask
    return frame.reset_index(drop=True)[~drop] if drop.any() else frame
