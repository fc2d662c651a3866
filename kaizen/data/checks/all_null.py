"""``all_null`` (batch, block): a feature is null in every row of a batch (unless it is all null in the reference)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kaizen.data.checks._base import CheckResult, DataCheck, ReferenceProfile, result

if TYPE_CHECKING:
    import pandas as pd

    from kaizen.data.checks import ChecksSpec


def run(frame: pd.DataFrame, p: ReferenceProfile, spec: ChecksSpec) -> list[CheckResult]:
    out = []
    for c in p.schema.features:
        if c in frame.columns and len(frame) and frame[c].isna().all() and p.null_rates.get(c, 0.0) < 1.0:
            out.append(result("all_null", c, spec, len(frame),
                              f"all {len(frame)} rows are null (reference: {p.null_rates.get(c, 0.0):.1%} null)",
                              batch_rows=len(frame), reference_null_rate=p.null_rates.get(c, 0.0)))
    return out


CHECK = DataCheck("all_null", order=20, level="batch", default="block", run=run,
                  doc="a feature is null in every row of the batch")
