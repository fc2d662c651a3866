"""``null_rate`` (batch, warn): a feature's null share exceeds the reference's by more than
``max_null_rate_increase`` (a column null in every row is left to ``all_null``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from kaizen._fields import setting
from kaizen.data.checks._base import CheckResult, DataCheck, ReferenceProfile, result

if TYPE_CHECKING:
    import pandas as pd

    from kaizen.data.checks import ChecksSpec


@dataclass(frozen=True)
class Settings:
    max_null_rate_increase: float = setting(0.3, lo=0, hi=1, doc="a column's null share may exceed the "
                                                                 "reference's by at most this")


def run(frame: pd.DataFrame, p: ReferenceProfile, spec: ChecksSpec) -> list[CheckResult]:
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
            out.append(result("null_rate", c, spec, nulls,
                              f"{nulls} of {n} rows are null ({rate:.1%}) against {ref:.1%} in the reference; "
                              f"the allowed increase is {spec.max_null_rate_increase:.1%}",
                              batch_rows=n, null_rate=rate, reference_null_rate=ref,
                              max_increase=spec.max_null_rate_increase))
    return out


CHECK = DataCheck("null_rate", order=50, level="batch", default="warn", run=run, settings=Settings,
                  doc="a feature's null share exceeds the reference's by more than max_null_rate_increase")
