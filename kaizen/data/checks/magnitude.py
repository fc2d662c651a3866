"""``magnitude`` (row, block): a numeric value's absolute value exceeds ``magnitude_factor`` x the reference's
largest one (a unit or scaling error: cannot be real)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from kaizen._fields import setting
from kaizen.data.checks._base import CheckResult, DataCheck, ReferenceProfile, extreme, far, floats, num, result

if TYPE_CHECKING:
    import pandas as pd

    from kaizen.data.checks import ChecksSpec


@dataclass(frozen=True)
class Settings:
    magnitude_factor: float = setting(1000.0, lo=1, lo_open=True,
                                      doc="a value is impossible beyond this many times the reference's largest "
                                          "absolute value")


def run(frame: pd.DataFrame, p: ReferenceProfile, spec: ChecksSpec) -> list[CheckResult]:
    out = []
    for c, rng in p.ranges.items():
        if c not in frame.columns:
            continue
        v = floats(frame[c])
        bad = far(v, rng, spec.magnitude_factor)
        if bad.any():
            ext = extreme(v, bad)
            out.append(result("magnitude", c, spec, bad.sum(),
                              f"{int(bad.sum())} of {len(v)} rows outside the reference range "
                              f"[{num(rng.min)}, {num(rng.max)}] by more than {spec.magnitude_factor:g}x "
                              f"(extreme {num(ext)})",
                              bad, batch_rows=len(v), reference_min=rng.min, reference_max=rng.max,
                              factor=spec.magnitude_factor, extreme=ext))
    return out


CHECK = DataCheck("magnitude", order=30, level="row", default="block", run=run, settings=Settings,
                  doc="a numeric value's absolute value exceeds magnitude_factor x the reference's largest one")
