"""Related tables (``[[data.related]]``): read whole, checked for the columns the policy names.

A related table is one Parquet or CSV file (SQL tables are a later addition behind the same function). It is
read when a challenger is built and, by the packaged model, each time it scores (so new related rows count as
they arrive); the model records the path and a caller may name another location
(:meth:`kaizen.challenger.model.Predictor.predict`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from kaizen.data.files import read_table
from kaizen.errors import DataError

__all__ = ["read_related", "related_frames"]


def read_related(path: str | Path, *, name: str, columns: Iterable[str | None] = ()) -> pd.DataFrame:
    """Related table ``name`` from ``path``; :class:`DataError` names the file and every missing column of
    ``columns`` (the key, index and time index the policy named; None entries are skipped)."""
    df = read_table(Path(path))
    missing = [c for c in columns if c is not None and c not in df.columns]
    if missing:
        raise DataError(f"{path}: related table {name!r} is missing column(s) {missing!r} "
                        f"(it has {list(df.columns)[:20]!r})")
    return df


def related_frames(specs: Iterable[Any], given: Mapping[str, pd.DataFrame] | None = None) -> dict[str, pd.DataFrame]:
    """Every table of ``specs`` (:class:`kaizen.policy.RelatedSpec`) as a frame, by name: ``given[name]`` when the
    caller passed it, else read from the spec's path."""
    given = dict(given or {})
    out = {}
    for s in specs:
        out[s.name] = given[s.name] if s.name in given else read_related(
            s.path, name=s.name, columns=(s.key, s.index, s.time_index))
    return out
