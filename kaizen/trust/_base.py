"""The trust-check contract: one small check per module, one finding type.

A :class:`TrustCheck` reads :class:`TrustInputs` — the *new* labelled rows a challenger is
about to train or be judged on (production rows, in time order), the reference rows the
champion was built from, the champion's predictions on the new rows and the policy's
``[trust]`` thresholds — and returns one :class:`TrustFinding` with the numbers behind it.

Contract (every check, tested by the shared suite in tests/trust/):

* pure: a check never changes its inputs, loads a model, touches the registry or writes;
* deterministic: the same inputs and ``seed`` give the same finding;
* honest about rows: ``finding.rows`` is a subset of ``inputs.new.index`` (the caller's
  labels, never positions), empty when nothing is suspicious;
* cheap: well under a CPU second at 5,000 new rows (no search, no featuretools);
* quiet when it cannot judge: too few rows is a finding with no rows and a message saying so.

What happens to the rows (warn, drop, block) is not the check's business: the runner
(:func:`kaizen.trust.check_training_rows`) applies the policy's action.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from kaizen.data.predictions import Predictions
from kaizen.data.schema import Schema
from kaizen.policy import TrustSpec

__all__ = ["Excess", "TrustCheck", "TrustFinding", "TrustInputs", "describe_span", "encode", "encoded_sources",
           "excess", "positive", "rate_z", "spans"]

CLASSIFICATION = "binary_classification"
#: how many of a finding's rows (index labels) the record lists, so a person can find them
FIRST_ROWS = 20


@dataclass(frozen=True)
class TrustInputs:
    """What a check may look at. ``new`` is labelled and in time order (oldest first); ``predictions``
    are the champion's on exactly ``new``'s rows, in the same order; ``reference_predictions`` on the
    reference's rows (None when the caller has none)."""

    new: pd.DataFrame
    reference: pd.DataFrame
    schema: Schema
    task: str
    positive_label: Any
    predictions: Predictions
    spec: TrustSpec
    seed: int
    reference_predictions: Predictions | None = None

    @property
    def classification(self) -> bool:
        """Binary classification: the checks that read P(positive) judge these labels only."""
        return self.task == CLASSIFICATION

    @property
    def unjudged(self) -> str:
        """Why a check that reads P(positive) does not judge this task's labels (for its finding); label_noise
        judges multiclass labels its own way, label_shift does not."""
        if self.task == "multiclass_classification":
            return ("not judged: multiclass targets (this check reads P(positive) of a binary classifier; "
                    "see docs/policies.md)")
        return "not judged: regression targets (this check judges classification labels; see docs/policies.md)"


@dataclass(frozen=True)
class TrustFinding:
    """One check's verdict on the new rows: the suspicious rows (index labels of the new rows; empty when
    nothing is suspicious), the action the policy gives the check, its numbers and one readable line."""

    check: str
    action: str
    rows: pd.Index
    message: str
    numbers: Mapping[str, Any] = field(default_factory=dict)

    @property
    def fired(self) -> bool:
        return len(self.rows) > 0

    def to_dict(self) -> dict[str, Any]:
        return {"check": self.check, "action": self.action, "fired": self.fired, "rows": int(len(self.rows)),
                "first_rows": [_plain(r) for r in self.rows[:FIRST_ROWS]], "message": self.message,
                "numbers": dict(self.numbers)}


class TrustCheck(ABC):
    """One data-trust check. Subclasses set ``name`` (the ``[trust]`` key of its action)."""

    name: ClassVar[str] = ""

    @abstractmethod
    def check(self, inputs: TrustInputs) -> TrustFinding:
        """Judge the new rows; never raise for suspicious data, return a finding with its rows."""

    def finding(self, inputs: TrustInputs, flagged: pd.Index | None, message: str, /, **numbers: Any) -> TrustFinding:
        """This check's finding: ``flagged`` rows (None: none), the policy's action for it, the message, numbers."""
        flagged = inputs.new.index[:0] if flagged is None else flagged
        return TrustFinding(self.name, getattr(inputs.spec, self.name), flagged, message,
                            {k: _plain(v) for k, v in numbers.items()})


# -- helpers shared by the checks -------------------------------------------------------------------

