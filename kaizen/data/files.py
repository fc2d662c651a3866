"""Files on disk: a reference file, a golden file, a folder of batch files (Parquet or CSV) and, when
labels arrive separately, a folder of label files (same formats)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from kaizen.data.source import Batch, Source
from kaizen.errors import DataError

__all__ = ["FileSource", "SUFFIXES", "data_files", "read_file_batch", "read_table"]

SUFFIXES = (".parquet", ".pq", ".csv")


def read_table(path: Path) -> pd.DataFrame:
    """Read one Parquet or CSV file; DataError names the file and the reason."""
    path = Path(path)
    if path.suffix.lower() not in SUFFIXES:
        raise DataError(f"{path}: unsupported file type {path.suffix!r} (use .parquet or .csv)")
    try:
        if path.suffix.lower() == ".csv":
            return pd.read_csv(path)
        return pd.read_parquet(path)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
    except Exception as exc:  # pyarrow/pandas raise many types for a corrupt file
        raise DataError(f"{path}: cannot read ({type(exc).__name__}: {exc})") from exc


def data_files(folder: Path) -> list[str]:
    """The names of the data files of ``folder`` (Parquet or CSV, not hidden), in name order."""
    return sorted(p.name for p in folder.iterdir()
                  if p.is_file() and p.suffix.lower() in SUFFIXES and not p.name.startswith("."))


def read_file_batch(folder: Path, name: str) -> Batch:
    """File ``name`` of ``folder`` as a :class:`Batch`; a file that cannot be read is a batch with its reason."""
    try:
        return Batch(name, read_table(folder / name))
    except DataError as exc:
        return Batch(name, None, (str(exc),))


class LabelFiles:
    """Late labels as files in a folder (``data.labels = "separate"``), whatever the batches come from: mixed
    into a :class:`~kaizen.data.source.Source` that sets ``labels_path`` (None: labels come with the rows)."""

    labels_path: Path | None

    def label_names(self) -> list[str]:
        """The label files of ``labels`` in file-name order (name them so they sort by arrival)."""
        if self.labels_path is None:
            return []
        if not self.labels_path.is_dir():
            raise DataError(f"{self.labels_path}: labels folder (data.labels_path) not found")
        return data_files(self.labels_path)

    def read_labels(self, name: str) -> Batch:
        if self.labels_path is None:
            return super().read_labels(name)  # type: ignore[misc]
        return read_file_batch(self.labels_path, name)


class FileSource(LabelFiles, Source):
    """Batches are the data files of ``production``, label files those of ``labels``, in file-name order."""

    def __init__(self, reference: Path, production: Path, golden: Path | None = None,
                 labels: Path | None = None) -> None:
        self.reference_path = Path(reference)
        self.production = Path(production)
        self.golden_path = Path(golden) if golden else None
        self.labels_path = Path(labels) if labels else None

    def describe(self, part: str) -> str:
        return str({"reference": self.reference_path, "golden": self.golden_path, "production": self.production,
                    "labels": self.labels_path}[part])

    def reference(self) -> pd.DataFrame:
        df = read_table(self.reference_path)
        if df.empty:
            raise DataError(f"{self.reference_path}: the reference set has no rows")
        return df

    def golden(self) -> pd.DataFrame | None:
        if self.golden_path is None:
            return None
        return read_table(self.golden_path)

    def batch_names(self) -> list[str]:
        if not self.production.is_dir():
            raise DataError(f"{self.production}: production folder not found")
        return data_files(self.production)

    def read_batch(self, name: str) -> Batch:
        return read_file_batch(self.production, name)

