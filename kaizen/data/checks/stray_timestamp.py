"""``stray_timestamp`` (batch, block): a batch holds a row whose timestamp lies more than ``max_timestamp_gap_days``
days from the batch's median timestamp.

A batch file holds the events of one stretch of time (an hour, a day, a week). A row a year away from
the rest of its file is a placeholder date (``1970-01-01``, ``1900-01-01``, ``2099-12-31``), a clock set
wrong or a unit error upstream (seconds read as milliseconds), not an event of that stretch. One such
row moves its whole batch: the batches read are ordered by their first timestamp before anything is
judged (:func:`kaizen.data.window.load_window`), so a ``1970`` row makes the newest batch the oldest
and the cycle silently judges the previous window again; a ``2099`` row becomes the "newest" row the
holdout is cut from. The batch's place cannot be trusted, so the check judges the batch (batch-level):
blocked by default, it is rejected whole wherever it falls, with the rows named, like every value that
cannot be real. The median is the batch's own (the lower median: a real row's time), so the check
needs nothing from the reference and costs one sort per batch; a batch without the policy's
``data.timestamp_column`` (a label file) is not judged. A backfill that honestly spans years: raise the
gap or set the check to ``"warn"``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from kaizen._fields import setting
from kaizen.data.checks._base import CheckResult, DataCheck, ReferenceProfile, result

if TYPE_CHECKING:
    import pandas as pd

    from kaizen.data.checks import ChecksSpec

DAY = 86400.0


@dataclass(frozen=True)
class Settings:
    max_timestamp_gap_days: float = setting(365.0, lo=0, lo_open=True,
                                            doc="stray_timestamp: a row's timestamp may lie at most this many days "
                                                "from its batch's median timestamp")


def _iso(seconds: float) -> str:
    import pandas as pd

    return pd.Timestamp(seconds, unit="s", tz="UTC").isoformat().replace("+00:00", "Z")


def run(frame: pd.DataFrame, p: ReferenceProfile, spec: ChecksSpec) -> list[CheckResult]:
    import pandas as pd

    col = p.schema.timestamp
    if not col or col not in frame.columns or not len(frame):
        return []
    ts = pd.to_datetime(frame[col], errors="coerce", utc=True)
    seconds = ((ts - pd.Timestamp(0, tz="UTC")).dt.total_seconds()).to_numpy(dtype="float64", na_value=np.nan)
    known = np.sort(seconds[np.isfinite(seconds)])
    if len(known) < 2:
        return []
    median = float(known[(len(known) - 1) // 2])
    limit = spec.max_timestamp_gap_days
    gap = np.abs(seconds - median) / DAY
    bad = np.isfinite(gap) & (gap > limit)
    if not bad.any():
        return []
    stray = seconds[bad]
    early, late = int((stray < median).sum()), int((stray > median).sum())
    shown = ", ".join(_iso(s) for s in np.unique(stray)[:3]) + (" ..." if len(np.unique(stray)) > 3 else "")
    return [result("stray_timestamp", col, spec, bad.sum(),
                   f"{int(bad.sum())} of {len(frame)} rows have a timestamp more than {limit:g} days from the "
                   f"batch's median {_iso(median)} ({early} before, {late} after: {shown}): a placeholder date or a "
                   f"clock or unit error upstream, not an event of this batch",
                   batch_rows=len(frame), median=_iso(median), max_gap_days=limit,
                   rows_at=np.flatnonzero(bad)[:20].tolist(), largest_gap_days=float(gap[bad].max()), before=early,
                   after=late)]


CHECK = DataCheck("stray_timestamp", order=140, level="batch", default="block", run=run, settings=Settings,
                  doc="a row's timestamp lies more than max_timestamp_gap_days from its batch's median timestamp "
                      "(the batch's place among the batches cannot be trusted)")
