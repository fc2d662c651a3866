"""Run the policy's trust checks on the new training rows and apply their actions."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from kaizen.data.predictions import Predictions
from kaizen.data.schema import Schema
from kaizen.policy import Policy
from kaizen.trust._base import TrustCheck, TrustFinding, TrustInputs
from kaizen.trust.duplicates import Duplicates
from kaizen.trust.label_noise import LabelNoise
from kaizen.trust.label_shift import LabelShift
from kaizen.trust.outliers import Outliers

__all__ = ["CHECKS", "TrustResult", "apply_drops", "check_training_rows", "pool_new_rows"]

#: every check, in the order it runs (``kaizen.policy.TRUST_CHECKS``): row-level copies and outliers first,
#: so the label checks judge the rows that remain
CHECKS: tuple[TrustCheck, ...] = (Duplicates(), Outliers(), LabelShift(), LabelNoise())


@dataclass(frozen=True)
class TrustResult:
    """Every check's finding; the new rows to drop (index labels of ``new_rows``); whether the cycle is blocked
    and why (one line per check that fired, blocking ones first)."""

    findings: tuple[TrustFinding, ...]
    drop_index: pd.Index
    blocked: bool
    reasons: list[str]
    new_rows: int = 0
    cpu_seconds: float = 0.0
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def fired(self) -> tuple[TrustFinding, ...]:
        return tuple(f for f in self.findings if f.fired)

    def to_dict(self) -> dict[str, Any]:
        """The record's ``trust`` section."""
        return {"new_rows": self.new_rows, "blocked": self.blocked, "dropped_rows": int(len(self.drop_index)),
                "checks": [f.to_dict() for f in self.findings], "settings": dict(self.settings),
                "cpu_seconds": round(self.cpu_seconds, 3)}


def check_training_rows(policy: Policy, *, new_rows: pd.DataFrame, reference: pd.DataFrame, schema: Schema,
                        champion_predictions_on_new: Predictions, seed: int,
                        champion_predictions_on_reference: Predictions | None = None) -> TrustResult:
    """Judge the new labelled rows a challenger is about to learn from (and be judged on) before it does.

    ``new_rows``: the production rows of the training pool and the holdout, oldest first, with
    features and the target (unlabelled rows are ignored); its index labels name the rows in the
    result (:func:`pool_new_rows` builds it from a cycle's split). ``reference``: the trusted rows
    the new ones are compared with (the policy's reference set, with its target).
    ``champion_predictions_on_new``: the champion's predictions on ``new_rows``, same order.
    ``champion_predictions_on_reference``: its predictions on ``reference``, same order; with them
    ``label_shift`` discounts the champion's own errors by segment (a model that under-predicts
    one contract type on its own training rows is not evidence of poisoning); without them it
    cannot, and its record says so.

    A check reports what it found with the action the policy gives it, whatever the champion's
    performance did: whether a block stands is the cycle's decision (:func:`kaizen.monitor.rules.trust_guard`),
    taken on evidence the flagged rows did not produce.

    Checks run in :data:`CHECKS` order; a check set to ``"drop"`` removes its rows before the next
    check looks. ``blocked`` is true when a check set to ``"block"`` fired. Settings and numbers
    are in :meth:`TrustResult.to_dict` for the record.
    """
    if len(champion_predictions_on_new) != len(new_rows):
        raise ValueError(f"champion_predictions_on_new has {len(champion_predictions_on_new)} rows; "
                         f"new_rows has {len(new_rows)}")
    if champion_predictions_on_reference is not None and len(champion_predictions_on_reference) != len(reference):
        raise ValueError(f"champion_predictions_on_reference has {len(champion_predictions_on_reference)} rows; "
                         f"reference has {len(reference)}")
    if new_rows.index.has_duplicates:
        raise ValueError("new_rows must have a unique index: its labels name the rows to drop")
    start = time.thread_time()
    spec = policy.trust
    keep = new_rows[schema.target].notna().to_numpy()
    new, pred = new_rows[keep], _take(champion_predictions_on_new, keep)
    findings: list[TrustFinding] = []
    dropped: list[pd.Index] = []
    for chk in CHECKS:
        action = getattr(spec, chk.name)
        if action == "off":
            continue
        inputs = TrustInputs(new=new, reference=reference, schema=schema, task=policy.model.task,
                             positive_label=policy.model.positive_label, predictions=pred, spec=spec, seed=seed,
                             reference_predictions=champion_predictions_on_reference)
        found = chk.check(inputs)
        findings.append(found)
        if found.fired and action == "drop":
            dropped.append(found.rows)
            alive = ~new.index.isin(found.rows)
            new, pred = new[alive], _take(pred, alive)
    drop_index = new_rows.index[new_rows.index.isin(dropped[0].append(dropped[1:]))] if dropped \
        else new_rows.index[:0]
    fired = [f for f in findings if f.fired]
    reasons = [_reason(f) for f in fired if f.action == "block"] + [_reason(f) for f in fired if f.action != "block"]
    return TrustResult(findings=tuple(findings), drop_index=drop_index, blocked=any(f.action == "block" for f in fired),
                       reasons=reasons, new_rows=int(keep.sum()), cpu_seconds=time.thread_time() - start,
                       settings=dataclasses.asdict(spec))


def pool_new_rows(train: pd.DataFrame, holdout: pd.DataFrame, reference_rows: int) -> pd.DataFrame:
    """The production rows of a cycle's pool: ``train`` followed by ``holdout`` minus the first ``reference_rows``
    (the reference the pool starts with), indexed by their position in that concatenation."""
    pool = pd.concat([train, holdout], ignore_index=True)
    return pool.iloc[reference_rows:]


def apply_drops(train: pd.DataFrame, holdout: pd.DataFrame, drop_index: pd.Index) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``train`` and ``holdout`` without the rows of ``drop_index`` (positions in their concatenation, as
    :func:`pool_new_rows` indexes them), each re-indexed from 0."""
    at = np.asarray(drop_index, dtype=int)
    n = len(train)
    t = train.drop(train.index[at[at < n]])
    h = holdout.drop(holdout.index[at[at >= n] - n])
    return t.reset_index(drop=True), h.reset_index(drop=True)


def _take(pred: Predictions, mask: np.ndarray) -> Predictions:
    return Predictions(np.asarray(pred.labels)[mask], None if pred.scores is None else np.asarray(pred.scores)[mask])


def _reason(f: TrustFinding) -> str:
    does = {"block": "blocks the cycle", "drop": f"{len(f.rows)} row(s) dropped", "warn": "warning"}[f.action]
    return f"trust check {f.check} ({does}): {f.message}"
