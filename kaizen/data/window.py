"""The cycle's view of the data: reference, current window, bounded labelled history, rejected batches.

Every production batch a cycle reads passes two filters before anything learns from it or
is scored on it: the schema (:func:`~kaizen.data.schema.check_frame`: columns and kinds)
and the value checks of ``[data.checks]`` (:mod:`kaizen.data.checks`: infinities, nulls,
ranges, unknown categories and labels), each against the reference set.

**Current vs history.** Walking the batches newest first, the first ``data.window_batches``
batches that pass the schema and every *blocking* check are the current window; a newer
batch that fails is rejected whole (``Window.rejected``, with the column, the check and
the numbers) and never becomes part of a window. Batches older than the window are history,
judged so that a check added later never breaks cycles on history accepted before it
existed: a blocking *batch-level* check (a column entirely null) still rejects the batch,
but rows failing a blocking *row-level* check (an unknown label, an infinite value, a
target out of range, ...) are dropped and counted (``Window.filtered``) while the rest of
the batch stays. See :mod:`kaizen.data.checks` for which check is which level.

A consequence worth knowing: a batch rejected while it was the newest (say for 37 unknown
labels) becomes history once newer batches arrive, and then its other rows may train a
challenger; its bad rows never do, and the drop is recorded in every cycle that uses it.

**Bounded reading.** History is the newest ``data.max_history_batches`` usable batches
before the window; files older than those are never opened, so a cycle's reading cost does
not grow with the folder. Batches are read newest first in the source's order
(:meth:`~kaizen.data.source.Source.newest_batches`: file-name order for files; for a SQL table,
the newest timestamp of each batch, one query per batch: :mod:`kaizen.data.sql`) until the window
and the history are filled; the batches read are then ordered by their first timestamp when
the policy names a timestamp column (name otherwise) and split into window and history
as above. With a timestamp column whose order disagrees with the file names, the bound is
therefore taken in file-name order.

**Incidents.** A batch rejected by an incident check (:data:`~kaizen.data.checks.INCIDENT_CHECKS`: a
column an upstream bug corrupted, e.g. its sign flipped) is also listed in ``Window.incidents`` with
those checks' messages: it is rejected whole wherever it sits (window or history), so the champion is
never judged on it and no challenger learns from it.

**Exact duplicate rows.** After the batches are chosen, a row of the window or of the history that
repeats an earlier row exactly (every column of the batch file, timestamp and target included; rows
in time order, history before window) is dropped before anything is scored or learned, and counted per
batch (``Window.duplicates``, ``Window.duplicate_rows``): ten copies of one batch are one batch, and a
file delivered twice under two names trains once. Honest data can repeat rows (few coarse columns, no
timestamp), so rows are dropped only while the reference's own share of exact duplicates (on the same
columns) is below ``data.checks.max_reference_duplicates``; otherwise they are counted and kept
(``Window.duplicates_dropped`` is False). A batch whose every row repeats earlier rows stays where it is,
with no rows left.

Warnings (checks set to "warn") never exclude anything; they are kept per batch on
``Window.warnings`` for every batch the cycle uses (window and history) and in
:meth:`Window.summary`.

**Labels that arrive late.** Every cycle re-reads the batches it uses, so a batch file
rewritten with its labels, or a SQL row whose target an ``UPDATE`` filled (``data.labels =
"in_batch"``), is picked up as it is. With
``data.labels = "separate"`` the newest label of each id in the label files is joined onto every
batch read, before the checks (:mod:`kaizen.data.labels`). ``Window.batch_labels`` counts the
labelled rows of each batch used and ``Window.digest`` hashes everything the cycle learns from and
judges on (:func:`content_digest`; with separate label files, every label they hold, so a read
without history still sees labels that arrive for history): it changes when a label arrives or a
loaded file is rewritten, and stays equal while nothing the cycle would use has changed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from kaizen.data.checks import CheckResult, ReferenceProfile, drop_failing_rows, run_checks
from kaizen.data.files import FileSource
from kaizen.data.labels import Labels, read_labels
from kaizen.data.schema import Schema, check_frame, infer_schema
from kaizen.data.source import Batch, Source
from kaizen.errors import DataError
from kaizen.policy import ChecksSpec, DataSpec, Policy

__all__ = ["Window", "load_reference", "load_window", "source_for"]


@dataclass(frozen=True)
class Window:
    """What one cycle looks at.

    ``current`` is the rows of the newest ``data.window_batches`` valid batches; ``history``
    the rows of the ``data.max_history_batches`` valid batches before them, minus rows that
    fail a blocking row-level check; both in time order (the timestamp column if the policy
    names one, else file names). ``rejected`` lists every batch read that failed its checks
    and why (batch name, problems): a bad batch is left out, it never blocks the batches after
    it. ``warnings`` holds (batch name, messages) of the window and history batches that
    passed with warnings; ``filtered`` (batch, check, column, rows dropped) the history rows
    left out. ``incidents`` holds (batch name, messages) of the batches rejected by an incident
    check (also in ``rejected``); ``duplicates`` (batch, rows) the exact duplicate rows of each
    batch used, dropped unless ``duplicates_dropped`` is False.
    """

    schema: Schema
    reference: pd.DataFrame
    golden: pd.DataFrame | None
    current: pd.DataFrame
    history: pd.DataFrame
    batches: tuple[str, ...]
    rejected: tuple[tuple[str, tuple[str, ...]], ...]
    newest_batch: str | None
    warnings: tuple[tuple[str, tuple[str, ...]], ...] = ()
    filtered: tuple[tuple[str, str, str, int], ...] = ()
    history_batches: tuple[str, ...] = ()
    #: rows each history batch contributes to ``history``, aligned with ``history_batches``
    history_sizes: tuple[int, ...] = ()
    #: rows each window batch contributes to ``current``, aligned with ``batches``
    current_sizes: tuple[int, ...] = ()
    checks: ChecksSpec = field(default_factory=ChecksSpec)
    max_history_batches: int = DataSpec.max_history_batches
    #: (batch, labelled rows) of every batch used, history then window, in time order
    batch_labels: tuple[tuple[str, int], ...] = ()
    #: a hash of what the cycle learns from and judges on (see :func:`content_digest`)
    digest: str = ""
    #: how labels arrive (``data.labels``), and with "separate" what the label files gave
    labels_mode: str = "in_batch"
    label_files: Labels | None = None
    #: (batch, messages of its incident checks) of every batch an incident check rejected
    incidents: tuple[tuple[str, tuple[str, ...]], ...] = ()
    #: (batch, rows repeating an earlier row exactly) of every batch used that has any
    duplicates: tuple[tuple[str, int], ...] = ()
    #: whether those rows were dropped: only while the reference is (almost) free of exact duplicates
    duplicates_dropped: bool = True
    #: the reference's own share of exact duplicate rows, on the same columns
    reference_duplicate_share: float = 0.0

    @property
    def duplicate_rows(self) -> int:
        """Exact duplicate rows in the batches used (dropped unless ``duplicates_dropped`` is False)."""
        return sum(n for _, n in self.duplicates)

    @property
    def labelled(self) -> pd.DataFrame:
        return self.current[self.current[self.schema.target].notna()] if self.schema.target in self.current \
            else self.current.iloc[0:0]

    def batch_frames(self) -> list[tuple[str, pd.DataFrame]]:
        """(batch, its rows) of every batch used, history then window, in time order (empty when the sizes are
        unknown: a window built by hand)."""
        out: list[tuple[str, pd.DataFrame]] = []
        for names, sizes, frame in ((self.history_batches, self.history_sizes, self.history),
                                    (self.batches, self.current_sizes, self.current)):
            if len(names) != len(sizes) or sum(sizes) != len(frame):
                return []
            at = 0
            for name, n in zip(names, sizes, strict=True):
                out.append((name, frame.iloc[at:at + n]))
                at += n
        return out

    def summary(self) -> dict:
        return {
            "batches": list(self.batches),
            "rows": int(len(self.current)),
            "labelled_rows": int(len(self.labelled)),
            "history_rows": int(len(self.history)),
            "history_batches": len(self.history_batches),
            "max_history_batches": self.max_history_batches,
            "reference_rows": int(len(self.reference)),
            "golden_rows": int(len(self.golden)) if self.golden is not None else None,
            "rejected_batches": [{"batch": n, "problems": list(p)} for n, p in self.rejected],
            "warnings": [{"batch": n, "messages": list(m)} for n, m in self.warnings],
            "filtered_rows": [{"batch": b, "check": c, "column": col, "rows": n} for b, c, col, n in self.filtered],
            "incidents": [{"batch": n, "messages": list(m)} for n, m in self.incidents],
            "duplicates": [{"batch": n, "rows": k, "dropped": self.duplicates_dropped} for n, k in self.duplicates],
            "duplicate_rows": self.duplicate_rows,
            "reference_duplicate_share": self.reference_duplicate_share,
            "checks": asdict(self.checks),
            "digest": self.digest,
            "batch_labels": dict(self.batch_labels),
            "labels": {"mode": self.labels_mode,
                       **(self.label_files.summary() if self.label_files is not None else {})},
        }


def source_for(policy: Policy) -> Source:
    """The policy's source: a SQL table when it names ``data.production_table``, else files. Cheap (no I/O)."""
    d = policy.data
    if d.production_table is not None:
        from kaizen.data.sql import SqlSource

        return SqlSource.from_spec(d)
    return FileSource(d.reference, d.production, d.golden, d.labels_path if d.labels == "separate" else None)


