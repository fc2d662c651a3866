"""The gate contract: one small check per gate, one result type.

A gate reads :class:`Evidence` (champion and challenger predictions on the
same rows) and the policy's ``[gates]`` thresholds, and returns a
:class:`GateResult` with the numbers behind its verdict. Gates never load
models, touch the registry or change anything: they are pure functions of
their evidence, so each is tested on hand-made predictions.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kaizen.models import Predictions
from kaizen.policy import Policy

__all__ = ["Evidence", "Gate", "GateResult", "Labelled"]


@dataclass(frozen=True)
class Labelled:
    """One labelled set and both models' predictions on exactly its rows."""

    name: str
    y: np.ndarray
    champion: Predictions | None
    challenger: Predictions


@dataclass(frozen=True)
class Evidence:
    """Everything the gates may look at."""

    policy: Policy
    holdout: Labelled
    golden: Labelled | None = None
    classes: tuple[Any, ...] = ()           # labels seen in training (classification)
    target_range: tuple[float, float] | None = None   # min/max of the training target (regression)


@dataclass(frozen=True)
class GateResult:
    name: str
    passed: bool
    message: str
    numbers: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "message": self.message, "numbers": dict(self.numbers)}


class Gate(ABC):
    """One regression test a challenger must pass. Subclasses set ``name``."""

    name: str = ""

    @abstractmethod
    def check(self, evidence: Evidence) -> GateResult:
        """Judge the evidence; never raise for a failing challenger, return ``passed=False``."""

    def result(self, passed: bool, message: str, **numbers: Any) -> GateResult:
        return GateResult(self.name, bool(passed), message, numbers)
