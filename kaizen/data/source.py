"""The one interface every data source implements: files (:mod:`kaizen.data.files`) and SQL tables
(:mod:`kaizen.data.sql`)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
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
    read-only: a source never changes the data it reads. A source may hold a
    connection once used: :meth:`close` releases it (whoever made the source
    closes it). One source serves one cycle on one thread.

    A batch that cannot be read is a :class:`Batch` with its problems (the window
    rejects it and goes on); a store that cannot be reached at all (a missing
    folder, a database that refuses the connection) raises :class:`DataError`,
    so a cycle fails instead of judging an older window.
    """

    @abstractmethod
    def reference(self) -> pd.DataFrame:
        """The champion's training data; raises DataError if unusable."""

    @abstractmethod
    def golden(self) -> pd.DataFrame | None:
        """The trusted labelled set, or None when the policy has none."""

    @abstractmethod
    def batch_names(self) -> list[str]:
        """Every production batch name, oldest first (may cost a walk over the whole store)."""

    def newest_batches(self) -> Iterator[str]:
        """Production batch names, newest first, produced lazily: the window stops asking once it holds what it
        needs, so a source that finds each next batch with a query (SQL) reads no older batch than that."""
        return reversed(self.batch_names())

    @abstractmethod
    def read_batch(self, name: str) -> Batch:
        """One batch; read failures are returned as problems, never raised."""

    def describe(self, part: str) -> str:
        """Where ``part`` ("reference", "golden", "production" or "labels") lives, for messages: a path, or a table
        and its database (never a password)."""
        return f"{type(self).__name__} {part}"

    def close(self) -> None:
        """Release what the source holds (a database connection); it may be used again afterwards."""
        return None  # a source of files holds nothing

    def label_names(self) -> list[str]:
        """Label files that have arrived (``data.labels = "separate"``), in the order they apply (a later
        file's label for an id wins); a source without label files has none."""
        return []

    def read_labels(self, name: str) -> Batch:
        """One label file as a :class:`Batch`; read failures are returned as problems, never raised."""
        return Batch(name, None, (f"{type(self).__name__} has no label files",))
