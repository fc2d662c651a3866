"""The one interface every data source implements (files now, SQL later)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import pandas as pd

__all__ = ["Batch", "Source"]


@dataclass(frozen=True)
class Batch:
    """One production batch: its name (file name, or a key) and its rows, or why it could not be read."""

    name: str
    frame: pd.DataFrame | None
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.frame is not None and not self.problems


class Source(ABC):
    """Where one policy's data lives.

    Implementations must be cheap to construct (no I/O in ``__init__``) and
    read-only: a source never changes the data it reads.
    """

    @abstractmethod
    def reference(self) -> pd.DataFrame:
        """The champion's training data; raises DataError if unusable."""

    @abstractmethod
    def golden(self) -> pd.DataFrame | None:
        """The trusted labelled set, or None when the policy has none."""

    @abstractmethod
    def batch_names(self) -> list[str]:
        """Production batch names, oldest first."""

    @abstractmethod
    def read_batch(self, name: str) -> Batch:
        """One batch; read failures are returned as problems, never raised."""

    def label_names(self) -> list[str]:
        """Label files that have arrived (``data.labels = "separate"``), in the order they apply (a later
        file's label for an id wins); a source without label files has none."""
        return []

    def read_labels(self, name: str) -> Batch:
        """One label file as a :class:`Batch`; read failures are returned as problems, never raised."""
        return Batch(name, None, (f"{type(self).__name__} has no label files",))
