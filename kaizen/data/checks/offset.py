"""``offset`` (batch, incident, block): a numeric column is the reference plus a constant that moves most of it
outside the reference's [min, max]; see :func:`kaizen.data.incidents.offset`."""

from __future__ import annotations

from dataclasses import dataclass

from kaizen._fields import setting
from kaizen.data import incidents
from kaizen.data.checks._base import DataCheck
from kaizen.data.checks._incident import MatchSettings, numeric_detector


@dataclass(frozen=True)
class Settings(MatchSettings):
    offset_outside_share: float = setting(0.5, lo=0, hi=1, lo_open=True,
                                          doc="the share of the values a constant shift must move outside the "
                                              "reference [min, max]")


CHECK = DataCheck("offset", order=110, level="batch", default="block", incident=True, settings=Settings,
                  run=numeric_detector("offset", incidents.offset),
                  doc="a numeric column is the reference plus a constant that moves most of it outside the "
                      "reference's [min, max]")
