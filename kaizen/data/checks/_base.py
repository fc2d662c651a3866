"""The data-check contract: a declaration (:class:`DataCheck`), one result type, the reference profile.

A check module declares one :class:`DataCheck`: its name, its place in the report (``order``),
its level (``"row"``: it can point at the failing rows, ``"batch"``: it judges a column as a
whole), whether a failure is a data incident (a column corrupted upstream), its default action,
the ``[data.checks]`` thresholds it declares (a small dataclass of :func:`kaizen._fields.setting`
fields) and the function that runs it. A check is a function of its inputs: it reads a batch, the
:class:`ReferenceProfile` built once from the reference set and the policy's :class:`ChecksSpec`
(every action and threshold), and returns one :class:`CheckResult` per failing column.

Only numpy is imported here at module level; pandas loads when a check runs (the policy reader
imports every check module to learn its settings).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np

from kaizen._fields import setting
from kaizen.policy import CLASSIFICATION_TASKS

if TYPE_CHECKING:
    import pandas as pd

    from kaizen.data.checks import ChecksSpec
    from kaizen.data.incidents import ReferenceShapes
    from kaizen.data.schema import Schema

__all__ = ["CHECK_ACTIONS", "CLASSIFICATION", "LEVELS", "CheckResult", "DataCheck", "NumericRange",
           "RangeSettings", "ReferenceProfile"]

#: the tasks whose target is a class label
CLASSIFICATION = CLASSIFICATION_TASKS
#: What a data check does when a batch fails it (``[data.checks]``).
CHECK_ACTIONS = ("block", "warn", "off")
#: ``"row"``: a failure names rows (dropped from history); ``"batch"``: it judges a column as a whole
LEVELS = ("row", "batch")
STRICTNESS = {"off": 0, "warn": 1, "block": 2}


@dataclass(frozen=True)
class DataCheck:
    """One value check, as its module declares it. Immutable; the registry sorts by ``order``."""

    name: str
    order: int
    level: str
    default: str
    run: Callable[[pd.DataFrame, ReferenceProfile, ChecksSpec], list[CheckResult]] = field(repr=False)
    incident: bool = False
    #: a dataclass of :func:`kaizen._fields.setting` fields: the ``[data.checks]`` thresholds it declares
    settings: type | None = None
    #: when it fails, in one line (``action`` of ``[data.checks]`` takes its name)
    doc: str = ""

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise ValueError(f"The 'level' parameter of DataCheck {self.name!r} must be one of {LEVELS}. "
                             f"Got {self.level!r} instead.")
        if self.default not in CHECK_ACTIONS:
            raise ValueError(f"The 'default' parameter of DataCheck {self.name!r} must be one of {CHECK_ACTIONS}. "
                             f"Got {self.default!r} instead.")
        if self.incident and self.level != "batch":
            raise ValueError(f"DataCheck {self.name!r}: an incident judges a column as a whole (level 'batch'). "
                             f"Got {self.level!r} instead.")


@dataclass(frozen=True)
class RangeSettings:
    """Shared by ``out_of_range`` and ``label_range``."""

    range_tolerance: float = setting(3.0, lo=0, doc="out_of_range / label_range: allowed = reference [min, max] "
                                                    "widened by this many ranges each side")


@dataclass(frozen=True)
class NumericRange:
    """The finite values of one numeric reference column: ``[min, max]``."""

    min: float
    max: float

    @property
    def spread(self) -> float:
        """``max - min``; for a constant column its absolute value (or 1 for a constant 0)."""
        width = self.max - self.min
        return width if width > 0 else (self.magnitude or 1.0)

    @property
    def magnitude(self) -> float:
        """The largest absolute value."""
        return max(abs(self.min), abs(self.max))

    def widened(self, tolerance: float) -> tuple[float, float]:
        return self.min - tolerance * self.spread, self.max + tolerance * self.spread


def key(value: Any) -> Any:
    """Compare categories and labels by value: 1, 1.0 and numpy's 1 are one class; the rest as text."""
    if isinstance(value, (bool, int, float, np.bool_, np.integer, np.floating)):
        return float(value)
    return str(value)


def floats(s: pd.Series) -> np.ndarray:
    import pandas as pd

    return pd.to_numeric(s, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)


def range_of(s: pd.Series) -> NumericRange | None:
    v = floats(s)
    v = v[np.isfinite(v)]
    return NumericRange(float(v.min()), float(v.max())) if len(v) else None


