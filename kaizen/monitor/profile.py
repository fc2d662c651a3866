"""The reference side of drift, prepared once per champion reference and kept in a small LRU.

What is cached, honestly: the reference rows the monitor compares (a seeded,
time-stratified sample when the reference is longer than ``[monitor] max_rows``:
:func:`sample_index`), cut into
one cleaned column each (±inf as missing, missing dropped: exactly what
Evidently's ``ValueDrift`` hands its stattest), with each column's kind.
What is not: every statistic is still computed by Evidently's stattest
function on both sides, each cycle. Evidently's functions take the two raw
columns, so a reference-only quantity (the reference std that normalises
``wasserstein``) is recomputed inside them (about 10 µs); caching it would
mean computing the statistic outside Evidently. ``psi``, ``jensenshannon``
and ``kl_div`` bin numerical columns on reference and current values
together (Sturges edges over both), so their bins cannot be cached at all.
The reference predictions are not cached here either: the same reference
rows serve successive champions, whose predictions differ.

:class:`ReferenceCache` is thread-safe (the service runs cycles on worker
threads). Profiles are immutable once built; :meth:`ReferenceProfile.column`
hands out shallow copies, because some Evidently stattests drop missing
values in place.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import pandas as pd

from kaizen.data.predictions import Predictions
from kaizen.data.schema import Schema

__all__ = ["REFERENCE_PROFILES", "SAMPLING", "ReferenceCache", "ReferenceProfile", "clean", "profile_reference",
           "sample_index", "take"]

#: Independent random streams of one seeded monitoring pass (see :func:`sample_index`).
REFERENCE_STREAM, CURRENT_STREAM, LABELLED_STREAM = 0, 1, 2
#: How :func:`sample_index` draws its rows, as the record names it.
SAMPLING = "time-stratified: one row drawn from each of max_rows equal blocks of consecutive rows (time order)"


@dataclass(frozen=True)
class ReferenceProfile:
    """The reference rows of one monitoring reference, ready for Evidently's stattests."""

    key: str | None
    #: rows of the reference frame as given (before sampling)
    rows: int
    #: positions of the sampled rows, sorted; None when every row is used
    index: np.ndarray | None
    #: feature -> its non-missing, finite-or-categorical values
    columns: Mapping[str, pd.Series]
    #: feature -> "numerical" or "categorical"
    kinds: Mapping[str, str]

    @property
    def sampled(self) -> bool:
        return self.index is not None

    def column(self, name: str) -> pd.Series:
        return self.columns[name].copy(deep=False)

    def predictions(self, preds: Predictions) -> Predictions:
        """``preds`` (one per reference row) cut to the profile's rows."""
        if len(preds) != self.rows:
            raise ValueError(f"The 'reference_predictions' parameter of run_monitor must have one entry per row "
                             f"of reference ({self.rows}). Got {len(preds)} instead.")
        return preds if self.index is None else take(preds, self.index)


def profile_reference(reference: pd.DataFrame, schema: Schema, *, max_rows: int | None, seed: int,
                      key: str | None = None) -> ReferenceProfile:
    """Sample (seeded) and clean the reference's feature columns once."""
    index = sample_index(len(reference), max_rows, seed, REFERENCE_STREAM)
    frame = reference if index is None else reference.iloc[index]
    numerical = set(schema.numerical)
    columns = {c: clean(frame[c]) for c in schema.features}
    kinds = {c: "numerical" if c in numerical else "categorical" for c in schema.features}
    return ReferenceProfile(key=key, rows=len(reference), index=index, columns=MappingProxyType(columns),
                            kinds=MappingProxyType(kinds))


