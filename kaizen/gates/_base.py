"""The gate contract: one small check per gate, one result type.

A gate reads :class:`Evidence` (champion and challenger predictions on the
same rows) and the policy's ``[gates]`` thresholds, and returns a
:class:`GateResult` with the numbers behind its verdict. A gate module declares
everything else about its gate on its class: its place in the suite (``order``),
when the policy turns it on (:meth:`Gate.enabled`), the ``[gates]`` settings it adds
(``settings``: a dataclass of :func:`kaizen._fields.setting` fields) and the tasks it
can judge (``tasks``, with ``switch`` the setting that turns it on). Gates never load
models, touch the registry or change anything: they are functions of their
evidence, so each is tested on hand-made predictions. Two gates call the
loaded challenger the evidence carries: latency times its ``predict``,
behaviour scores altered copies of the holdout.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from kaizen.data.predictions import Predictions
from kaizen.policy import Policy

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Evidence", "Gate", "GateResult", "Labelled", "Scorer"]


@dataclass(frozen=True)
class Labelled:
    """One labelled set and both models' predictions on exactly its rows."""

    name: str
    y: np.ndarray
    champion: Predictions | None
    challenger: Predictions


@runtime_checkable
class Scorer(Protocol):
    """What the latency and behaviour gates call: a loaded model (:class:`kaizen.registry.models.LoadedModel`)."""

    def predict(self, frame: pd.DataFrame) -> Predictions: ...


@dataclass(frozen=True)
class Evidence:
    """Everything the gates may look at.

    The optional fields are filled by :func:`kaizen.gates.judge.judge`; a gate that needs one that
    is missing fails and says so (it never passes unmeasured). ``holdout_frame`` is the holdout's
    raw rows (every column, row ``i`` is ``holdout.y[i]``), ``holdout_inputs`` the columns the models
    were given; ``challenger_model`` is the loaded challenger; ``challenger_bytes`` the size of its
    registered files; ``seed`` seeds every resampling.
    """

    policy: Policy
    holdout: Labelled
    golden: Labelled | None = None
    classes: tuple[Any, ...] = ()           # labels seen in training (classification)
    target_range: tuple[float, float] | None = None   # min/max of the training target (regression)
    holdout_frame: pd.DataFrame | None = None
    holdout_inputs: pd.DataFrame | None = None
    challenger_model: Scorer | None = None
    challenger_bytes: int | None = None
    seed: int = 0


@dataclass(frozen=True)
class GateResult:
    name: str
    passed: bool
    message: str
    numbers: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "message": self.message, "numbers": dict(self.numbers)}


class Gate(ABC):
    """One regression test a challenger must pass. Subclasses set ``name`` and ``order``; a gate is stateless.

    ``order``: gates run in increasing order (a rejection lists the failures in that order);
    ``settings``: the ``[gates]`` settings this gate adds to :class:`kaizen.policy.GateSpec` (None: it reads
    shared ones only); ``tasks``: the tasks it can judge (None: every task), ``switch``: the setting that turns
    it on, named when a policy of another task sets it.
    """

    name: ClassVar[str] = ""
    order: ClassVar[int] = 0
    settings: ClassVar[type | None] = None
    tasks: ClassVar[tuple[str, ...] | None] = None
    switch: ClassVar[str] = ""

    def enabled(self, gates: Any) -> bool:
        """Whether the policy's ``[gates]`` (a :class:`kaizen.policy.GateSpec`) turn this gate on; always, unless
        overridden."""
        return True

    @abstractmethod
    def check(self, evidence: Evidence) -> GateResult:
        """Judge the evidence; never raise for a failing challenger, return ``passed=False``."""

    def result(self, passed: bool, message: str, **numbers: Any) -> GateResult:
        return GateResult(self.name, bool(passed), message, numbers)

    def holdout_scores(self, evidence: Evidence) -> tuple[float, float] | GateResult:
        """(champion, challenger) metric on the holdout rows, or the failing result when they cannot be compared."""
        import math

        from kaizen.metrics import score

        h, spec = evidence.holdout, evidence.policy.model
        if h.champion is None:
            return self.result(False, "no champion predictions to compare with", rows=len(h.y))
        champ = score(spec.metric, h.y, h.champion.labels, h.champion.scores, pos_label=spec.positive_label)
        chall = score(spec.metric, h.y, h.challenger.labels, h.challenger.scores, pos_label=spec.positive_label)
        if math.isnan(champ) or math.isnan(chall):
            return self.result(False, f"{spec.metric} is undefined on the {len(h.y)} holdout rows",
                               rows=len(h.y), champion=champ, challenger=chall)
        return champ, chall