@contextmanager
def _opened(policy: Policy, source: Source | None) -> Iterator[Source]:
    """``source``, or the policy's own, closed afterwards (a source passed in is its owner's to close)."""
    if source is not None:
        yield source
        return
    own = source_for(policy)
    try:
        yield own
    finally:
        own.close()


def content_digest(parts: list[tuple[str, str, pd.DataFrame]], columns: list[str], target: str,
                   labels: Labels | None = None) -> str:
    """SHA-256 over ``(role, batch name, frame)`` in order: names, row and labelled-row counts, and every
    value of ``columns`` (features, labels, timestamp, prediction); with separate label files, also every
    label they hold (:meth:`Labels.digest`), so a label for a batch the read did not load (a window-only
    read) counts too. Equal inputs give equal digests across processes; a label that arrives, a rewritten
    file or a batch moving from window to history changes it."""
    h = hashlib.sha256()
    if labels is not None:
        h.update(f"labels\0{labels.digest()}\0".encode())
    for role, name, frame in parts:
        f = frame.reindex(columns=columns)
        h.update(f"{role}\0{name}\0{len(f)}\0{int(f[target].notna().sum())}\0".encode())
        h.update(pd.util.hash_pandas_object(f, index=False).to_numpy().tobytes())
    return h.hexdigest()


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
    frames = [f for f in frames if len(f)]
    if not frames:
        return like.iloc[0:0][cols]
    out = pd.concat([f.reindex(columns=cols) for f in frames], ignore_index=True)
    return _time_sorted(out, schema)


