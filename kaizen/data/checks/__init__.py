"""Value checks on production batches, run before anything learns from a batch or is scored on it.

The schema check (:func:`kaizen.data.schema.check_frame`) asks whether a batch has the
right columns and kinds; these checks ask whether its *values* can be real, against a
:class:`ReferenceProfile` computed once from the reference set. Each check returns one
:class:`CheckResult` per failing column, naming the check, the column, the action and
the numbers::

    check 'magnitude' (block) on column 'income': 412 of 412 rows outside the reference
    range [1200, 9.8e+04] by more than 1000x (extreme 9.7e+16)

**One module per check.** Each public module of this package declares one
:class:`~kaizen.data.checks._base.DataCheck` (``infinite.py``, ``magnitude.py``, ...): its name, its
place in the report, its level, whether it is an incident, its default action ("block", "warn" or
"off") and the thresholds it declares. The registry is the folder (:func:`kaizen._plugins.discover`);
:class:`ChecksSpec`, the ``[data.checks]`` table, is assembled from it: one action per check, then
every declared threshold. Adding a check is adding a module. The checks, their defaults and what
each fails on: docs/policies.md (``[data.checks]``) and each module's docstring.

Block by default what cannot be real (an infinity, an unknown class, a column that is
entirely null, values orders of magnitude off, a target far outside anything seen);
warn for what drift or a genuinely new category can produce.

**Incidents.** The checks of ``INCIDENT_CHECKS`` (:mod:`kaizen.data.incidents`) recognise a
column an upstream bug corrupted: its values are the reference's mapped by a sign flip, a unit
change, an offset, a relabelling or a copy, which honest drift does not do. A batch failing one
is rejected whole (newest or history) and listed as an incident (``Window.incidents``): neither
the champion nor a challenger should ever see it.

**Row-level vs batch-level.** A row-level check can point at the rows that fail it
(``CheckResult.mask``): dropping them leaves rows that pass it. A batch-level check is a
property of a column over the whole batch (every value null, too many nulls): there is
no row to drop. The window (:mod:`kaizen.data.window`) uses this: a newest batch (a
candidate for the current window) that fails any blocking check is rejected whole; an
older batch (history) that fails a blocking *batch-level* check is rejected whole, while
rows failing a blocking *row-level* check are dropped and counted, so a check added
later never fails cycles on history that was accepted before it existed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, make_dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

import numpy as np

from kaizen._fields import assemble, setting
from kaizen._plugins import discover
from kaizen.data.checks._base import (
    CHECK_ACTIONS,
    CLASSIFICATION,
    CheckResult,
    DataCheck,
    NumericRange,
    ReferenceProfile,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["CHECKS", "CHECK_ACTIONS", "CLASSIFICATION", "DECLARED", "INCIDENT_CHECKS", "ROW_LEVEL", "CheckResult",
           "ChecksSpec", "DataCheck", "NumericRange", "ReferenceProfile", "drop_failing_rows", "run_checks"]

#: every check's declaration by name, in the order results are reported
DECLARED: Mapping[str, DataCheck] = MappingProxyType({c.name: c for c in sorted(
    discover(__name__, __path__, lambda m: [m.CHECK] if isinstance(getattr(m, "CHECK", None), DataCheck) else []),
    key=lambda c: (c.order, c.name))})
#: every check by name (``check(frame, profile, spec) -> [CheckResult]``), in the order results are reported
CHECKS: Mapping[str, Callable[..., list[CheckResult]]] = MappingProxyType({n: c.run for n, c in DECLARED.items()})
#: Checks whose failures name rows (dropped from history); the others judge a column as a whole.
ROW_LEVEL = frozenset(n for n, c in DECLARED.items() if c.level == "row")
#: Checks that recognise a column corrupted upstream (batch-level): a failing batch is a data incident.
INCIDENT_CHECKS = frozenset(n for n, c in DECLARED.items() if c.incident)


@dataclass(frozen=True)
class _Table:
    """``[data.checks]`` settings no single check owns."""

    max_reference_duplicates: float = setting(0.01, lo=0, hi=1,
                                              doc="exact duplicate rows are dropped from the window and history only "
                                                  "while the reference's own share of exact duplicates is below this "
                                                  "(0: never dropped, only counted)")


@dataclass(frozen=True)
class _Checks:
    """``[data.checks]``: the action of each value check on production batches ("block", "warn" or "off"), then
    the thresholds the checks declare. Assembled from the check modules of :mod:`kaizen.data.checks`; see
    docs/policies.md."""

    @property
    def actions(self) -> dict[str, str]:
        """Check name -> action, for every check, in the order they run."""
        return {name: getattr(self, name) for name in DECLARED}


def _action(c: DataCheck) -> type:
    return make_dataclass(f"{c.name}_action", [(c.name, "str", setting(c.default, choices=CHECK_ACTIONS, doc=c.doc))],
                          frozen=True)


#: ``[data.checks]``: every check's action, then the thresholds the checks declare, then the table's own
ChecksSpec = assemble("ChecksSpec", _Checks,
                      [(f"check {c.name!r}", _action(c)) for c in DECLARED.values()]
                      + [(f"check {c.name!r}", c.settings) for c in DECLARED.values() if c.settings is not None]
                      + [("[data.checks]", _Table)], module=__name__)


def run_checks(frame: pd.DataFrame, profile: ReferenceProfile, spec: ChecksSpec) -> tuple[CheckResult, ...]:
    """Every failing (check, column) of ``frame``; checks set to "off" are not run."""
    if len(frame) == 0:
        return ()
    frame = frame.reset_index(drop=True)
    out: list[CheckResult] = []
    for name, check in CHECKS.items():
        if getattr(spec, name) != "off":
            out.extend(check(frame, profile, spec))
    return tuple(out)


def drop_failing_rows(frame: pd.DataFrame, results: tuple[CheckResult, ...] | list[CheckResult]
                      ) -> pd.DataFrame:
    """``frame`` without the rows any blocking row-level result marks (results from :func:`run_checks`)."""
    drop = np.zeros(len(frame), dtype=bool)
    for r in results:
        if r.blocks and r.row_level and r.mask is not None:
            drop |= r.mask
    return frame.reset_index(drop=True)[~drop] if drop.any() else frame
