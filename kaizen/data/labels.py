"""Labels that arrive after their rows: label files joined onto production batches by an id column.

With ``data.labels = "separate"`` the batch files carry ``data.id_column`` and the label files
of ``data.labels_path`` carry that id and the target, written any time later. Every cycle reads
every label file (:meth:`~kaizen.data.source.Source.label_names` order: file-name order, so name
them so they sort by arrival) and keeps, per id, the label of the last file that has one; that
label is joined onto every batch the cycle reads (window and history) and wins over a label the
batch file itself holds. A label file row without a label (null target) is no label.

Label values pass the same value checks as labels inside batch files (``unknown_label``,
``label_range``, ``infinite`` for a regression target; :mod:`kaizen.data.checks`), but a label
row, not a batch, is the unit: a row failing a blocking check is dropped and counted
(:attr:`Labels.dropped`) and its id stays unlabelled; a warning is kept per file. A file that
cannot be read, or lacks the id or the target column, is left out whole (:attr:`Labels.rejected`).

Ids are compared by value: ``7``, ``7.0`` and ``"7"`` are one id (CSV and Parquet disagree on
kinds). An id names one production row: a label applies to every row that carries its id.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from kaizen.data.checks import CLASSIFICATION, ReferenceProfile, drop_failing_rows, run_checks
from kaizen.data.source import Source
from kaizen.policy import ChecksSpec

__all__ = ["Labels", "id_keys", "read_labels"]


def id_keys(ids: pd.Series) -> pd.Series:
    """Ids as text, so one id matches across file kinds: integral floats lose their ``.0``; nulls stay null."""
    if pd.api.types.is_float_dtype(ids):
        known = ids.dropna()
        if (known % 1 == 0).all():
            ids = ids.astype("Int64")
    return ids.astype("string")


def _numbers_as_numbers(labels: pd.Series, profile: ReferenceProfile) -> pd.Series:
    """Where the reference's labels are numbers, text that reads as a number is that number: one bad value
    makes a CSV column text ("0", "1", "maybe"), and only the bad value should fail the label checks."""
    numeric = profile.task not in CLASSIFICATION or all(
        isinstance(c, (int, float, np.integer, np.floating)) and not isinstance(c, bool) for c in profile.classes)
    if not numeric or labels.dtype != object:
        return labels
    as_number = pd.to_numeric(labels, errors="coerce")
    return as_number.astype(object).where(as_number.notna(), labels)


@dataclass(frozen=True)
class Labels:
    """The newest label of every id found in the label files, and what happened to each file.

    Immutable once returned by :func:`read_labels`; ``values`` is indexed by :func:`id_keys`.
    """

    id_column: str
    target: str
    values: pd.Series
    files: tuple[str, ...] = ()                              # label files read, in the order applied
    rejected: tuple[tuple[str, tuple[str, ...]], ...] = ()   # (file, problems): none of its labels used
    dropped: tuple[tuple[str, str, str, int], ...] = ()      # (file, check, column, label rows dropped)
    warnings: tuple[tuple[str, tuple[str, ...]], ...] = ()   # (file, messages)

    def join(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame`` with the newest label of each row's id in the target column (else its own label)."""
        found = id_keys(frame[self.id_column]).map(self.values)
        found.index = frame.index
        if self.target in frame.columns:
            found = found.where(found.notna(), frame[self.target])
        return frame.assign(**{self.target: found.infer_objects()})

    def digest(self) -> str:
        """SHA-256 of every (id, label) held, whatever the files and their order that gave them."""
        by_id = self.values.sort_index(kind="stable")
        h = hashlib.sha256(f"{len(by_id)}\0".encode())
        h.update(pd.util.hash_pandas_object(by_id.astype("string"), index=True).to_numpy().tobytes())
        return h.hexdigest()

    def summary(self) -> dict[str, Any]:
        return {
            "id_column": self.id_column,
            "files": len(self.files),
            "newest_file": self.files[-1] if self.files else None,
            "labelled_ids": int(len(self.values)),
            "rejected_files": [{"file": n, "problems": list(p)} for n, p in self.rejected],
            "dropped_labels": [{"file": f, "check": c, "column": col, "rows": n} for f, c, col, n in self.dropped],
            "warnings": [{"file": n, "messages": list(m)} for n, m in self.warnings],
        }


def read_labels(source: Source, id_column: str, profile: ReferenceProfile, checks: ChecksSpec) -> Labels:
    """Read every label file of ``source``; raises only what :meth:`Source.label_names` raises (DataError)."""
    target = profile.schema.target
    frames: list[pd.DataFrame] = []
    files: list[str] = []
    rejected: list[tuple[str, tuple[str, ...]]] = []
    dropped: list[tuple[str, str, str, int]] = []
    warnings: list[tuple[str, tuple[str, ...]]] = []
    for name in source.label_names():
        b = source.read_labels(name)
        files.append(name)
        if not b.ok:
            rejected.append((name, b.problems))
            continue
        missing = [c for c in (id_column, target) if c not in b.frame.columns]
        if missing:
            rejected.append((name, (f"is missing column(s) {', '.join(map(repr, missing))} "
                                    f"(a label file holds data.id_column and the target)",)))
            continue
        rows = b.frame[[id_column, target]].reset_index(drop=True)
        rows = rows[rows[target].notna()].reset_index(drop=True)
        no_id = int(rows[id_column].isna().sum())
        messages = [f"{no_id} label row(s) without an id {id_column!r} ignored"] if no_id else []
        rows = rows[rows[id_column].notna()].reset_index(drop=True)
        rows = rows.assign(**{target: _numbers_as_numbers(rows[target], profile)})
        results = run_checks(rows, profile, checks)
        whole = [r for r in results if r.blocks and not r.row_level]
        if whole:
            rejected.append((name, tuple(r.message for r in whole)))
            continue
        blocking = [r for r in results if r.blocks]
        dropped += [(name, r.check, r.column, r.rows) for r in blocking]
        messages += [r.message for r in results if not r.blocks]
        if messages:
            warnings.append((name, tuple(messages)))
        rows = drop_failing_rows(rows, blocking)
        if len(rows):
            frames.append(rows.assign(_key=id_keys(rows[id_column]).to_numpy()))
    if frames:
        every = pd.concat(frames, ignore_index=True).drop_duplicates("_key", keep="last")
        values = pd.Series(every[target].to_numpy(), index=pd.Index(every["_key"], dtype="string"), name=target)
    else:
        values = pd.Series([], index=pd.Index([], dtype="string"), dtype="object", name=target)
    return Labels(id_column=id_column, target=target, values=values, files=tuple(files),
                  rejected=tuple(rejected), dropped=tuple(dropped), warnings=tuple(warnings))