class ReferenceCache:
    """At most ``maxsize`` profiles, least recently used evicted first.

    The caller's ``key`` names the reference rows (e.g. the champion run's training-rows
    artifact, or the reference file with its size and mtime); the schema's columns, the row
    count, ``max_rows`` and ``seed`` are added to it, so a changed frame under an unchanged
    key is rebuilt as long as its length or columns changed. Same key, same rows: that is
    the caller's promise.
    """

    def __init__(self, maxsize: int = 8) -> None:
        if isinstance(maxsize, bool) or not isinstance(maxsize, int) or maxsize < 1:
            raise ValueError(f"The 'maxsize' parameter of ReferenceCache must be a positive integer. "
                             f"Got {maxsize!r} instead.")
        self.maxsize = maxsize
        self._lock = threading.Lock()
        self._items: OrderedDict[tuple[object, ...], ReferenceProfile] = OrderedDict()

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def get(self, key: str, reference: pd.DataFrame, schema: Schema, *, max_rows: int | None,
            seed: int) -> tuple[ReferenceProfile, bool]:
        """The profile for ``key`` and whether it came from the cache (built and stored if not)."""
        full = (key, schema.features, schema.numerical, len(reference), max_rows, seed)
        with self._lock:
            hit = self._items.get(full)
            if hit is not None:
                self._items.move_to_end(full)
                return hit, True
        built = profile_reference(reference, schema, max_rows=max_rows, seed=seed, key=key)
        with self._lock:
            self._items[full] = built
            self._items.move_to_end(full)
            while len(self._items) > self.maxsize:
                self._items.popitem(last=False)
        return built, False

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


#: The process's cache, used by ``run_monitor`` when it is given a ``reference_key`` and no cache.
REFERENCE_PROFILES = ReferenceCache()


def sample_index(n: int, max_rows: int | None, seed: int, stream: int) -> np.ndarray | None:
    """Sorted positions of ``max_rows`` of ``n`` rows, stratified by time; None when all fit.

    The rows are in time order (a window's batches oldest first, the reference as it was
    trained on), so the sample is drawn by row order: the ``n`` rows are cut into ``max_rows``
    blocks of consecutive rows (``floor(n / max_rows)`` or one more each) and one row is drawn
    uniformly from each block. Every stretch of time is therefore represented in proportion to
    its rows (a stretch of ``k`` rows holds ``k * max_rows / n`` sampled rows, give or take 2),
    where a simple random sample of the same size may miss or overweight a short burst (the
    newest batch of a long window). Each side has its own stream
    (``default_rng([seed, stream])``), so the reference sample does not depend on the window
    and can be cached; the same seed gives the same rows. :data:`SAMPLING` names the method in
    the record.
    """
    if max_rows is None or n <= max_rows:
        return None
    rng = np.random.default_rng([seed, stream])
    edges = np.arange(max_rows + 1, dtype=np.int64) * n // max_rows
    return edges[:-1] + (rng.random(max_rows) * np.diff(edges)).astype(np.int64)


def clean(values: pd.Series) -> pd.Series:
    """What Evidently's ``ValueDrift`` compares: ±inf treated as missing, missing dropped.

    The same values, index and dtype as ``values.replace([-np.inf, np.inf], np.nan).dropna()``
    (the general path), computed with one mask for float columns and for object columns that
    hold only strings, which is about 4 times faster on a sampled window.
    """
    dtype = values.dtype
    if isinstance(dtype, np.dtype):
        if dtype.kind in "iub":  # no missing value is possible
            return values.copy(deep=False)
        arr = values.to_numpy()
        if dtype.kind == "f":
            keep = np.isfinite(arr)
            return values.copy(deep=False) if keep.all() else values[keep]
        if dtype.kind == "O":
            keep = ~pd.isna(arr)
            kept = arr if keep.all() else arr[keep]
            if pd.api.types.infer_dtype(kept, skipna=False) in ("string", "empty"):
                return values.copy(deep=False) if len(kept) == len(arr) else values[keep]
    return values.replace([-np.inf, np.inf], np.nan).dropna()


def take(p: Predictions, idx: np.ndarray) -> Predictions:
    return Predictions(np.asarray(p.labels)[idx], None if p.scores is None else np.asarray(p.scores)[idx])
