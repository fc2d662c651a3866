"""``infinite`` (row, block): a numeric feature (or a regression target) holds +inf or -inf."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from kaizen.data.checks._base import CheckResult, DataCheck, ReferenceProfile, floats, numeric_targets, result

if TYPE_CHECKING:
    import pandas as pd

    from kaizen.data.checks import ChecksSpec


def run(frame: pd.DataFrame, p: ReferenceProfile, spec: ChecksSpec) -> list[CheckResult]:
    out = []
    for c in numeric_targets(frame, p):
        v = floats(frame[c])
        pos, neg = v == np.inf, v == -np.inf
        mask = pos | neg
        if mask.any():
            out.append(result("infinite", c, spec, mask.sum(),
                              f"{int(mask.sum())} of {len(v)} rows are infinite "
                              f"(+inf {int(pos.sum())}, -inf {int(neg.sum())})",
                              mask, positive=int(pos.sum()), negative=int(neg.sum()), batch_rows=len(v)))
    return out


CHECK = DataCheck("infinite", order=10, level="row", default="block", run=run,
                  doc="a numeric feature (or a regression target) is +/-inf")
