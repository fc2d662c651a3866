"""What ``kaizen policy tune`` searches: the policy's trigger, window, holdout and ladder settings.

Each :class:`Knob` is one policy setting with the range the study samples. A knob is searched
only when its setting exists on the policy's spec classes at run time (settings a newer Kaizen
adds join by name, older ones simply are not there), when it is not switched off (``false`` in the
file stays off) and, for a detector's own settings, when that detector is on. Every range is
clipped to the setting's declared bounds (:func:`kaizen._fields.setting`) and widened to hold the
policy's own value, so the policy as written is always a point of the space.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from kaizen._fields import Setting, settings_of
from kaizen.policy import Policy

__all__ = ["CANDIDATES", "Knob", "search_space", "values_of"]


@dataclass(frozen=True)
class Knob:
    """One searched setting: ``section.key``, its kind and range (``low``/``high``, or ``choices``)."""

    section: str
    key: str
    kind: str                     # "float", "int", "bool" or "choice"
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple[Any, ...] = ()
    #: searched only when this other setting of the same section is on (not None)
    needs: str | None = None
    #: the policy's own value (set by :func:`search_space`); a trial that samples it keeps it exactly
    value: Any = None

    @property
    def name(self) -> str:
        return f"{self.section}.{self.key}"

    def describe(self) -> dict[str, Any]:
        if self.kind in ("bool", "choice"):
            return {"kind": self.kind, "choices": list(self.choices)}
        return {"kind": self.kind, "low": self.low, "high": self.high, "log": self.log}

    def suggest(self, trial: Any) -> Any:
        """The trial's value: sampled, then (floats) rounded to 3 significant digits, inside the range."""
        if self.kind in ("bool", "choice"):
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.kind == "int":
            return int(trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log))
        v = float(trial.suggest_float(self.name, float(self.low), float(self.high), log=self.log))
        if v == self.value:
            return self.value
        return min(max(_round(v), float(self.low)), float(self.high))


#: Every setting the study may tune, with its preferred range (before clipping and widening). Settings that do
#: not exist on the policy at run time are left out.
CANDIDATES: tuple[Knob, ...] = (
    Knob("trigger", "performance_drop", "float", 0.005, 0.08),
    Knob("trigger", "performance_drop_se", "float", 1.0, 4.0),
    Knob("trigger", "consecutive", "int", 1, 4),
    Knob("trigger", "immediate_factor", "float", 1.0, 4.0),
    Knob("trigger", "cooldown_batches", "int", 0, 4),
    Knob("trigger", "drift_share", "float", 0.1, 0.8),
    Knob("trigger", "sequential_threshold", "float", 10.0, 200.0, log=True, needs="sequential"),
    Knob("trigger", "sequential_delta", "float", 0.01, 0.2, log=True, needs="sequential"),
    Knob("data", "window_batches", "int", 1, 4),
    Knob("gates", "holdout_fraction", "float", 0.2, 0.7),
    Knob("gates", "min_holdout_rows", "int", 20, 500, log=True),
    Knob("gates", "max_holdout_batches", "int", 1, 5),
    Knob("build", "strategy", "choice"),
    Knob("build", "ladder_trials", "int", 2, 12),
    Knob("build", "min_refit_rows", "int", 50, 2000, log=True),
    Knob("prequential", "enabled", "bool", choices=(False, True)),
    Knob("prequential", "windows", "int", 2, 12),
    Knob("prequential", "confidence", "float", 0.8, 0.99),
    Knob("prequential", "min_improvement", "float", 0.0, 0.02),
)


def _round(v: float) -> float:
    """``v`` to 3 significant digits (a value a person can read in the written file)."""
    if v == 0 or not math.isfinite(v):
        return v
    return round(v, 2 - int(math.floor(math.log10(abs(v)))))


def _declared(spec: Any, key: str) -> Setting | None:
    return next((s for f, s in settings_of(type(spec)) if f.name == key), None)


def _fit(knob: Knob, s: Setting, value: Any) -> Knob | None:
    """``knob`` clipped to the declared bounds of ``s`` and widened to hold the policy's ``value``."""
    if knob.kind == "bool":
        return dataclasses.replace(knob, value=value) if isinstance(value, bool) else None
    if knob.kind == "choice":
        choices = tuple(s.choices or ())
        return dataclasses.replace(knob, choices=choices, value=value) if len(choices) > 1 and value in choices \
            else None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    low, high = float(knob.low), float(knob.high)  # type: ignore[arg-type]
    step = 1.0 if knob.kind == "int" else 0.0
    if s.lo is not None:
        floor = float(s.lo) + (step or 1e-6 * max(1.0, abs(high))) if s.lo_open else float(s.lo)
        low = max(low, floor)
    if s.hi is not None:
        high = min(high, float(s.hi))
    low, high = min(low, float(value)), max(high, float(value))
    if high <= low:
        return None
    log = knob.log and low > 0
    if knob.kind == "int":
        return dataclasses.replace(knob, low=int(math.ceil(low)), high=int(math.floor(high)), log=log, value=value)
    return dataclasses.replace(knob, low=low, high=high, log=log, value=float(value))


def search_space(policy: Policy) -> list[Knob]:
    """The knobs searched for ``policy``: every candidate whose setting it has, switched on, in its bounds."""
    out = []
    for knob in CANDIDATES:
        spec = getattr(policy, knob.section, None)
        if spec is None or not dataclasses.is_dataclass(spec):
            continue
        s = _declared(spec, knob.key)
        if s is None:
            continue
        if knob.needs is not None and getattr(spec, knob.needs, None) is None:
            continue
        value = getattr(spec, knob.key)
        if value is None:  # switched off in the file: it stays off
            continue
        fitted = _fit(knob, s, value)
        if fitted is not None:
            out.append(fitted)
    return out


def values_of(policy: Policy, space: list[Knob]) -> dict[str, Any]:
    """The policy's own value of every knob, by name."""
    return {k.name: getattr(getattr(policy, k.section), k.key) for k in space}
