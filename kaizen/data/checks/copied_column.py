"""``copied_column`` (batch, incident, block): a feature equals another feature on every row, unlike in the
reference; see :func:`kaizen.data.incidents.copied_columns`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from kaizen._fields import setting
from kaizen.data import incidents
from kaizen.data.checks._base import CheckResult, DataCheck, ReferenceProfile
from kaizen.data.checks._incident import IncidentSettings, found

if TYPE_CHECKING:
    import pandas as pd

    from kaizen.data.checks import ChecksSpec


@dataclass(frozen=True)
class Settings(IncidentSettings):
    copy_max_reference_share: float = setting(0.5, lo=0, hi=1, lo_open=True,
                                              doc="two columns equal in a batch are a copy when equal on less than "
                                                  "this share of the reference rows")


def run(frame: pd.DataFrame, p: ReferenceProfile, spec: ChecksSpec) -> list[CheckResult]:
    """A feature equal to another feature on every row, unlike in the reference."""
    if p.shapes is None:
        return []
    hits = incidents.copied_columns(frame, p.shapes, p.schema.numerical, list(p.categories), spec)
    return [r for f in hits for r in found("copied_column", spec, f)]


CHECK = DataCheck("copied_column", order=130, level="batch", default="block", incident=True, settings=Settings,
                  run=run, doc="a feature equals another feature on every row, unlike in the reference")