def _row_keys(frame: pd.DataFrame, columns: list[str], schema: Schema) -> np.ndarray:
    """One 64-bit hash per row over ``columns`` (missing ones null), values compared as the data means
    them: numbers as floats (1 == 1.0, as CSV and Parquet may disagree), the timestamp as an instant, the
    rest as text; null equals null."""
    f = frame.reindex(columns=columns)
    norm = {}
    for c in columns:
        s = f[c]
        if c == schema.timestamp:
            norm[c] = pd.to_datetime(s, utc=True, errors="coerce")
        elif pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
            norm[c] = s.astype("float64")
        else:
            norm[c] = s.astype(str).where(s.notna(), "\0null")
    return pd.util.hash_pandas_object(pd.DataFrame(norm, index=f.index), index=False).to_numpy()


def _duplicates(frames: list[pd.DataFrame], reference: pd.DataFrame, schema: Schema
                ) -> tuple[list[np.ndarray], float]:
    """For each frame (in order), which of its rows repeat an earlier row of it or of an earlier frame, on every
    column of any of them; and the reference's own share of such rows on the same columns."""
    columns = list(dict.fromkeys(c for f in frames for c in f.columns))
    ref_columns = [c for c in columns if c in reference.columns]
    ref_share = float(pd.Series(_row_keys(reference, ref_columns, schema)).duplicated().mean()) \
        if ref_columns and len(reference) else 0.0
    if not frames:
        return [], ref_share
    repeated = pd.Series(np.concatenate([_row_keys(f, columns, schema) for f in frames])).duplicated().to_numpy()
    bounds = np.cumsum([0, *(len(f) for f in frames)])
    return [repeated[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)], ref_share


