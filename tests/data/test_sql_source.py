"""Production data in a SQL table (kaizen/data/sql.py): the same window as from files, read in bounded queries.

Every test runs on a SQLite file and on a real PostgreSQL database (skipped, saying why, without a server).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pytest

from kaizen.data import load_window
from kaizen.data.sql import SqlSource
from kaizen.errors import DataError, PolicyError
from tests.data import _sql
from tests.data._sql import append, engine, execute, sql_policy, stage

db_url = _sql.db_url  # the fixture: a SQLite file, or a PostgreSQL database

SIGN_FLIP = {4: lambda df: df.assign(tenure_months=-df["tenure_months"])}


def _windows(home: Any, url: str, data: dict[str, Any]) -> tuple[Any, Any]:
    """The window of the file policy and of the SQL policy, both with these [data] settings."""
    home.write_policy({"data": data})
    files = load_window(home.policy())
    home.write_policy(sql_policy(url, data), name="sql")
    return files, load_window(home.policy("sql"))


def _same(files: Any, sql: Any) -> None:
    assert sql.summary() == files.summary()  # batches, history, rejected and why, warnings, filtered, digest, labels
    assert (sql.batches, sql.history_batches, sql.newest_batch) == (files.batches, files.history_batches,
                                                                    files.newest_batch)
    pd.testing.assert_frame_equal(sql.current, files.current)
    pd.testing.assert_frame_equal(sql.history, files.history)
    pd.testing.assert_frame_equal(sql.reference, files.reference)
    pd.testing.assert_frame_equal(sql.golden, files.golden)


def test_files_and_a_table_give_the_same_window(home, db_url) -> None:
    unknown = {2: lambda df: df.assign(churned=df["churned"].where(df.index % 50 != 0, 7))}  # history rows filtered
    stage(home.root, db_url, range(6), change={**SIGN_FLIP, **unknown})
    files, sql = _windows(home, db_url, {"window_batches": 2, "max_history_batches": 2})
    assert files.batches == ("batch_003.parquet", "batch_005.parquet")
    assert files.history_batches == ("batch_001.parquet", "batch_002.parquet")
    assert [n for n, _ in files.rejected] == ["batch_004.parquet"] and files.incidents
    assert files.filtered == (("batch_002.parquet", "unknown_label", "churned", 10),)
    _same(files, sql)


def test_a_bad_batch_in_a_table_is_rejected_and_reported_like_a_bad_file(home, db_url) -> None:
    magnitude = {3: lambda df: df.assign(total_charges=df["total_charges"] * 1e7)}
    stage(home.root, db_url, range(4), change=magnitude)
    files, sql = _windows(home, db_url, {"max_history_batches": 1})
    [(name, messages)] = sql.rejected
    assert name == "batch_003.parquet"
    assert any(m.startswith("check 'magnitude' (block) on column 'total_charges'") for m in messages), messages
    assert sql.batches == ("batch_002.parquet",) and sql.history_batches == ("batch_001.parquet",)
    _same(files, sql)


def test_a_label_written_by_update_is_seen_and_changes_the_digest(home, db_url) -> None:
    stage(home.root, db_url, range(2), change={1: lambda df: df.assign(churned=pd.NA)})
    home.write_policy(sql_policy(db_url), name="sql")
    policy = home.policy("sql")
    before = load_window(policy)
    assert before.batches == ("batch_001.parquet",) and len(before.current) == 500 and len(before.labelled) == 0
    assert load_window(policy).digest == before.digest  # nothing changed: the same digest, cycle after cycle

    truth = pd.read_parquet(sorted((home.root / "data" / "incoming").iterdir())[1])
    first = truth["ts"].min()
    # labels arrive for the rows of the batch's first day: an UPDATE of the target column
    n = execute(db_url, "UPDATE production SET churned = CASE WHEN age > 45 THEN 1 ELSE 0 END "
                        "WHERE batch = :b AND ts < :until", b="batch_001.parquet",
                until=(first + pd.Timedelta(days=1)).to_pydatetime())
    after = load_window(policy)
    assert 0 < n < 500 and len(after.labelled) == n and dict(after.batch_labels)["batch_001.parquet"] == n
    assert after.digest != before.digest and after.batches == before.batches


def test_a_new_batch_inserted_becomes_the_window(home, db_url) -> None:
    written = stage(home.root, db_url, range(2))
    home.write_policy(sql_policy(db_url), name="sql")
    assert load_window(home.policy("sql")).batches == ("batch_001.parquet",)
    nxt = pd.read_parquet(sorted((home.root / "data" / "incoming").iterdir())[2])
    append(db_url, "batch_002.parquet", nxt.assign(ts=nxt["ts"] + pd.to_timedelta(range(len(nxt)), unit="us")))
    w = load_window(home.policy("sql"))
    assert w.batches == ("batch_002.parquet",) and w.history_batches == tuple(written)


def _statements(url: str, policy: Any) -> tuple[Any, list[tuple[str, Any]], list[str]]:
    """Load the window, recording every statement sent to the database and the batches read."""
    import sqlalchemy as sa

    sent: list[tuple[str, Any]] = []
    read: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        sent.append((statement, parameters))

    class Spy(SqlSource):
        def read_batch(self, name: str) -> Any:
            read.append(name)
            return super().read_batch(name)

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", record)
    try:
        window = load_window(policy, Spy.from_spec(policy.data))
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", record)
    return window, sent, read


def _plan(url: str, statement: str, parameters: Any) -> str:
    """How the database runs ``statement``: PostgreSQL's plan with sequential scans priced out (a query that can
    only be answered by reading the whole table still shows a ``Seq Scan``); SQLite's query plan."""
    eng = engine(url)
    try:
        with eng.connect() as conn:
            if eng.dialect.name == "postgresql":
                conn.exec_driver_sql("SET enable_seqscan = off")
                rows = conn.exec_driver_sql("EXPLAIN " + statement, parameters).all()
            else:
                rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
        return "\n".join(str(r[-1]) for r in rows)
    finally:
        eng.dispose()


