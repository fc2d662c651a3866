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

__all__ = ["read_related", "related_frames", "spec_table"]


def read_related(path: str | Path, *, name: str, columns: Iterable[str | None] = ()) -> pd.DataFrame:
    """Related table ``name`` from ``path``; :class:`DataError` names the file and every missing column of
    ``columns`` (the key, index and time index the policy named; None entries are skipped)."""
    df = read_table(Path(path))
    missing = [c for c in columns if c is not None and c not in df.columns]
    if missing:
        raise DataError(f"{path}: related table {name!r} is missing column(s) {missing!r} "
                        f"(it has {list(df.columns)[:20]!r})")
    return df


def spec_table(spec: Any, at: str) -> tuple[pd.DataFrame | None, list[str]]:
    """The table of ``[[data.related]]`` spec ``spec`` (:class:`kaizen.policy.RelatedSpec`) read from its path, and
    the problems that stop it being used, each naming ``at`` (the policy file and ``data.related[i]``), the field
    and its value: a path that cannot be read (then no frame), a key, index or time index that is not a column."""
    try:
        df = read_table(Path(spec.path))
    except DataError as exc:
        reason = str(exc).removeprefix(f"{spec.path}: ")
        return None, [f"{at}.path must be a readable Parquet or CSV file; got {str(spec.path)!r} ({reason})"]
    fields = (("child_column" if spec.child_column else "parent_column", spec.key), ("index", spec.index),
              ("time_index", spec.time_index))
    return df, [f"{at}.{key} must be a column of {str(spec.path)!r}; got {column!r} (it has "
                f"{list(df.columns)[:20]!r})" for key, column in fields if column is not None and column not in df]


def related_frames(specs: Iterable[Any], given: Mapping[str, pd.DataFrame] | None = None, *,
                   policy_path: str | Path | None = None) -> dict[str, pd.DataFrame]:
    """Every table of ``specs`` (:class:`kaizen.policy.RelatedSpec`, in the policy's order) as a frame, by name:
    ``given[name]`` when the caller passed it, else read from the spec's path; :class:`DataError` names the policy
    file (``policy_path``), the field and its value (:func:`spec_table`)."""
    given = dict(given or {})
    out = {}
    for i, s in enumerate(specs):
        if s.name in given:
            out[s.name] = given[s.name]
            continue
        df, problems = spec_table(s, f"{policy_path}: data.related[{i}]" if policy_path else f"data.related[{i}]")
        if problems:
            raise DataError("; ".join(problems))
        out[s.name] = df
    return out
