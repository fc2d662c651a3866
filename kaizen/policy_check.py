"""What ``kaizen policy validate`` checks beyond the file itself: the data the policy names.

A policy can parse and still be unable to run: the reference file is missing,
lacks the target column, holds one class; a ``[trigger.columns.X]`` names a
column that does not exist, or a drift method that does not fit the column's
kind. Each of these would otherwise surface mid-cycle as a failed cycle.
:func:`check_data` finds them from the files alone, without MLflow, Evidently
or training (it reads the reference and golden files with pandas).

Every finding is one line, ``FILE: field ...; got ...``, naming the file at
fault (the data file, or the policy file for ``trigger.*``). Three levels:

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
    reference = _reference(policy, problems, warnings)
    if reference is not None:
        from kaizen.data.schema import infer_schema

        d = policy.data
        schema = infer_schema(reference, target=policy.model.target, timestamp=d.timestamp_column,
                              prediction=d.prediction_column, ignored=d.excluded_columns)
        _golden(policy, schema, problems)
        _drift_methods(policy, schema, problems, notes)
    _production(policy, problems, warnings)
    return DataCheck(tuple(problems), tuple(warnings), tuple(notes))


# -- the files ------------------------------------------------------------------------------------

def _read(path: Path, field: str, problems: list[str]) -> Any:
    from kaizen.data.files import read_table

    try:
        return read_table(path)
    except DataError as exc:
        reason = str(exc)
        reason = reason[len(f"{path}: "):] if reason.startswith(f"{path}: ") else reason
        problems.append(f"{path}: {field} must be a readable Parquet or CSV file; got {reason}")
        return None


def _columns(names: Any) -> str:
    names = [str(c) for c in names]
    shown = ", ".join(map(repr, names[:_SHOWN]))
    return shown + (f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else "") if names else "none"


def _reference(policy: Policy, problems: list[str], warnings: list[str]) -> Any:
    import pandas as pd

    path, m, d = policy.data.reference, policy.model, policy.data
    df = _read(path, "data.reference", problems)
    if df is None:
        return None
    if df.empty or len(df.columns) == 0:
        problems.append(f"{path}: data.reference must have rows and columns; got {len(df)} row(s), "
                        f"{len(df.columns)} column(s)")
        return None
    if m.target not in df.columns:
        problems.append(f"{path}: data.reference must have the model.target column {m.target!r}; "
                        f"got columns {_columns(df.columns)}")
    if d.timestamp_column and d.timestamp_column not in df.columns:
        problems.append(f"{path}: data.reference must have the data.timestamp_column {d.timestamp_column!r}; "
                        f"got columns {_columns(df.columns)}")
    elif d.timestamp_column:
        ts = pd.to_datetime(df[d.timestamp_column], errors="coerce", utc=True)
        if ts.isna().any():
            bad = df[d.timestamp_column][ts.isna()].head(3).tolist()
            problems.append(f"{path}: data.timestamp_column {d.timestamp_column!r} must hold timestamps; got "
                            f"{int(ts.isna().sum())} value(s) that are not, like {', '.join(map(repr, bad))}")
    if m.target in df.columns:
        _target(policy, df[m.target], problems)
    missing = [c for c in d.ignore_columns if c not in df.columns]
    if missing:
        warnings.append(f"{path}: data.ignore_columns names column(s) the reference does not have; "
                        f"got {_columns(missing)}")
    features = [c for c in df.columns if c not in {m.target, d.prediction_column, *d.excluded_columns}
                and c != d.timestamp_column]
    if not features:
        problems.append(f"{path}: data.reference must have at least one feature column besides the target; "
                        f"got columns {_columns(df.columns)}")
        return None
    return df


def _target(policy: Policy, y: Any, problems: list[str]) -> None:
    import pandas as pd

    path, m = policy.data.reference, policy.model
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
    if len(classes) != 2:
        problems.append(f"{path}: model.target {m.target!r} must hold 2 classes for {m.task}; got "
                        f"{len(classes)}: {', '.join(classes[:10])}")
        return
    if m.positive_label not in values:
        problems.append(f"{path}: model.positive_label must be one of the reference's classes of {m.target!r} "
                        f"({', '.join(classes)}); got {m.positive_label!r}")


def _golden(policy: Policy, schema: Any, problems: list[str]) -> None:
    path = policy.data.golden
    if path is None:
        return
    df = _read(path, "data.golden", problems)
    if df is None:
        return
    from kaizen.data.schema import check_frame

    for p in check_frame(df, schema, require_target=True):
        problems.append(f"{path}: data.golden must match the reference's columns and types; it {p}")


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
