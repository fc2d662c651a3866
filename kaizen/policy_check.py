"""What ``kaizen policy validate`` checks beyond the file itself: the data the policy names.

A policy can parse and still be unable to run: the reference file is missing,
lacks the target column, holds one class; a ``[trigger.columns.X]`` names a
column that does not exist, or a drift method that does not fit the column's
kind. Each of these would otherwise surface mid-cycle as a failed cycle.
:func:`check_data` finds them from the files alone, without MLflow, Evidently
or training (it reads the reference and golden files with pandas). With
``data.production_table`` it connects to the database and checks that the tables
exist, that the production table has the timestamp, batch, feature and target
columns, and measures its newest batches (bounded queries, as a cycle reads them).

Every finding is one line, ``FILE: field ...; got ...``, naming the file at
fault (the data file, or the policy file for ``trigger.*`` and for tables, whose
key names the table and its database, the URL's password masked). Three levels:

- ``problems``: the policy cannot run as it is (``kaizen policy validate`` exits 1);
- ``warnings``: it can run, but not usefully yet (no production batch has arrived);
- ``notes``: what the cycle will do that the policy does not say outright (the
  policy-wide drift method swapped for one that fits a column's kind).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kaizen.errors import DataError, PolicyError
from kaizen.policy import Policy

__all__ = ["DataCheck", "check_data", "check_policy_data"]

_SHOWN = 12  # column names listed in a message


@dataclass(frozen=True)
class DataCheck:
    """The findings for one policy, each a full line naming its file."""

    problems: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems


def check_policy_data(policy: Policy) -> list[str]:
    """The problems that stop ``policy`` from running (empty: none found). See :func:`check_data`."""
    return list(check_data(policy).problems)


def check_data(policy: Policy) -> DataCheck:
    """Check the reference, golden and production data and the per-column drift settings of ``policy``."""
    problems: list[str] = []
    warnings: list[str] = []
    notes: list[str] = []
    sql = _sql_source(policy)
    try:
        reference = _reference(policy, sql, problems, warnings)
        schema = None
        if reference is not None:
            from kaizen.data.schema import infer_schema

            d = policy.data
            schema = infer_schema(reference, target=policy.model.target, timestamp=d.timestamp_column,
                                  prediction=d.prediction_column, ignored=d.excluded_columns,
                                  keys=tuple(dict.fromkeys(s.parent_column for s in d.related)))
            _golden(policy, sql, schema, problems)
            _drift_methods(policy, schema, problems, notes)
            _related(policy, reference, problems)
        if sql is None:
            _production(policy, problems, warnings)
        else:
            _production_table(policy, sql, schema, problems, warnings)
    finally:
        if sql is not None:
            sql.close()
    return DataCheck(tuple(problems), tuple(warnings), tuple(notes))


def _sql_source(policy: Policy) -> Any:
    """The policy's :class:`~kaizen.data.sql.SqlSource` (None: its data are files)."""
    if policy.data.production_table is None:
        return None
    from kaizen.data.sql import SqlSource

    return SqlSource.from_spec(policy.data)


# -- the files and tables -------------------------------------------------------------------------

@dataclass(frozen=True)
class _Part:
    """Where one data set is, as a finding names it (``{where}: {key} must ...``): a file, or the policy file
    and a table of its database."""

    where: str
    key: str


def _part(policy: Policy, sql: Any, role: str) -> _Part:
    table = getattr(policy.data, f"{role}_table")
    if table is None:
        return _Part(str(getattr(policy.data, role)), f"data.{role}")
    return _Part(f"{policy.path}: table {table!r} of {sql.database}", f"data.{role}_table")


def _read(policy: Policy, sql: Any, role: str, problems: list[str]) -> Any:
    """The reference or golden set (``role``), or None with the problem that stops it being read."""
    from kaizen.data.files import read_table

    table, part = getattr(policy.data, f"{role}_table"), _part(policy, sql, role)
    try:
        if table is None:
            return read_table(getattr(policy.data, role))
        from kaizen.data.sql import Table

        return sql.whole(Table(table), f"data.{role}_table")
    except DataError as exc:
        reason = str(exc)
        for prefix in (f"{part.where}: ",) if table is None else (f"table {table!r} of {sql.database}: ",
                                                                  f"{sql.database}: "):
            reason = reason[len(prefix):] if reason.startswith(prefix) else reason
        reason = reason.replace(f" ({part.key})", "")
        allowed = "a readable Parquet or CSV file" if table is None else "a readable table or view"
        problems.append(f"{part.where}: {part.key} must be {allowed}; got {reason}")
        return None


