"""Helpers for the gate tests: a policy from the base policy plus overrides, hand-made predictions."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kaizen.data.predictions import Predictions
from kaizen.gates import Labelled
from kaizen.policy import Policy, load_policy
from tests.conftest import BASE_POLICY, to_toml


def write_policy(path: Path, overrides: dict[str, dict[str, Any]] | None = None, extra: str = "") -> Path:
    """The base policy with ``overrides`` per section, plus raw TOML ``extra`` (``[[gates.slices]]`` tables)."""
    doc = {k: dict(v) for k, v in BASE_POLICY.items()}
    for section, values in (overrides or {}).items():
        doc.setdefault(section, {}).update(values)
    path.write_text(to_toml(doc) + "\n" + extra)
    return path


@pytest.fixture
def make_policy(tmp_path: Path) -> Callable[..., Policy]:
    def make(overrides: dict[str, dict[str, Any]] | None = None, extra: str = "") -> Policy:
        return load_policy(write_policy(tmp_path / "p.toml", overrides, extra))
    return make


def preds(scores: np.ndarray) -> Predictions:
    """Binary predictions thresholded at 0.5."""
    scores = np.asarray(scores, dtype=float)
    return Predictions((scores >= 0.5).astype(int), scores)


def labelled(y: np.ndarray, champ: np.ndarray | None, chall: np.ndarray, name: str = "holdout") -> Labelled:
    return Labelled(name, np.asarray(y), None if champ is None else preds(champ), preds(chall))


class ColumnModel:
    """A small real model: P(positive) is a logistic of ``weights`` times the named columns.

    ``by_position``: read the columns by position instead of by name (a model that breaks when
    columns are reordered); ``strict``: refuse columns it does not know; ``fail``: raise on predict.
    """

    def __init__(self, weights: dict[str, float], *, by_position: bool = False, strict: bool = False,
                 fail: bool = False) -> None:
        self.weights, self.by_position, self.strict, self.fail = weights, by_position, strict, fail
        self.calls = 0

    def predict(self, frame) -> Predictions:
        self.calls += 1
        if self.fail:
            raise RuntimeError("model file is corrupt")
        unknown = sorted(set(frame.columns) - set(self.weights))
        if self.strict and unknown:
            raise ValueError(f"unexpected columns {unknown}")
        z = np.zeros(len(frame))
        for i, (name, w) in enumerate(self.weights.items()):
            col = frame.iloc[:, i] if self.by_position else frame[name]
            z = z + w * col.to_numpy(dtype=float)
        return preds(1 / (1 + np.exp(-z)))
