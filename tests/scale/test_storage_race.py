"""Several processes opening a fresh Optuna storage at once: a build and optuna-dashboard on a new studies file,
helpers on a new shared database. Optuna's constructor creates missing tables and stamps the schema's revision;
the loser of that race used to raise ("table studies already exists", "UNIQUE constraint failed:
alembic_version") and its build died. :func:`kaizen.scale.tuning.rdb_storage` opens again instead."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tests.scale.conftest import drop_database, new_database, pg_available

OPENERS = 6


def open_together(url: str) -> list[str]:
    """``OPENERS`` threads, each with its own engine, open ``url`` at one barrier; the errors they raised."""
    from kaizen.scale.tuning import open_storage

    barrier = threading.Barrier(OPENERS)
    errors: list[str] = []
    storages = []

    def opener() -> None:
        barrier.wait()
        try:
            storages.append(open_storage(url, heartbeat_seconds=2, grace_seconds=6))
        except Exception as exc:  # recorded, asserted empty below
            errors.append(f"{type(exc).__name__}: {str(exc).splitlines()[0]}")

    threads = [threading.Thread(target=opener) for _ in range(OPENERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    for s in storages:
        s.engine.dispose()
    assert not any(t.is_alive() for t in threads)
    return errors


def schema_is_whole(url: str) -> None:
    """One revision stamped; a study made through one opener is seen through another."""
    import optuna

    from kaizen.scale.tuning import open_storage, storage_url

    a = open_storage(url, heartbeat_seconds=2, grace_seconds=6)
    b = open_storage(url, heartbeat_seconds=2, grace_seconds=6)
    try:
        optuna.create_study(storage=a, study_name="s").optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
        assert len(optuna.load_study(study_name="s", storage=b).trials) == 2
        import sqlalchemy

        engine = sqlalchemy.create_engine(storage_url(url))
        with engine.connect() as conn:
            assert conn.execute(sqlalchemy.text("SELECT count(*) FROM alembic_version")).scalar() == 1
        engine.dispose()
    finally:
        a.engine.dispose()
        b.engine.dispose()


def test_openers_racing_on_a_new_sqlite_file_all_open_it(tmp_path: Path) -> None:
    # five fresh files: without the retry, every one of ten such rounds had losers on a 2-core machine
    for i in range(5):
        url = f"sqlite:///{tmp_path / f'studies{i}.db'}"
        assert open_together(url) == []
        schema_is_whole(url)


def test_openers_racing_on_a_new_postgresql_database_all_open_it() -> None:
    why = pg_available()
    if why:
        pytest.skip(f"needs PostgreSQL: {why}")
    url = new_database("kz_race")
    try:
        assert open_together(url) == []
        schema_is_whole(url)
    finally:
        drop_database(url)


def test_an_error_that_is_not_the_race_is_raised_at_once(tmp_path: Path) -> None:
    """A storage that cannot be opened (here: a folder where the file should be) fails on the first attempt."""
    import sqlalchemy.exc

    from kaizen.scale.tuning import rdb_storage

    (tmp_path / "a.db").mkdir()
    with pytest.raises(sqlalchemy.exc.OperationalError, match="unable to open database file"):
        rdb_storage(f"sqlite:///{tmp_path / 'a.db'}")
