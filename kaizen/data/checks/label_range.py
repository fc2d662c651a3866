"""``label_range`` (row, block): regression: a target outside the reference [min, max] widened as for
``out_of_range`` (``range_tolerance``), or not a number."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from kaizen.data.checks._base import (
    CLASSIFICATION,
    CheckResult,
    DataCheck,
    RangeSettings,
    ReferenceProfile,
    extreme,
    floats,
    listing,
    num,
    result,
)

if TYPE_CHECKING:
    import pandas as pd

    from kaizen.data.checks import ChecksSpec


def run(frame: pd.DataFrame, p: ReferenceProfile, spec: ChecksSpec) -> list[CheckResult]:
    t, rng = p.schema.target, p.target_range
    if p.task in CLASSIFICATION or rng is None or t not in frame.columns:
        return []
    v = floats(frame[t])
    not_number = frame[t].notna().to_numpy(dtype=bool) & np.isnan(v)
    lo, hi = rng.widened(spec.range_tolerance)
    outside = np.isfinite(v) & ((v < lo) | (v > hi))
    bad = outside | not_number
    if not bad.any():
        return []
    parts = []
    if outside.any():
        parts.append(f"{int(outside.sum())} of {len(v)} rows have a target outside the plausible range "
                     f"[{num(lo)}, {num(hi)}] (the reference range [{num(rng.min)}, {num(rng.max)}] "
                     f"widened by {spec.range_tolerance:g} x its range; extreme {num(extreme(v, outside))})")
    if not_number.any():
        parts.append(f"{int(not_number.sum())} of {len(v)} rows have a target that is not a number "
                     f"({listing(frame[t][not_number], 3)})")
    return [result("label_range", t, spec, bad.sum(), "; ".join(parts), bad, batch_rows=len(v),
                   allowed_min=lo, allowed_max=hi, outside=int(outside.sum()), not_numbers=int(not_number.sum()),
                   extreme=extreme(v, outside) if outside.any() else None)]


CHECK = DataCheck("label_range", order=80, level="row", default="block", run=run, settings=RangeSettings,
                  doc="regression: a target outside the reference [min, max] widened as for out_of_range, or "
                      "not a number")
