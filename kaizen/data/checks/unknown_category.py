"""``unknown_category`` (row, warn): a categorical value the reference never had (dates are not categories;
new categories can be real)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kaizen.data.checks._base import CheckResult, DataCheck, ReferenceProfile, listing, result, unknown

if TYPE_CHECKING:
    import pandas as pd

    from kaizen.data.checks import ChecksSpec


def run(frame: pd.DataFrame, p: ReferenceProfile, spec: ChecksSpec) -> list[CheckResult]:
    import pandas as pd

    out = []
    for c, known in p.categories.items():
        if c not in frame.columns:
            continue
        bad = unknown(frame[c], known)
        if bad.any():
            out.append(result("unknown_category", c, spec, bad.sum(),
                              f"{int(bad.sum())} of {len(bad)} rows hold categories never seen in the "
                              f"reference: {listing(frame[c][bad])}",
                              bad, batch_rows=len(bad),
                              values=sorted(map(str, pd.unique(frame[c][bad])))[:20]))
    return out


CHECK = DataCheck("unknown_category", order=60, level="row", default="warn", run=run,
                  doc="a categorical value the reference never had")