def _columns(names: Any) -> str:
    names = [str(c) for c in names]
    shown = ", ".join(map(repr, names[:_SHOWN]))
    return shown + (f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else "") if names else "none"


def _reference(policy: Policy, sql: Any, problems: list[str], warnings: list[str]) -> Any:
    import pandas as pd

    part, m, d = _part(policy, sql, "reference"), policy.model, policy.data
    path, key = part.where, part.key
    df = _read(policy, sql, "reference", problems)
    if df is None:
        return None
    if df.empty or len(df.columns) == 0:
        problems.append(f"{path}: {key} must have rows and columns; got {len(df)} row(s), "
                        f"{len(df.columns)} column(s)")
        return None
    if m.target not in df.columns:
        problems.append(f"{path}: {key} must have the model.target column {m.target!r}; "
                        f"got columns {_columns(df.columns)}")
    if d.timestamp_column and d.timestamp_column not in df.columns:
        problems.append(f"{path}: {key} must have the data.timestamp_column {d.timestamp_column!r}; "
                        f"got columns {_columns(df.columns)}")
    elif d.timestamp_column:
        ts = pd.to_datetime(df[d.timestamp_column], errors="coerce", utc=True)
        if ts.isna().any():
            bad = df[d.timestamp_column][ts.isna()].head(3).tolist()
            problems.append(f"{path}: data.timestamp_column {d.timestamp_column!r} must hold timestamps; got "
                            f"{int(ts.isna().sum())} value(s) that are not, like {', '.join(map(repr, bad))}")
    if m.target in df.columns:
        _target(policy, part, df[m.target], problems)
    missing = [c for c in d.ignore_columns if c not in df.columns]
    if missing:
        warnings.append(f"{path}: data.ignore_columns names column(s) the reference does not have; "
                        f"got {_columns(missing)}")
    features = [c for c in df.columns if c not in {m.target, d.prediction_column, *d.excluded_columns}
                and c != d.timestamp_column]
    if not features:
        problems.append(f"{path}: {key} must have at least one feature column besides the target; "
                        f"got columns {_columns(df.columns)}")
        return None
    return df


def _target(policy: Policy, part: _Part, y: Any, problems: list[str]) -> None:
    import pandas as pd

    path, m = part.where, policy.model
    labelled = y.dropna()
    if labelled.empty:
        problems.append(f"{path}: model.target {m.target!r} must be labelled in the reference; got no labels")
        return
    if m.task == "regression":
        values = pd.to_numeric(labelled, errors="coerce")
        if values.isna().any():
            bad = labelled[values.isna()].head(3).tolist()
            problems.append(f"{path}: model.target {m.target!r} must be numeric for regression; got values like "
                            f"{', '.join(map(repr, bad))}")
        return
    values = pd.unique(labelled).tolist()  # Python scalars: they print as 0, not np.int64(0)
    classes = sorted(map(repr, values))
    if m.task == "multiclass_classification":
        if len(classes) < 3:
            problems.append(f"{path}: model.target {m.target!r} must hold at least 3 classes for {m.task} (use "
                            f"binary_classification for 2); got {len(classes)}: {', '.join(classes)}")
        return
    if len(classes) != 2:
        problems.append(f"{path}: model.target {m.target!r} must hold 2 classes for {m.task}; got "
                        f"{len(classes)}: {', '.join(classes[:10])}")
        return
    if m.positive_label not in values:
        problems.append(f"{path}: model.positive_label must be one of the reference's classes of {m.target!r} "
                        f"({', '.join(classes)}); got {m.positive_label!r}")


