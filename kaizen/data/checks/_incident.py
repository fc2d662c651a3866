"""What the five incident checks share: their common settings and how a :class:`~kaizen.data.incidents.Finding`
becomes a :class:`CheckResult`. The detectors themselves are :mod:`kaizen.data.incidents`.

A column that is a copy of another is reported by ``copied_column`` alone: the other incident checks leave it
out (one story, told once).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kaizen._fields import setting
from kaizen.data.checks._base import CheckResult, ReferenceProfile, floats, result

if TYPE_CHECKING:
    import pandas as pd

    from kaizen.data.checks import ChecksSpec
    from kaizen.data.incidents import Finding


@dataclass(frozen=True)
class IncidentSettings:
    """Shared by every incident check."""

    incident_min_values: int = setting(50, lo=10, doc="incident checks: a column with fewer values (in the batch or "
                                                      "the reference) is not judged")


@dataclass(frozen=True)
class MatchSettings(IncidentSettings):
    """Shared by ``sign_flip``, ``rescaled`` and ``offset``: when a mapped batch matches the reference."""

    match_distance: float = setting(0.1, lo=0, hi=1, lo_open=True,
                                    doc="sign_flip (mirror) / rescaled / offset: a mapped batch matches the reference "
                                        "when its 5 %, 10 %, ..., 95 % quantiles are this close to the reference's "
                                        "on average (unit: its 5-95 % range)")
    offset_min_shift: float = setting(1.0, lo=0, doc="offset: the least size of a constant shift, in units of the "
                                                     "reference's 5-95 % range (also what a mirror must beat)")


def found(check: str, spec: ChecksSpec, finding: Finding | None) -> list[CheckResult]:
    if finding is None:
        return []
    return [result(check, finding.column, spec, finding.rows, finding.detail, **finding.numbers)]


def not_copies(out: list[CheckResult], frame: pd.DataFrame, p: ReferenceProfile, spec: ChecksSpec
               ) -> list[CheckResult]:
    """``out`` without the columns that hold a copy of another column: copied_column tells that story."""
    if not out or spec.copied_column == "off":
        return out
    from kaizen.data.checks.copied_column import run as copied_column

    copies = {r.column for r in copied_column(frame, p, spec)}
    return [r for r in out if r.column not in copies]


def numeric_detector(check: str, detect: Callable[..., Any]
                     ) -> Callable[[pd.DataFrame, ReferenceProfile, ChecksSpec], list[CheckResult]]:
    """A check that runs ``detect(column, values, shape, spec)`` of :mod:`kaizen.data.incidents` on every numeric
    column the reference has a shape for."""
    def run(frame: pd.DataFrame, p: ReferenceProfile, spec: ChecksSpec) -> list[CheckResult]:
        if p.shapes is None:
            return []
        out = []
        for c, shape in p.shapes.numeric.items():
            if c in frame.columns:
                out += found(check, spec, detect(c, floats(frame[c]), shape, spec))
        return not_copies(out, frame, p, spec)
    run.__name__ = run.__qualname__ = f"check_{check}"
    run.__doc__ = detect.__doc__
    return run