def load_reference(policy: Policy, source: Source | None = None
                   ) -> tuple[Schema, pd.DataFrame, pd.DataFrame | None]:
    """The schema, the (time-ordered, labelled) reference set and the golden set; DataError if unusable."""
    with _opened(policy, source) as source:
        return _load_reference(policy, source)


def _load_reference(policy: Policy, source: Source) -> tuple[Schema, pd.DataFrame, pd.DataFrame | None]:
    d = policy.data
    reference = source.reference()
    target = policy.model.target
    where = source.describe("reference")
    if target not in reference.columns:
        raise DataError(f"{where}: the reference set has no target column {target!r}")
    if reference[target].isna().all():
        raise DataError(f"{where}: the target column {target!r} has no labels")
    schema = infer_schema(reference, target=target, timestamp=d.timestamp_column,
                          prediction=d.prediction_column, ignored=d.excluded_columns,
                          keys=tuple(dict.fromkeys(s.parent_column for s in d.related)))
    ref_problems = check_frame(reference, schema, require_target=True)
    if ref_problems:
        raise DataError(f"{where}: the reference set " + "; ".join(ref_problems))
    reference = _time_sorted(reference.dropna(subset=[target]), schema)

    golden = source.golden()
    if golden is not None:
        problems = check_frame(golden, schema, require_target=True)
        if not problems and golden[target].isna().any():
            problems.append(f"has {int(golden[target].isna().sum())} row(s) without a label")
        if problems:
            raise DataError(f"{source.describe('golden')}: the golden set " + "; ".join(problems))
    return schema, reference, golden


@dataclass(frozen=True)
class _Checked:
    """One batch read: its schema problems (``batch.ok``) and its value-check results."""

    batch: Batch
    results: tuple[CheckResult, ...] = ()

    def blocking(self, *, newest: bool) -> list[CheckResult]:
        """What excludes the whole batch: any blocking result if it is a window candidate; in history the
        batch-level ones, or every blocking one when the rows they mark are all the batch has."""
        block = [r for r in self.results if r.blocks]
        if newest or not block:
            return block
        batch_level = [r for r in block if not r.row_level]
        if batch_level or len(drop_failing_rows(self.batch.frame, block)) == 0:
            return batch_level or block
        return []

    @property
    def warnings(self) -> tuple[str, ...]:
        return tuple(r.message for r in self.results if not r.blocks)