def spans(n: int, min_rows: int) -> list[tuple[int, int]]:
    """The stretches of the new rows (``[start, stop)``, oldest first) each check judges on its own.

    All ``n`` rows, then the halves, quarters, ... down to ``min_rows``, cut from the newest end:
    ``[n - m, n)``, ``[n - 2m, n - m)``, ... The newest batch is judged within a stretch of about
    its own size (not diluted by a long history); a slow poisoning adds up in the longer
    stretches. Empty when ``n < min_rows``.
    """
    out: list[tuple[int, int]] = []
    m = n
    while m >= min_rows:
        out.extend((n - (j + 1) * m, n - j * m) for j in range(n // m))
        m //= 2
    return out


def describe_span(span: tuple[int, int], n: int) -> str:
    start, stop = span
    if stop - start == n:
        return f"the {n} new rows"
    if stop == n:
        return f"the newest {stop - start} new rows"
    return f"new rows {start}-{stop - 1} (of {n}, oldest first)"


def rate_z(count: float, rows: int, rate: float) -> float:
    """Standard errors by which ``count`` of ``rows`` exceeds ``rate`` (binomial, rate floored at 1/(2 rows))."""
    rate = min(max(rate, 0.5 / max(rows, 1)), 1 - 0.5 / max(rows, 1))
    return (count - rows * rate) / math.sqrt(rows * rate * (1 - rate))


@dataclass(frozen=True)
class Excess:
    """One stretch of the new rows and how far its count of flagged rows exceeds the expected rate."""

    start: int
    stop: int
    count: int
    z: float

    @property
    def rows(self) -> int:
        return self.stop - self.start


def excess(flags: np.ndarray, rate: float, min_rows: int) -> list[Excess]:
    """Every stretch of :func:`spans` with its flagged count and binomial z against ``rate``, strongest first."""
    out = [Excess(a, b, int(flags[a:b].sum()), rate_z(flags[a:b].sum(), b - a, rate)) for a, b in spans(len(flags),
                                                                                                          min_rows)]
    return sorted(out, key=lambda e: -e.z)


def positive(inputs: TrustInputs, frame: pd.DataFrame) -> np.ndarray:
    """Classification: 1.0 where the label is the positive class; regression: the target as float."""
    y = frame[inputs.schema.target]
    if inputs.classification:
        return (y == inputs.positive_label).to_numpy(float)
    return pd.to_numeric(y, errors="coerce").to_numpy(float)


def encode(reference: pd.DataFrame, frames: list[pd.DataFrame], schema: Schema) -> list[np.ndarray]:
    """Numeric features standardised by the reference (nulls at its median), categoricals one-hot on its levels.

    The same columns for every frame, so a model or a forest fit on one can score the others.
    """
    blocks: list[list[np.ndarray]] = [[] for _ in frames]
    for c in schema.numerical:
        ref = pd.to_numeric(reference[c], errors="coerce").astype(float)
        med = float(ref.median()) if ref.notna().any() else 0.0
        mean = float(ref.mean()) if ref.notna().any() else 0.0
        sd = float(ref.std()) if ref.notna().sum() > 1 else 0.0
        sd = sd if sd > 0 and math.isfinite(sd) else 1.0
        for out, f in zip(blocks, frames, strict=True):
            x = pd.to_numeric(f[c], errors="coerce").astype(float).fillna(med).to_numpy()
            out.append(((x - mean) / sd)[:, None])
    for c in schema.categorical:
        levels = sorted(reference[c].dropna().astype(str).unique())
        for out, f in zip(blocks, frames, strict=True):
            v = f[c].astype(str).to_numpy()
            out.append(np.stack([(v == lv) for lv in levels], axis=1).astype(float) if levels
                       else np.zeros((len(f), 0)))
    return [np.hstack(b) if b else np.zeros((len(f), 0)) for b, f in zip(blocks, frames, strict=True)]


def encoded_sources(reference: pd.DataFrame, schema: Schema) -> np.ndarray:
    """The feature each column of :func:`encode`'s output comes from, in its order."""
    out = list(schema.numerical)
    for c in schema.categorical:
        out.extend([c] * reference[c].dropna().astype(str).nunique())
    return np.array(out, dtype=object)


def _plain(v: Any) -> Any:
    """Numbers as plain JSON values (numpy scalars, NaN as None), rounded for the record."""
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        v = float(v)
        return round(v, 6) if math.isfinite(v) else None
    if isinstance(v, Mapping):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v
