"""``unknown_label`` (row, block): classification: a label outside the reference's classes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kaizen.data.checks._base import (
    CLASSIFICATION,
    CheckResult,
    DataCheck,
    ReferenceProfile,
    listing,
    result,
    unknown,
)

if TYPE_CHECKING:
    import pandas as pd

    from kaizen.data.checks import ChecksSpec


def run(frame: pd.DataFrame, p: ReferenceProfile, spec: ChecksSpec) -> list[CheckResult]:
    import pandas as pd

    t = p.schema.target
    if p.task not in CLASSIFICATION or t not in frame.columns:
        return []
    bad = unknown(frame[t], p.class_keys)
    if not bad.any():
        return []
    known = ", ".join(map(repr, p.classes))
    return [result("unknown_label", t, spec, bad.sum(),
                   f"{int(bad.sum())} of {len(bad)} rows have a label outside the reference's classes "
                   f"({known}): {listing(frame[t][bad])}",
                   bad, batch_rows=len(bad), classes=list(p.classes),
                   values=sorted(map(str, pd.unique(frame[t][bad])))[:20])]


CHECK = DataCheck("unknown_label", order=70, level="row", default="block", run=run,
                  doc="classification: a label outside the reference's classes")