def test_the_window_reads_only_the_newest_batches_and_never_the_whole_table(home, db_url) -> None:
    stage(home.root, db_url, range(6), change=SIGN_FLIP)
    home.write_policy(sql_policy(db_url, {"window_batches": 1, "max_history_batches": 2}), name="sql")
    window, sent, read = _statements(db_url, home.policy("sql"))
    assert window.batches == ("batch_005.parquet",) and window.history_batches == ("batch_002.parquet",
                                                                                  "batch_003.parquet")
    # newest first, the rejected batch on the way; batches 0 and 1 are never asked for
    assert read == ["batch_005.parquet", "batch_004.parquet", "batch_003.parquet", "batch_002.parquet"]
    on_production = [(s, p) for s, p in sent if re.search(r"\bFROM production\b", s)]
    assert len(on_production) == 2 * len(read)  # one query finds each batch, one reads it
    for statement, parameters in on_production:
        assert "WHERE" in statement, statement
        plan = _plan(db_url, statement, parameters)
        assert "Seq Scan" not in plan and not re.search(r"^SCAN production$", plan, re.M), (statement, plan)
    assert not any("batch_000" in str(p) or "batch_001" in str(p) for _, p in on_production)


def test_time_buckets_cut_the_same_batches_and_an_open_bucket_waits(home, db_url) -> None:
    stage(home.root, db_url, range(4))
    data = {"window_batches": 1, "max_history_batches": 2}
    home.write_policy({"data": data})
    files = load_window(home.policy())
    buckets = {k: v for k, v in sql_policy(db_url, data)["data"].items() if k != "batch_column"}
    # the table's batch column is a column like any other here: ignored, or every batch has an unexpected column
    home.write_policy({"data": {**buckets, "batch_every": "7d", "ignore_columns": ["batch"]}}, name="sql")
    policy = home.policy("sql")
    sql = load_window(policy)  # the batches are weeks from Thursday 2026-01-22; 1970-01-01 was a Thursday too
    assert sql.batches == ("2026-02-12T00:00:00Z",) and sql.history_batches == ("2026-01-29T00:00:00Z",
                                                                               "2026-02-05T00:00:00Z")
    pd.testing.assert_frame_equal(sql.current, files.current)
    pd.testing.assert_frame_equal(sql.history, files.history)

    # on 2026-02-15 the week of 2026-02-12 has not ended: it is not read, the week before is the window
    source = SqlSource.from_spec(policy.data, clock=lambda: datetime(2026, 2, 15, tzinfo=UTC))
    early = load_window(policy, source)
    source.close()
    assert early.batches == ("2026-02-05T00:00:00Z",) and early.newest_batch == "2026-02-05T00:00:00Z"