def _related(policy: Policy, reference: Any, problems: list[str]) -> None:
    """Each ``[[data.related]]`` table is readable and holds its key, index and time index; the reference rows
    hold its parent column."""
    from kaizen.data.related import spec_table

    for i, s in enumerate(policy.data.related):
        at = f"{policy.path}: data.related[{i}]"
        if s.parent_column not in reference.columns:
            problems.append(f"{at}.parent_column must be a column of the reference set (the rows' key of their "
                            f"related rows); got {s.parent_column!r}")
        table, found = spec_table(s, at)
        problems.extend(found)
        if table is None or found:
            continue
        if s.index is not None and table[s.index].duplicated().any():
            dup = table[s.index][table[s.index].duplicated()]
            problems.append(f"{at}.index must name a column of unique row ids; got {s.index!r} ({len(dup)} repeated "
                            f"value(s), like {dup.head(3).tolist()!r})")
        if s.time_index is not None:
            from kaizen.challenger.features import to_times

            try:
                to_times(table[s.time_index], f"{at}.time_index {s.time_index!r}")
            except ValueError as exc:
                problems.append(str(exc))


def _golden(policy: Policy, sql: Any, schema: Any, problems: list[str]) -> None:
    if policy.data.golden is None and policy.data.golden_table is None:
        return
    part = _part(policy, sql, "golden")
    df = _read(policy, sql, "golden", problems)
    if df is None:
        return
    from kaizen.data.schema import check_frame

    for p in check_frame(df, schema, require_target=True):
        problems.append(f"{part.where}: {part.key} must match the reference's columns and types; it {p}")


def _production(policy: Policy, problems: list[str], warnings: list[str]) -> None:
    from kaizen.data.files import SUFFIXES

    path = policy.data.production
    try:
        if not path.exists():
            problems.append(f"{path}: data.production must be a folder of batch files; got no such folder")
            return
        if not path.is_dir():
            problems.append(f"{path}: data.production must be a folder of batch files; got a file")
            return
        batches = [p for p in path.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES
                   and not p.name.startswith(".")]
    except OSError as exc:
        problems.append(f"{path}: data.production must be a readable folder; got {exc.strerror or exc}")
        return
    if not batches:
        warnings.append(f"{path}: data.production has no batch files ({', '.join(SUFFIXES)}) yet; "
                        "cycles skip until one arrives")
        return
    newest = sorted(batches, key=lambda p: p.name)[-BATCHES_SAMPLED:]
    warnings.extend(f"{path}: {w}" for w in batch_size_problems(policy, [_rows(p) for p in newest]))


def _production_table(policy: Policy, sql: Any, schema: Any, problems: list[str], warnings: list[str]) -> None:
    """The production table: readable, with the timestamp and batch columns, the reference's columns; its newest
    batches measured by bounded queries (as a cycle lists them)."""
    from itertools import islice

    d = policy.data
    where = f"{policy.path}: table {d.production_table!r} of {sql.database}"
    needs = "data.timestamp_column" + (" and data.batch_column" if d.batch_column else "")
    try:
        columns = sql.production_columns()
        newest = list(islice(sql.newest_batches(), BATCHES_SAMPLED))
        sizes = [sql.count_rows(name) for name in newest]
    except DataError as exc:
        reason = str(exc)
        for prefix in (f"table {d.production_table!r} of {sql.database}: ", f"{sql.database}: "):
            reason = reason[len(prefix):] if reason.startswith(prefix) else reason
        problems.append(f"{where}: data.production_table must be a readable table or view with {needs}; "
                        f"got {reason.replace(' (data.production_table)', '')}")
        return
    if schema is not None:
        missing = [c for c in schema.features if c not in columns]
        if missing:
            problems.append(f"{where}: data.production_table must have the reference's feature columns (every "
                            f"batch lacking one is rejected); got no {_columns(missing)}")
        extra = [c for c in columns if c not in schema.known_columns]
        if extra:
            problems.append(f"{where}: data.production_table must have only the reference's columns (every batch "
                            f"is rejected for the others; list them in data.ignore_columns); got {_columns(extra)}")
        if schema.target not in columns and d.labels == "in_batch":
            warnings.append(f"{where}: data.production_table has no model.target column {schema.target!r}: with "
                            "data.labels = 'in_batch' no label can ever arrive")
    if not newest:
        ended = " that has ended" if d.batch_every else ""
        warnings.append(f"{where}: data.production_table has no batch{ended} yet; cycles skip until one arrives")
        return
    warnings.extend(f"{where}: {w}" for w in batch_size_problems(policy, sizes))