def _numeric(frame: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """An entirely null numerical column (read back as object, e.g. from Parquet) becomes float NaN."""
    cast = {c: "float64" for c in schema.numerical
            if c in frame.columns and not pd.api.types.is_numeric_dtype(frame[c])}
    return frame.astype(cast) if cast else frame


def _read(source: Source, name: str, schema: Schema, profile: ReferenceProfile, checks: ChecksSpec,
          labels: Labels | None = None) -> _Checked:
    b = source.read_batch(name)
    if b.frame is not None and not b.problems and labels is not None:  # join the labels, then check as usual
        if labels.id_column in b.frame.columns:
            b = Batch(name, labels.join(b.frame))
        else:
            b = Batch(name, None, (f"is missing the id column {labels.id_column!r} (data.id_column) that label "
                                   "files are joined on",))
    if b.frame is not None and not b.problems:
        problems = check_frame(b.frame, schema)
        b = Batch(name, _numeric(b.frame, schema) if not problems else None, tuple(problems))
    return _Checked(b, run_checks(b.frame, profile, checks) if b.ok else ())


def _read_newest(source: Source, schema: Schema, profile: ReferenceProfile,
                 d: DataSpec, labels: Labels | None = None) -> list[_Checked]:
    """Batches newest first (the source's order) until the window and the history are filled; no older batch is
    asked for."""
    need_window, need_history = d.window_batches, d.max_history_batches
    out: list[_Checked] = []
    names = source.newest_batches()
    while need_window or need_history:
        name = next(names, None)
        if name is None:
            break
        c = _read(source, name, schema, profile, d.checks, labels)
        out.append(c)
        if not c.batch.ok:
            continue
        if need_window:
            if not c.blocking(newest=True):
                need_window -= 1
        elif not c.blocking(newest=False):
            need_history -= 1
    return out


def load_window(policy: Policy, source: Source | None = None) -> Window:
    """Read and check everything one cycle needs; DataError when the reference or golden set is unusable."""
    with _opened(policy, source) as source:
        return _load_window(policy, source)


def _load_window(policy: Policy, source: Source) -> Window:
    d = policy.data
    schema, reference, golden = _load_reference(policy, source)
    profile = ReferenceProfile.build(reference, schema, policy.model.task)
    labels = read_labels(source, d.id_column, profile, d.checks) if d.labels == "separate" else None
    read = _read_newest(source, schema, profile, d, labels)
    names = [c.batch.name for c in reversed(read)]  # the batches read, oldest first

    usable = [c for c in read if c.batch.ok]
    if schema.timestamp:
        usable.sort(key=lambda c: (pd.to_datetime(c.batch.frame[schema.timestamp], utc=True).min(), c.batch.name))
    else:
        usable.sort(key=lambda c: c.batch.name)
    window: list[_Checked] = []
    history: list[_Checked] = []
    problems = {c.batch.name: c.batch.problems for c in read if not c.batch.ok}
    incidents: dict[str, tuple[str, ...]] = {}
    for c in reversed(usable):
        newest = len(window) < d.window_batches
        if not newest and len(history) >= d.max_history_batches:
            break
        block = c.blocking(newest=newest)
        if block:
            problems[c.batch.name] = tuple(r.message for r in block)
            if any(r.incident for r in block):
                incidents[c.batch.name] = tuple(r.message for r in block if r.incident)
        else:
            (window if newest else history).append(c)
    window.reverse()
    history.reverse()

    filtered: list[tuple[str, str, str, int]] = []
    history_frames = []
    for c in history:
        drops = [r for r in c.results if r.blocks and r.row_level]
        filtered += [(c.batch.name, r.check, r.column, r.rows) for r in drops]
        history_frames.append(_with_target(drop_failing_rows(c.batch.frame, drops), schema))
    window_frames = [_with_target(c.batch.frame, schema) for c in window]

    # exact duplicate rows: counted always, dropped while the reference is (almost) free of them
    repeated, ref_share = _duplicates(history_frames + window_frames, reference, schema)
    dropped = ref_share < d.checks.max_reference_duplicates
    duplicates = [(c.batch.name, int(r.sum())) for c, r in zip(history + window, repeated, strict=True) if r.any()]
    if dropped and duplicates:
        kept = [f[~r].reset_index(drop=True) if r.any() else f
                for f, r in zip(history_frames + window_frames, repeated, strict=True)]
        history_frames, window_frames = kept[:len(history)], kept[len(history):]

    target = policy.model.target
    columns = list(dict.fromkeys([*schema.features, *schema.keys, target, *(c for c in (schema.timestamp,) if c),
                                  *(c for c in (schema.prediction,))]))
    like = pd.DataFrame(columns=columns)
    current = _concat(window_frames, schema, like)
    order = {n: i for i, n in enumerate(names)}
    used = sorted(history + window, key=lambda c: order.get(c.batch.name, -1))
    parts = [("history", c.batch.name, f) for c, f in zip(history, history_frames, strict=True)]
    parts += [("window", c.batch.name, f) for c, f in zip(window, window_frames, strict=True)]
    return Window(
        schema=schema, reference=reference, golden=golden, current=current,
        history=_concat(history_frames, schema, like),
        batches=tuple(c.batch.name for c in window),
        rejected=tuple((n, p) for n, p in sorted(problems.items(), key=lambda kv: order.get(kv[0], -1))),
        newest_batch=names[-1] if names else None,
        warnings=tuple((c.batch.name, c.warnings) for c in used if c.warnings),
        filtered=tuple(filtered),
        history_batches=tuple(c.batch.name for c in history),
        history_sizes=tuple(len(f) for f in history_frames),
        current_sizes=tuple(len(f) for f in window_frames),
        checks=d.checks,
        max_history_batches=d.max_history_batches,
        batch_labels=tuple((name, int(f[target].notna().sum())) for _, name, f in parts),
        digest=content_digest(parts, columns, target, labels),
        labels_mode=d.labels,
        label_files=labels,
        incidents=tuple((n, m) for n, m in sorted(incidents.items(), key=lambda kv: order.get(kv[0], -1))),
        duplicates=tuple(duplicates),
        duplicates_dropped=dropped,
        reference_duplicate_share=ref_share,
    )
