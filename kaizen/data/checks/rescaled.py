"""``rescaled`` (batch, incident, block): a numeric column is the reference times a factor at least
``scale_factor`` from 1 (a unit change); see :func:`kaizen.data.incidents.rescaled`."""

from __future__ import annotations

from dataclasses import dataclass

from kaizen._fields import setting
from kaizen.data import incidents
from kaizen.data.checks._base import DataCheck
from kaizen.data.checks._incident import MatchSettings, numeric_detector


@dataclass(frozen=True)
class Settings(MatchSettings):
    scale_factor: float = setting(5.0, lo=1, lo_open=True, doc="a factor at least this far from 1 (x k or / k) is a "
                                                               "unit change, not drift")


CHECK = DataCheck("rescaled", order=100, level="batch", default="block", incident=True, settings=Settings,
                  run=numeric_detector("rescaled", incidents.rescaled),
                  doc="a numeric column is the reference times a factor at least scale_factor from 1")
