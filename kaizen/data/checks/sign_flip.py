"""``sign_flip`` (batch, incident, block): a one-signed numeric column turned to the other sign, or a two-signed
one is the reference mirrored (``-x``); see :func:`kaizen.data.incidents.sign_flip`."""

from __future__ import annotations

from dataclasses import dataclass

from kaizen._fields import setting
from kaizen.data import incidents
from kaizen.data.checks._base import DataCheck
from kaizen.data.checks._incident import MatchSettings, numeric_detector


@dataclass(frozen=True)
class Settings(MatchSettings):
    sign_tolerance: float = setting(0.01, lo=0, hi=0.2, doc="\"(almost) all of one sign\" allows this share of the "
                                                           "non-zero values on the other side")


CHECK = DataCheck("sign_flip", order=90, level="batch", default="block", incident=True, settings=Settings,
                  run=numeric_detector("sign_flip", incidents.sign_flip),
                  doc="a one-signed numeric column turned to the other sign, or a two-signed one is the reference "
                      "mirrored (-x)")