@dataclass(frozen=True)
class ReferenceProfile:
    """What the checks compare a batch with, computed once from the reference set.

    Immutable once built; :meth:`build` is the only constructor callers need.
    """

    schema: Schema
    task: str
    ranges: Mapping[str, NumericRange]           # numerical features with a finite value
    categories: Mapping[str, frozenset[Any]]     # categorical, non-date features -> known values (by key)
    null_rates: Mapping[str, float]              # every feature
    classes: tuple[Any, ...] = ()                # classification: the reference's labels
    target_range: NumericRange | None = None     # regression: the reference target's range
    shapes: ReferenceShapes | None = None        # what the incident checks compare with

    @classmethod
    def build(cls, reference: pd.DataFrame, schema: Schema, task: str) -> ReferenceProfile:
        import pandas as pd

        from kaizen.data.incidents import ReferenceShapes

        ranges = {c: r for c in schema.numerical if (r := range_of(reference[c])) is not None}
        categories = {c: frozenset(key(v) for v in pd.unique(reference[c].dropna())) for c in schema.categorical
                      if not pd.api.types.is_datetime64_any_dtype(reference[c])}  # dates are not categories
        null_rates = {c: float(reference[c].isna().mean()) if len(reference) else 0.0 for c in schema.features}
        target = reference[schema.target].dropna()
        classes: tuple[Any, ...] = ()
        target_range = None
        if task in CLASSIFICATION:
            classes = tuple(sorted(pd.unique(target).tolist(), key=lambda v: (str(type(v)), v)))
        else:
            target_range = range_of(target)
        shapes = ReferenceShapes.build(reference, schema.numerical, list(categories))
        return cls(schema=schema, task=task, ranges=MappingProxyType(ranges),
                   categories=MappingProxyType(categories), null_rates=MappingProxyType(null_rates),
                   classes=classes, target_range=target_range, shapes=shapes)

    @property
    def class_keys(self) -> frozenset[Any]:
        return frozenset(key(v) for v in self.classes)


@dataclass(frozen=True)
class CheckResult:
    """One check failing on one column of one batch. ``mask`` marks the failing rows (row-level only)."""

    check: str
    column: str
    action: str                  # "block" or "warn"
    rows: int                    # rows concerned
    detail: str                  # the numbers, in words
    numbers: Mapping[str, Any] = field(default_factory=dict)
    mask: np.ndarray | None = field(default=None, compare=False, repr=False)

    @property
    def blocks(self) -> bool:
        return self.action == "block"

    @property
    def row_level(self) -> bool:
        from kaizen.data.checks import ROW_LEVEL

        return self.check in ROW_LEVEL

    @property
    def incident(self) -> bool:
        """A column corrupted upstream (a sign flip, a unit change, ...), not a suspicious value."""
        from kaizen.data.checks import INCIDENT_CHECKS

        return self.check in INCIDENT_CHECKS

    @property
    def message(self) -> str:
        return f"check {self.check!r} ({self.action}) on column {self.column!r}: {self.detail}"

    def __str__(self) -> str:
        return self.message

    def to_dict(self) -> dict[str, Any]:
        return {"check": self.check, "column": self.column, "action": self.action, "rows": self.rows,
                "message": self.message, "numbers": dict(self.numbers)}


# --------------------------------------------------------------------------- helpers the checks share

def num(x: float) -> str:
    return f"{x:.4g}"


def extreme(v: np.ndarray, mask: np.ndarray) -> float:
    bad = v[mask]
    return float(bad[np.argmax(np.abs(bad))])


def listing(values: pd.Series, limit: int = 5) -> str:
    counts = values.value_counts()
    shown = ", ".join(f"{v!r} ({n})" for v, n in counts.head(limit).items())
    return shown + (f" and {len(counts) - limit} more" if len(counts) > limit else "")


def result(check: str, column: str, spec: ChecksSpec, rows: int, detail: str,
           mask: np.ndarray | None = None, **numbers: Any) -> CheckResult:
    return CheckResult(check, column, getattr(spec, check), int(rows), detail, MappingProxyType(numbers), mask)


def numeric_targets(frame: pd.DataFrame, p: ReferenceProfile) -> list[str]:
    """The numerical features of ``frame``, and a regression target."""
    cols = [c for c in p.schema.numerical if c in frame.columns]
    if p.task not in CLASSIFICATION and p.schema.target in frame.columns:
        cols.append(p.schema.target)
    return cols


def far(v: np.ndarray, rng: NumericRange, factor: float) -> np.ndarray:
    """Values more than ``factor`` times the reference's largest absolute value (the ``magnitude`` rule)."""
    if rng.magnitude == 0:  # a constant 0 column gives no scale to be orders of magnitude away from
        return np.zeros(len(v), dtype=bool)
    return np.isfinite(v) & (np.abs(v) > factor * rng.magnitude)


def unknown(s: pd.Series, known: frozenset[Any]) -> np.ndarray:
    """Rows of ``s`` holding a value not in ``known`` (compared by :func:`key`)."""
    import pandas as pd

    values = [u for u in pd.unique(s.dropna()) if key(u) not in known]
    return s.isin(values).to_numpy(dtype=bool) if values else np.zeros(len(s), dtype=bool)
