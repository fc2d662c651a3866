"""``out_of_range`` (row, warn): a numeric value lies outside the reference [min, max] widened by
``range_tolerance`` x (max - min) each side; values ``magnitude`` already reports at least as strictly are not
repeated.

The spread that widens a range is the reference's range (max - min), not its IQR: heavy-tailed columns
(usage, demand) drift beyond the reference max by up to ~10 IQRs on the shipped scenarios and streams but
stay within ~2 ranges.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from kaizen.data.checks._base import (
    STRICTNESS,
    CheckResult,
    DataCheck,
    RangeSettings,
    ReferenceProfile,
    extreme,
    far,
    floats,
    num,
    result,
)

if TYPE_CHECKING:
    import pandas as pd

    from kaizen.data.checks import ChecksSpec


def run(frame: pd.DataFrame, p: ReferenceProfile, spec: ChecksSpec) -> list[CheckResult]:
    # values the magnitude check already reports at least as strictly are not reported twice
    magnitude_covers = STRICTNESS[spec.magnitude] >= STRICTNESS[spec.out_of_range]
    out = []
    for c, rng in p.ranges.items():
        if c not in frame.columns:
            continue
        v = floats(frame[c])
        lo, hi = rng.widened(spec.range_tolerance)
        bad = np.isfinite(v) & ((v < lo) | (v > hi))
        if magnitude_covers:
            bad &= ~far(v, rng, spec.magnitude_factor)
        if bad.any():
            ext = extreme(v, bad)
            out.append(result("out_of_range", c, spec, bad.sum(),
                              f"{int(bad.sum())} of {len(v)} rows ({bad.mean():.1%}) outside the reference "
                              f"range [{num(rng.min)}, {num(rng.max)}] widened by {spec.range_tolerance:g} "
                              f"x its range to [{num(lo)}, {num(hi)}] (extreme {num(ext)})",
                              bad, batch_rows=len(v), share=float(bad.mean()), allowed_min=lo, allowed_max=hi,
                              reference_min=rng.min, reference_max=rng.max, extreme=ext))
    return out


CHECK = DataCheck("out_of_range", order=40, level="row", default="warn", run=run, settings=RangeSettings,
                  doc="a numeric value lies outside the reference [min, max] widened by range_tolerance x "
                      "(max - min) each side")
