"""Every data source keeps the :class:`~kaizen.data.source.Source` contract (written once, run per source).

Sources: files, a SQLite file, a PostgreSQL database (skipped, saying why, without a server); the same rows in each.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from kaizen.data.files import FileSource
from kaizen.data.sql import SqlSource, Table
from tests.data._sql import stage
from tests.scale.conftest import drop_database, new_database, pg_available


@pytest.fixture(params=["files", "sqlite", "postgresql"])
def source(request: pytest.FixtureRequest, home: Any, tmp_path: Path) -> Iterator[Any]:
    """A source over the reference, the golden set and batches 0-2 of the home's scenario."""
    data = home.root / "data"
    if request.param == "files":
        stage(home.root, None, range(3))
        yield FileSource(data / "reference.parquet", data / "production", data / "golden.parquet")
        return
    if request.param == "sqlite":
        url, drop = f"sqlite:///{tmp_path / 'conformance.db'}", None
    else:
        why = pg_available()
        if why:
            pytest.skip(f"the PostgreSQL case needs a server: {why}")
        drop = new_database("kz_conf")
        url = drop.replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        stage(home.root, url, range(3))
        src = SqlSource(production=Table("production"), timestamp="ts", reference=Table("reference"),
                        golden=Table("golden"), batch_column="batch", url=url)
        yield src
        src.close()
    finally:
        if drop:
            drop_database(drop)


def test_a_source_lists_newest_first_and_reads_what_it_lists(source: Any, home: Any) -> None:
    names = source.batch_names()
    assert names == ["batch_000.parquet", "batch_001.parquet", "batch_002.parquet"]
    assert list(source.newest_batches()) == names[::-1]
    for name in names:
        batch = source.read_batch(name)
        expected = pd.read_parquet(home.root / "data" / "production" / name)
        assert batch.ok and batch.name == name
        pd.testing.assert_frame_equal(batch.frame, expected)  # the batch's name is not a column of its rows


def test_a_source_gives_the_reference_and_golden_sets_and_describes_where_they_are(source: Any, home: Any) -> None:
    pd.testing.assert_frame_equal(source.reference(), pd.read_parquet(home.root / "data" / "reference.parquet"))
    pd.testing.assert_frame_equal(source.golden(), pd.read_parquet(home.root / "data" / "golden.parquet"))
    for part in ("reference", "golden", "production"):
        assert source.describe(part)


def test_a_name_it_never_listed_is_a_batch_the_window_rejects(source: Any) -> None:
    batch = source.read_batch("batch_999.parquet")
    assert not batch.ok or batch.frame.empty  # a problem, or no rows (rejected: "has no rows")


def test_a_closed_source_can_be_closed_again_and_used_again(source: Any) -> None:
    source.batch_names()
    source.close()
    source.close()
    assert len(source.batch_names()) == 3
    assert source.label_names() == []