def test_a_missing_table_or_column_fails_the_read_naming_it(home, db_url) -> None:
    stage(home.root, db_url, range(1))
    home.write_policy(sql_policy(db_url, {"production_table": "events"}), name="sql")
    with pytest.raises(DataError, match=r"table 'events' of .*: no such table or view \(data.production_table\); "
                                        r"the database has 'golden', 'production', 'reference'"):
        load_window(home.policy("sql"))
    home.write_policy(sql_policy(db_url, {"batch_column": "day"}), name="sql")
    with pytest.raises(DataError, match=r"table 'production' of .*: has no column 'day' \(data.batch_column\)"):
        load_window(home.policy("sql"))


def test_an_unreachable_database_fails_the_cycle_and_never_shows_the_password(home, monkeypatch) -> None:
    home.write_policy(sql_policy("sqlite:///unused.db", {"sql_url": None, "sql_url_env": "KAIZEN_TEST_DB"}),
                      name="sql")
    policy = home.policy("sql")
    with pytest.raises(DataError, match=r"\$KAIZEN_TEST_DB: data.sql_url_env names the environment variable "
                                        r"KAIZEN_TEST_DB, which is not set"):
        load_window(policy)
    monkeypatch.setenv("KAIZEN_TEST_DB", "postgresql+psycopg://kaizen:S3cret-pw@127.0.0.1:1/prod")
    with pytest.raises(DataError) as err:
        load_window(policy)
    assert "S3cret" not in str(err.value) and "cannot connect" in str(err.value)
    assert str(err.value).startswith("$KAIZEN_TEST_DB: cannot connect (OperationalError:")


# -- the policy's settings ------------------------------------------------------------------------------

def _problems(home: Any, data: dict[str, Any]) -> list[str]:
    home.write_policy({"data": data}, name="bad")
    with pytest.raises(PolicyError) as err:
        home.policy("bad")
    return [p for p in err.value.problems]


def test_sql_settings_are_checked_together(home) -> None:
    url = "sqlite:///../data/prod.db"
    pol_dir = home.root / "policies"
    home.write_policy(sql_policy(url), name="sql")
    d = home.policy("sql").data
    assert d.sql_url == f"sqlite:///{(pol_dir / '../data/prod.db').resolve()}"  # relative to the policy file
    assert d.reference is None and d.production is None and d.production_table == "production"

    assert _problems(home, {**sql_policy(url)["data"], "batch_every": "1d"}) == [
        "data.production_table needs exactly one of data.batch_column (a column naming each row's batch) and "
        "data.batch_every (time buckets of data.timestamp_column); got both"]
    assert _problems(home, {**sql_policy(url)["data"], "sql_url": None}) == [
        "data.production_table needs exactly one of data.sql_url and data.sql_url_env (the database); got neither"]
    assert _problems(home, {**sql_policy(url)["data"], "reference": "../data/reference.parquet"}) == [
        "data.reference and data.reference_table cannot both be set; got "
        f"{str((pol_dir / '../data/reference.parquet').resolve())!r} and 'reference'"]
    assert _problems(home, {"production": None, "reference_table": "reference"}) == [
        "data.reference and data.reference_table cannot both be set; got "
        f"{str((pol_dir / '../data/reference.parquet').resolve())!r} and 'reference'",
        "data.production is required (a path to a folder of batch files, or data.production_table); got none",
        "data.reference_table is only read with data.production_table (the tables are those of the production "
        "database); got 'reference' and no data.production_table"]
    assert _problems(home, {**sql_policy(url)["data"], "batch_every": "90m30s", "batch_column": None,
                            "sql_url": None, "sql_url_env": "1DB"}) == [
        "data.sql_url_env must be the name of an environment variable (letters, digits, '_'); got '1DB'"]
    assert _problems(home, {**sql_policy(url)["data"], "batch_every": "0.5s", "batch_column": None}) == [
        'data.batch_every must be a whole number of seconds such as "6h", "1d" or "7d"; got \'0.5s\'']
    assert _problems(home, {**sql_policy(url)["data"], "batch_column": "ts"}) == [
        "data.batch_column must differ from data.timestamp_column; got 'ts' for both"]


def test_a_password_in_a_policy_file_is_refused_and_never_repeated(home) -> None:
    [problem] = _problems(home, sql_policy("postgresql+psycopg://kaizen:S3cret@db.internal/prod")["data"])
    assert problem == ("data.sql_url must be a URL without a password (a secret never goes in a policy file: put the "
                       "URL in an environment variable and name it in data.sql_url_env); got "
                       "'postgresql+psycopg://kaizen:***@db.internal/prod'")
    [problem] = _problems(home, sql_policy("not a url :// at all")["data"])
    assert problem.startswith("data.sql_url must be a SQLAlchemy URL such as")
