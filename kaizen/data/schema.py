"""The raw-column schema a policy's model works on, inferred from the reference set.

The reference file fixes the contract: which columns are features, which of
them are categorical, and of what kind each is. Every production batch and
the golden set are checked against it (:func:`check_frame`): a batch with
missing or extra columns, wrong dtypes, no rows or no parsable timestamp is
reported and left out, never half-used.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

__all__ = ["Schema", "infer_schema", "check_frame"]


@dataclass(frozen=True)
class Schema:
    """Column roles. ``features`` is ``numerical + categorical`` in reference order. ``keys``: the columns that
    join the rows to their related tables (``[[data.related]] parent_column``): a model is given them with the
    features (and the timestamp, the rows' cutoff times), and every batch must carry them."""

    features: tuple[str, ...]
    numerical: tuple[str, ...]
    categorical: tuple[str, ...]
    target: str
    timestamp: str | None = None
    prediction: str = "prediction"
    ignored: tuple[str, ...] = ()
    keys: tuple[str, ...] = ()

    @property
    def known_columns(self) -> set[str]:
        cols = set(self.features) | {self.target, self.prediction} | set(self.ignored) | set(self.keys)
        if self.timestamp:
            cols.add(self.timestamp)
        return cols

    @property
    def inputs(self) -> tuple[str, ...]:
        """The columns a model is given: the features and, with related tables, their keys and the timestamp."""
        if not self.keys:
            return self.features
        return tuple(dict.fromkeys([*self.features, *self.keys, *([self.timestamp] if self.timestamp else [])]))


def _is_categorical(s: pd.Series) -> bool:
    return not (pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s))


def infer_schema(reference: pd.DataFrame, *, target: str, timestamp: str | None = None,
                 prediction: str = "prediction", ignored: tuple[str, ...] = (), keys: tuple[str, ...] = ()) -> Schema:
    """Feature roles from the reference frame (numeric dtypes are numerical, the rest categorical); ``keys`` are
    the related tables' key columns (a key that is not ignored is a feature too)."""
    skip = {target, prediction, *ignored} | ({timestamp} if timestamp else set())
    features = [c for c in reference.columns if c not in skip]
    categorical = tuple(c for c in features if _is_categorical(reference[c]))
    numerical = tuple(c for c in features if c not in categorical)
    return Schema(features=tuple(features), numerical=numerical, categorical=categorical,
                  target=target, timestamp=timestamp, prediction=prediction, ignored=tuple(ignored),
                  keys=tuple(keys))


def check_frame(df: pd.DataFrame, schema: Schema, *, require_target: bool = False) -> list[str]:
    """Every way ``df`` breaks the schema, as readable problems (empty list: fine)."""
    problems: list[str] = []
    if len(df) == 0:
        problems.append("has no rows")
    missing = [c for c in dict.fromkeys([*schema.features, *schema.keys]) if c not in df.columns]
    if schema.timestamp and schema.timestamp not in df.columns:
        missing.append(schema.timestamp)
    if require_target and schema.target not in df.columns:
        missing.append(schema.target)
    if missing:
        problems.append(f"is missing column(s) {', '.join(map(repr, missing))}")
    extra = [c for c in df.columns if c not in schema.known_columns]
    if extra:
        problems.append(f"has unexpected column(s) {', '.join(map(repr, extra))}")
    for c in schema.numerical:
        if c in df.columns and len(df) and df[c].isna().all():
            continue  # no value of a wrong kind: the all_null value check (kaizen/data/checks.py) judges it
        if c in df.columns and not pd.api.types.is_numeric_dtype(df[c]):
            bad = df[c][pd.to_numeric(df[c], errors="coerce").isna() & df[c].notna()]
            sample = ", ".join(repr(v) for v in bad.head(3).tolist())
            problems.append(f"column {c!r} must be numeric; got dtype {df[c].dtype} (values like {sample})")
        elif c in df.columns and pd.api.types.is_bool_dtype(df[c]):
            problems.append(f"column {c!r} must be numeric; got dtype bool")
    if schema.target in df.columns and len(df):
        t = df[schema.target]
        if t.notna().any() and not pd.api.types.is_numeric_dtype(t) and not _is_categorical(t):
            problems.append(f"target {schema.target!r} has dtype {t.dtype}")
    if schema.timestamp and schema.timestamp in df.columns and len(df):
        ts = pd.to_datetime(df[schema.timestamp], errors="coerce", utc=True)
        if ts.isna().any():
            problems.append(f"column {schema.timestamp!r} has {int(ts.isna().sum())} value(s) that are not timestamps")
    return problems
