"""The trigger family's contract: what a rule reads, what it returns, what the decision holds.

A :class:`Rule` reads the policy and one :class:`TriggerInputs` (immutable, built once per cycle)
and returns one :class:`RuleResult` (value, threshold, verdict, message, numbers), or None when the
policy switches it off. Rules never load models, touch the registry or write: they are functions
of their inputs, each tested on hand-made monitor results and records.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from kaizen.ledger import Record
from kaizen.past import PERFORMANCE, Past
from kaizen.policy import Policy

if TYPE_CHECKING:
    from kaizen.data.predictions import Predictions

__all__ = ["DRIFT_SIGNALS", "LABELLED_SIGNALS", "PERFORMANCE", "Decision", "Rule", "RuleResult", "TriggerInputs",
           "finite"]

#: unlabelled (or label-distribution) evidence: discounted while labelled performance shows no drop, never an exemption
DRIFT_SIGNALS = ("drift_share", "prediction_drift", "estimated_drop", "target_drift")
#: the signals computed from the window's labels (``explained`` when only flagged rows carry them)
LABELLED_SIGNALS = (PERFORMANCE, "sequential", "prequential")


def finite(x: Any) -> bool:
    return isinstance(x, (int, float, np.number)) and not isinstance(x, bool) and math.isfinite(x)


@dataclass(frozen=True)
class TriggerInputs:
    """Everything the trigger family looks at. Immutable; build one per cycle.

    ``labelled_y`` / ``labelled_pred``: the targets of the window's labelled rows and the champion's
    predictions on exactly those rows (None: the performance threshold is the fixed floor).
    ``excluded``: a mask over those labelled rows that the data-trust checks flagged (None: no
    screen ran); whether the champion broke is judged without them, ``excluded_why`` says by
    which checks. ``history``: this policy's earlier promotion-log records, oldest first (None:
    unknown, so hysteresis and cooldown are not checked); records of other policies are ignored.
    ``seed`` seeds the bootstrap of the standard error. ``spent``: the CPU seconds the policy booked
    on ``day`` so far, read only when a budget is set (a callable, so quiet cycles of a policy
    without a budget never read the log for it). ``shadow``: the version being evaluated in shadow
    (``promotion.mode = "shadow"``), if any. ``champion``: the serving version (the sequential
    test's state belongs to it). ``labelled_batches``: the batch of each labelled row (None: unknown,
    every row counts as new). ``prequential``: the standing challenger's accumulated advantage
    (:func:`kaizen.cycle.prequential.accumulate`), None when it was not scored.
    """

    monitor: Any
    baseline: float | None
    labelled_y: np.ndarray | None = None
    labelled_pred: Predictions | None = None
    history: Sequence[Record] | None = None
    seed: int = 0
    excluded: np.ndarray | None = None
    excluded_why: str = ""
    day: str | None = None
    spent: Callable[[], float] | None = None
    shadow: str | None = None
    champion: str | None = None
    labelled_batches: np.ndarray | None = None
    prequential: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if (self.labelled_y is None) != (self.labelled_pred is None):
            raise ValueError("The 'labelled_y' and 'labelled_pred' parameters of TriggerInputs must be given "
                             "together. Got only one of them.")
        if self.labelled_y is not None and len(self.labelled_y) != len(self.labelled_pred.labels):
            raise ValueError(f"The 'labelled_pred' parameter of TriggerInputs must have one prediction per "
                             f"labelled row ({len(self.labelled_y)}). Got {len(self.labelled_pred.labels)} instead.")
        if self.excluded is not None and (self.labelled_y is None or len(self.excluded) != len(self.labelled_y)):
            raise ValueError("The 'excluded' parameter of TriggerInputs must be a mask over the labelled rows "
                             f"({0 if self.labelled_y is None else len(self.labelled_y)}). Got "
                             f"{len(self.excluded)} entries instead.")

    def past(self, policy: Policy) -> Past | None:
        return None if self.history is None else Past(self.history, policy.name)


@dataclass(frozen=True)
class RuleResult:
    rule: str
    fired: bool                        # signals: fired on this window alone; guards: holds
    message: str
    value: float | None = None
    threshold: float | None = None
    verdict: str = ""                  # see kaizen.monitor.rules; "" reads as fired/quiet
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.verdict:
            object.__setattr__(self, "verdict", "fired" if self.fired else "quiet")

    @property
    def blocks(self) -> bool:
        return self.verdict == "blocks"

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "fired": self.fired, "verdict": self.verdict, "value": self.value,
                "threshold": self.threshold, "message": self.message, "details": dict(self.details)}


@dataclass(frozen=True)
class Decision:
    """The trigger's verdict on one window: act (``improve``) or not (``skip``), with the reasons in order."""

    action: str                       # "improve" or "skip"
    reasons: tuple[str, ...]          # the decisive reason first
    signals: tuple[RuleResult, ...]
    guards: tuple[RuleResult, ...]
    triggered: bool = False           # the signals asked to improve (a guard may still block)
    combine: str = "any"
    rebaseline: float | None = None   # the new baseline the cycle must record, if reset now
    rebaseline_reason: str | None = None
    #: False: the window was too small to judge (``trigger.min_rows``); its signals were not evaluated and
    #: the record holds none, so it is not a window for hysteresis, cooldown or any other count
    judged: bool = True
    #: the ladder's rungs this decision allows (None: the policy's; a scheduled refit: ``("refit",)``)
    rungs: tuple[str, ...] | None = None
    schedule: RuleResult | None = None

    @property
    def improve(self) -> bool:
        return self.action == "improve"

    @property
    def stops(self) -> tuple[str, ...]:
        """The reasons of the guards that block a triggered decision ("cannot improve: ..."), in order."""
        if not self.triggered:
            return ()
        return tuple(f"cannot improve: {g.message}" for g in self.guards if g.blocks)

    @property
    def performance(self) -> RuleResult | None:
        return next((s for s in self.signals if s.rule == PERFORMANCE), None)

    @property
    def decisive(self) -> bool:
        """A performance drop at least ``immediate_factor`` × its threshold, judged without flagged rows."""
        p = self.performance
        return bool(p is not None and p.verdict == "fired" and p.details.get("decisive"))

    @property
    def broke(self) -> bool:
        """The champion's performance drop counts on this window (judged without the rows trust checks flagged)."""
        p = self.performance
        return p is not None and p.verdict == "fired"

    @property
    def labelled_evidence(self) -> tuple[str, ...]:
        """The signals computed from labels that count on this window: the champion broke (``performance_drop``),
        its loss rose across windows (``sequential``), or the standing challenger beats it (``prequential``).
        Whichever of them lets a challenger through, the suspicious rows must not have produced it
        (:func:`kaizen.monitor.rules.act.ambiguity`)."""
        return tuple(s.rule for s in self.signals if s.rule in LABELLED_SIGNALS and s.verdict == "fired")

    @property
    def explained(self) -> bool:
        """The champion's metric fell on this window, but only because of rows the trust checks flagged."""
        return any(s.verdict == "explained" for s in self.signals if s.rule in LABELLED_SIGNALS)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"action": self.action, "triggered": self.triggered, "combine": self.combine,
                               "reasons": list(self.reasons)}
        if self.judged:
            out["signals"] = [r.to_dict() for r in self.signals]
        else:
            out["judged"] = False
        out.update(guards=[r.to_dict() for r in self.guards], rebaseline=self.rebaseline,
                   rebaseline_reason=self.rebaseline_reason)
        if self.schedule is not None:
            out["schedule"] = self.schedule.to_dict()
            out["scheduled"] = self.rungs == ("refit",) and self.improve
        return out


class Rule(ABC):
    """One trigger rule. Subclasses set ``name`` (the record's ``rule``).

    A rule joins the trigger family by declaring ``role`` (``"signal"`` or ``"guard"``) and ``order`` (signals
    are evaluated and recorded, guards give their reasons, in increasing order); :mod:`kaizen.monitor.rules`
    finds it in its module. ``settings``: a dataclass of :func:`kaizen._fields.setting` fields the rule adds to
    ``[trigger]`` (:class:`kaizen.policy.TriggerSpec`); a rule with settings is off until the policy sets them.
    """

    name: ClassVar[str] = ""
    role: ClassVar[str] = ""
    order: ClassVar[int] = 0
    settings: ClassVar[type | None] = None

    @abstractmethod
    def evaluate(self, policy: Policy, inputs: TriggerInputs) -> RuleResult | None:
        """None when the rule is switched off in the policy."""


def guard(ok: bool) -> str:
    return "holds" if ok else "blocks"