#: how many of the newest production batches ``validate`` measures
BATCHES_SAMPLED = 5


def _rows(path: Path) -> int | None:
    """A batch file's row count without reading it all (Parquet metadata; CSV lines)."""
    try:
        if path.suffix.lower() == ".parquet":
            import pyarrow.parquet as pq

            return int(pq.ParquetFile(path).metadata.num_rows)
        with open(path, "rb") as f:
            return max(0, sum(1 for _ in f) - 1)
    except Exception:  # an unreadable batch is the window's business (rejected with its reason)
        return None


def batch_size_problems(policy: Policy, rows_per_batch: list[int | None]) -> list[str]:
    """Why batches of these sizes leave the policy unable to act, even with every row labelled.

    Used by ``kaizen policy validate`` (on the newest production batches) and ``kaizen backtest``
    (on the batches it replays). Empty when the batches are large enough.
    """
    sizes = [r for r in rows_per_batch if r]
    if not sizes:
        return []
    typical = int(sorted(sizes)[len(sizes) // 2])
    t, g = policy.trigger, policy.gates
    window = typical * policy.data.window_batches
    out = []
    if window < t.min_rows:
        out.append(f"batches of about {typical} rows make a window of {window} rows, below trigger.min_rows = "
                   f"{t.min_rows}: the trigger can never act")
    if window < t.min_labelled_rows:
        out.append(f"batches of about {typical} rows give a window of at most {window} labelled rows, below "
                   f"trigger.min_labelled_rows = {t.min_labelled_rows}: the performance signal can never act")
    holdout = max(int(round(window * g.holdout_fraction)),
                  min(g.min_holdout_rows, typical * max(g.max_holdout_batches, policy.data.window_batches)))
    if holdout < g.min_holdout_rows:
        out.append(f"batches of about {typical} rows give a holdout of at most {holdout} rows (gates.holdout_fraction "
                   f"= {g.holdout_fraction}, gates.max_holdout_batches = {g.max_holdout_batches}), below "
                   f"gates.min_holdout_rows = {g.min_holdout_rows}: no challenger can ever be judged; lower "
                   "min_holdout_rows or raise max_holdout_batches or data.window_batches")
    return out


# -- drift methods --------------------------------------------------------------------------------

def _drift_methods(policy: Policy, schema: Any, problems: list[str], notes: list[str]) -> None:
    """Per-column overrides must name a feature and fit its kind; the policy-wide default may fall back."""
    from kaizen.data.schema import Schema
    from kaizen.monitor.methods import plan_columns

    trig = policy.trigger
    for col in trig.columns:
        if col not in schema.features:
            role = ("the target" if col == schema.target else "the timestamp" if col == schema.timestamp
                    else "ignored" if col in schema.ignored else "the prediction" if col == schema.prediction
                    else None)
            got = f"{col!r}, which is {role}" if role else f"{col!r}"
            problems.append(f"{policy.path}: trigger.columns.{col} must name a feature column of the reference "
                            f"({_columns(schema.features)}); got {got}")
    swapped: dict[tuple[str, str], list[str]] = {}
    numerical = set(schema.numerical)
    for col in schema.features:
        one = Schema(features=(col,), numerical=(col,) if col in numerical else (),
                     categorical=() if col in numerical else (col,), target=schema.target,
                     timestamp=schema.timestamp, prediction=schema.prediction, ignored=schema.ignored)
        try:
            planned = plan_columns(one, policy)[0]
        except PolicyError as exc:
            problems.extend(f"{policy.path}: {p}" for p in exc.problems)
            continue
        if col not in trig.columns and planned.drift.method != trig.drift_method:
            swapped.setdefault((planned.kind, planned.drift.method), []).append(col)
    for (kind, method), cols in swapped.items():
        notes.append(f"{policy.path}: trigger.drift_method {trig.drift_method!r} does not apply to {kind} "
                     f"column(s) {_columns(cols)}; {method!r} is used there with the same threshold")
