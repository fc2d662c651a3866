"""One scenario as files and as SQL tables, for the tests of kaizen/data/sql.py (and the SQL cycle test).

``db_url`` is a SQLite file (runs everywhere) or a fresh PostgreSQL database (tests/scale/conftest.py's
server; skipped, saying why, when none is reachable). :func:`stage` writes the churn scenario of a test home
both ways: files in ``data/`` (``reference.parquet``, ``golden.parquet``, ``production/batch_NNN.parquet``)
and tables ``reference``, ``golden`` and ``production`` (the batch's file name in column ``batch``, indexes
on ``ts`` and ``batch``), so a file policy and a SQL policy read the same rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.scale.conftest import drop_database, new_database, pg_available

SQL_DATA = {"reference": None, "production": None, "golden": None, "reference_table": "reference",
            "golden_table": "golden", "production_table": "production", "batch_column": "batch"}


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A SQLAlchemy URL of an empty database: a SQLite file, or a fresh PostgreSQL database dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'kaizen-data.db'}"
        return
    why = pg_available()
    if why:
        pytest.skip(f"the PostgreSQL case needs a server: {why}")
    url = new_database("kz_data")
    try:
        yield url.replace("postgresql://", "postgresql+psycopg://", 1)
    finally:
        drop_database(url)


def sql_policy(url: str, data: dict[str, Any] | None = None, **sections: dict[str, Any]) -> dict[str, dict]:
    """Policy overrides that read the tables of ``url`` instead of the files (``data``: more [data] keys)."""
    return {"data": {**SQL_DATA, "sql_url": url, **(data or {})}, **sections}


def untie(df: pd.DataFrame) -> pd.DataFrame:
    """The rows (sorted by ``ts``) with ``ts`` moved by k microseconds on row k: no two rows share a timestamp.

    A SQL table has no row order: rows of equal timestamp come back in an order of the source's choosing
    (kaizen/data/sql.py), a file's in the file's. Without ties both read the rows in the same order."""
    return df.assign(ts=df["ts"] + pd.to_timedelta(range(len(df)), unit="us"))


def engine(url: str) -> Any:
    import sqlalchemy as sa

    return sa.create_engine(url)


def stage(root: Path, url: str | None, batches: Iterable[int], *,
          change: dict[int, Callable[[pd.DataFrame], pd.DataFrame]] | None = None, source: Path | None = None
          ) -> dict[str, pd.DataFrame]:
    """Write the scenario of ``source`` (default: the home's ``data/``) as files under ``root/data`` and as tables
    of ``url``: the reference and golden sets and ``batches`` (indices into ``incoming/``), each changed by
    ``change[i]`` when given (``url`` None: files only). Returns the batches written, by name."""
    import sqlalchemy as sa

    data = root / "data"
    source = source or data
    reference = untie(pd.read_parquet(source / "reference.parquet"))
    golden = untie(pd.read_parquet(source / "golden.parquet"))
    incoming = sorted((source / "incoming").iterdir())
    production = data / "production"
    production.mkdir(parents=True, exist_ok=True)
    reference.to_parquet(data / "reference.parquet", index=False)
    golden.to_parquet(data / "golden.parquet", index=False)
    written: dict[str, pd.DataFrame] = {}
    for i in batches:
        df = untie(pd.read_parquet(incoming[i]))
        df = (change or {}).get(i, lambda f: f)(df)
        name = f"batch_{i:03d}.parquet"
        df.to_parquet(production / name, index=False)
        written[name] = df
    if url is None:
        return written
    eng = engine(url)
    try:
        with eng.begin() as conn:
            reference.to_sql("reference", conn, index=False)
            golden.to_sql("golden", conn, index=False)
            rows = pd.concat([df.assign(batch=name) for name, df in written.items()], ignore_index=True)
            rows.to_sql("production", conn, index=False, dtype={"churned": sa.BigInteger()})
            conn.exec_driver_sql("CREATE INDEX production_ts ON production (ts)")
            conn.exec_driver_sql("CREATE INDEX production_batch ON production (batch)")
    finally:
        eng.dispose()
    return written


def append(url: str, name: str, df: pd.DataFrame) -> None:
    """Insert batch ``name`` (its rows ``df``) into the production table."""
    eng = engine(url)
    try:
        with eng.begin() as conn:
            df.assign(batch=name).to_sql("production", conn, index=False, if_exists="append")
    finally:
        eng.dispose()


def execute(url: str, statement: str, **params: Any) -> int:
    """Run one statement in its own transaction; the rows it changed."""
    import sqlalchemy as sa

    eng = engine(url)
    try:
        with eng.begin() as conn:
            return int(conn.execute(sa.text(statement), params).rowcount)
    finally:
        eng.dispose()
