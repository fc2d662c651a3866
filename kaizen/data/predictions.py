"""The value every step passes around: a model's predictions on some rows."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Predictions"]


@dataclass(frozen=True)
class Predictions:
    """``labels``: predicted classes or values; ``scores``: P(positive) or None."""

    labels: np.ndarray
    scores: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.labels)
