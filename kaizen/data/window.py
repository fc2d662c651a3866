"""The cycle's view of the data: reference, current window, labelled history, rejected batches."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from kaizen.data.files import FileSource
from kaizen.data.schema import Schema, check_frame, infer_schema
from kaizen.data.source import Batch, Source
from kaizen.errors import DataError
from kaizen.policy import Policy

__all__ = ["Window", "load_reference", "load_window", "source_for"]


@dataclass(frozen=True)
class Window:
    """What one cycle looks at.

    ``current`` is the rows of the newest ``data.window_batches`` valid
    batches; ``history`` the rows of every earlier valid batch; both in time
    order (the timestamp column if the policy names one, else file names).
    ``rejected`` lists every batch that failed its checks and why: a bad
    batch is left out, it never blocks the batches after it.
    """

    schema: Schema
    reference: pd.DataFrame
    golden: pd.DataFrame | None
    current: pd.DataFrame
    history: pd.DataFrame
    batches: tuple[str, ...]
    rejected: tuple[tuple[str, tuple[str, ...]], ...]
    newest_batch: str | None

    @property
    def labelled(self) -> pd.DataFrame:
        return self.current[self.current[self.schema.target].notna()] if self.schema.target in self.current \
            else self.current.iloc[0:0]

    def summary(self) -> dict:
        return {
            "batches": list(self.batches),
            "rows": int(len(self.current)),
            "labelled_rows": int(len(self.labelled)),
            "history_rows": int(len(self.history)),
            "reference_rows": int(len(self.reference)),
            "golden_rows": int(len(self.golden)) if self.golden is not None else None,
            "rejected_batches": [{"batch": n, "problems": list(p)} for n, p in self.rejected],
        }


def source_for(policy: Policy) -> Source:
    return FileSource(policy.data.reference, policy.data.production, policy.data.golden)


def _time_sorted(df: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    if schema.timestamp and schema.timestamp in df.columns and len(df):
        df = df.assign(**{schema.timestamp: pd.to_datetime(df[schema.timestamp], utc=True)})
        df = df.sort_values(schema.timestamp, kind="stable")
    return df.reset_index(drop=True)


def _with_target(df: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    if schema.target not in df.columns:
        df = df.assign(**{schema.target: pd.Series([pd.NA] * len(df), index=df.index, dtype="object")})
    return df


def _concat(frames: list[pd.DataFrame], schema: Schema, like: pd.DataFrame) -> pd.DataFrame:
    cols = [c for c in like.columns]
    if not frames:
        return like.iloc[0:0][cols]
    out = pd.concat([f.reindex(columns=cols) for f in frames], ignore_index=True)
    return _time_sorted(out, schema)


def load_reference(policy: Policy, source: Source | None = None
                   ) -> tuple[Schema, pd.DataFrame, pd.DataFrame | None]:
    """The schema, the (time-ordered, labelled) reference set and the golden set; DataError if unusable."""
    source = source or source_for(policy)
    d = policy.data
    reference = source.reference()
    target = policy.model.target
    if target not in reference.columns:
        raise DataError(f"{policy.data.reference}: the reference set has no target column {target!r}")
    if reference[target].isna().all():
        raise DataError(f"{policy.data.reference}: the target column {target!r} has no labels")
    schema = infer_schema(reference, target=target, timestamp=d.timestamp_column,
                          prediction=d.prediction_column, ignored=d.ignore_columns)
    ref_problems = check_frame(reference, schema, require_target=True)
    if ref_problems:
        raise DataError(f"{policy.data.reference}: the reference set " + "; ".join(ref_problems))
    reference = _time_sorted(reference.dropna(subset=[target]), schema)

    golden = source.golden()
    if golden is not None:
        problems = check_frame(golden, schema, require_target=True)
        if not problems and golden[target].isna().any():
            problems.append(f"has {int(golden[target].isna().sum())} row(s) without a label")
        if problems:
            raise DataError(f"{policy.data.golden}: the golden set " + "; ".join(problems))
    return schema, reference, golden


def load_window(policy: Policy, source: Source | None = None) -> Window:
    """Read and check everything one cycle needs; DataError when the reference or golden set is unusable."""
    source = source or source_for(policy)
    d = policy.data
    target = policy.model.target
    schema, reference, golden = load_reference(policy, source)
    batches: list[Batch] = []
    for name in source.batch_names():
        b = source.read_batch(name)
        if b.frame is not None and not b.problems:
            problems = check_frame(b.frame, schema)
            b = Batch(name, b.frame if not problems else None, tuple(problems))
        batches.append(b)
    good = [b for b in batches if b.ok]
    if schema.timestamp:
        good.sort(key=lambda b: (pd.to_datetime(b.frame[schema.timestamp], utc=True).min(), b.name))
    newest = batches[-1].name if batches else None
    window_part = good[-d.window_batches:]
    earlier = good[: len(good) - len(window_part)]
    rejected = tuple((b.name, b.problems) for b in batches if not b.ok)
    columns = list(dict.fromkeys([*schema.features, target, *(c for c in (schema.timestamp,) if c),
                                  *(c for c in (schema.prediction,))]))
    like = pd.DataFrame(columns=columns)
    current = _concat([_with_target(b.frame, schema) for b in window_part], schema, like)
    history = _concat([_with_target(b.frame, schema) for b in earlier], schema, like)
    return Window(schema=schema, reference=reference, golden=golden, current=current, history=history,
                  batches=tuple(b.name for b in window_part), rejected=rejected, newest_batch=newest)
