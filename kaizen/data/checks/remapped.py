"""``remapped`` (batch, incident, block): a categorical column's level frequencies match the reference's only
after relabelling its levels; see :func:`kaizen.data.incidents.remapped`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from kaizen._fields import setting
from kaizen.data import incidents
from kaizen.data.checks._base import CheckResult, DataCheck, ReferenceProfile
from kaizen.data.checks._incident import IncidentSettings, found, not_copies

if TYPE_CHECKING:
    import pandas as pd

    from kaizen.data.checks import ChecksSpec


@dataclass(frozen=True)
class Settings(IncidentSettings):
    remap_distance: float = setting(0.25, lo=0, hi=1, lo_open=True,
                                    doc="the level frequencies must differ at least this much as labelled (total "
                                        "variation) ...")
    remap_match: float = setting(0.2, lo=0, hi=1, doc="... and match within this much after the best one-to-one "
                                                      "relabelling")


def run(frame: pd.DataFrame, p: ReferenceProfile, spec: ChecksSpec) -> list[CheckResult]:
    """Level frequencies that match the reference's only after relabelling the levels."""
    if p.shapes is None:
        return []
    out = []
    for c, shape in p.shapes.levels.items():
        if c in frame.columns:
            out += found("remapped", spec, incidents.remapped(c, incidents.level_counts(frame[c]), shape, spec))
    return not_copies(out, frame, p, spec)


CHECK = DataCheck("remapped", order=120, level="batch", default="block", incident=True, settings=Settings, run=run,
                  doc="a categorical column's level frequencies match the reference's only after relabelling its "
                      "levels")
