"""The coordination primitives on a real PostgreSQL: the lease and its epoch, the policy lock, journal and fence."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

import pytest

from kaizen.errors import BusyError
from kaizen.scale.db import SCHEMA_VERSION, connect, upgrade
from kaizen.scale.fence import Fence, Fenced
from kaizen.scale.lease import Lease
from kaizen.scale.lock import PgPolicyLock


def _expire(url: str, name: str = "scheduler") -> None:
    """What the passing of ttl seconds does to a lease, without waiting for it."""
    with connect(url) as conn:
        conn.execute("UPDATE kaizen.lease SET expires_at = now() - interval '1 second' WHERE name = %s", (name,))


def test_the_schema_upgrade_is_idempotent_and_safe_to_race(pg_url: str) -> None:
    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(upgrade(pg_url))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [SCHEMA_VERSION] * 4
    with connect(pg_url) as conn:
        assert conn.execute("SELECT value FROM kaizen.meta WHERE key = 'schema_version'").fetchone()[0] == \
            str(SCHEMA_VERSION)


def test_one_leader_at_a_time_and_the_epoch_grows_at_each_takeover(pg_url: str) -> None:
    a, b = Lease(pg_url, holder="a", ttl_seconds=30), Lease(pg_url, holder="b", ttl_seconds=30)
    first = a.acquire()
    assert (first.leader, first.holder, first.epoch) == (True, "a", 1)
    seen = b.acquire()
    assert (seen.leader, seen.holder, seen.epoch) == (False, "a", 1)   # b follows and knows who leads
    assert a.acquire().epoch == 1                                       # a renewal keeps the epoch
    _expire(pg_url)                                                     # a stopped renewing (killed, partitioned)
    took = b.acquire()
    assert (took.leader, took.holder, took.epoch) == (True, "b", 2)     # a takeover: epoch + 1
    late = a.acquire()                                                  # the deposed leader wakes up
    assert (late.leader, late.holder, late.epoch) == (False, "b", 2)
    b.release()                                                         # a clean shutdown hands over at once
    assert a.acquire().epoch == 3 and a.current().leader


def test_a_fenced_promotion_needs_the_current_epoch(pg_url: str) -> None:
    lease = Lease(pg_url, holder="leader-1")
    epoch = lease.acquire().epoch
    with Fence(pg_url, epoch=epoch).promotion("churn", "3", "2", cycle_id="c1") as intent:
        assert intent > 0
    _expire(pg_url)
    assert Lease(pg_url, holder="leader-2").acquire().epoch == epoch + 1
    with pytest.raises(Fenced, match=rf"enqueued under scheduler epoch {epoch}, but the epoch is now {epoch + 1}"):
        with Fence(pg_url, epoch=epoch).promotion("churn", "4", "3", cycle_id="c2"):
            pytest.fail("the block of a fenced promotion must not run")
    with Fence(pg_url, epoch=None).promotion("churn", "4", "3", cycle_id="approval-by-alice"):
        pass  # a person's approval is not enqueued by a leader: recorded, not epoch-checked
    with connect(pg_url) as conn:
        rows = conn.execute("SELECT version, cycle_id, epoch, state FROM kaizen.promotion ORDER BY id").fetchall()
    assert rows == [("3", "c1", epoch, "done"), ("4", "approval-by-alice", None, "done")]


def test_a_takeover_waits_for_a_promotion_in_flight_and_then_fences_the_old_epoch(pg_url: str) -> None:
    epoch = Lease(pg_url, holder="old").acquire().epoch
    moving, moved = threading.Event(), threading.Event()
    took: list[int] = []

    def takeover() -> None:
        moving.wait(10)
        _expire_and_take = Lease(pg_url, holder="new")
        with connect(pg_url) as conn:  # the lease expires while the old leader's worker is mid-promotion
            conn.execute("UPDATE kaizen.lease SET expires_at = now() - interval '1 second' WHERE name = 'scheduler'")
        took.append(_expire_and_take.acquire().epoch)

    t = threading.Thread(target=takeover)
    t.start()
    with Fence(pg_url, epoch=epoch).promotion("churn", "5", "4", cycle_id="c3"):
        moving.set()
        t.join(timeout=1.0)
        assert t.is_alive() and not took  # the takeover waits for the alias move to finish
        moved.set()
    t.join(timeout=10)
    assert took == [epoch + 1]
    with pytest.raises(Fenced):
        with Fence(pg_url, epoch=epoch).promotion("churn", "6", "5", cycle_id="c4"):
            pass


def test_the_policy_lock_is_exclusive_names_its_holder_and_dies_with_its_process(pg_url: str) -> None:
    first = PgPolicyLock(pg_url, "churn", holder="host-a:1")
    assert first.try_acquire()
    second = PgPolicyLock(pg_url, "churn", holder="host-b:2")
    assert not second.try_acquire()
    with pytest.raises(BusyError, match=r"policy 'churn' is busy: another kaizen process \(host-a:1 since "):
        second.acquire()
    assert PgPolicyLock(pg_url, "other").try_acquire()  # other policies are free
    first.release()
    assert second.try_acquire()
    second.release()
    # a process that holds the lock and is killed: PostgreSQL drops its connection, and the lock with it
    code = ("import sys, time\nfrom kaizen.scale.lock import PgPolicyLock\n"
            f"lock = PgPolicyLock({pg_url!r}, 'churn', holder='doomed')\nassert lock.try_acquire()\n"
            "print('held', flush=True)\ntime.sleep(600)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": os.getcwd()})
    try:
        assert proc.stdout.readline().strip() == "held"
        assert not PgPolicyLock(pg_url, "churn").try_acquire()
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        waiter = PgPolicyLock(pg_url, "churn", wait_seconds=30)
        waiter.acquire()  # free once the server notices the closed connection
        waiter.release()
    finally:
        if proc.poll() is None:
            proc.kill()


def test_the_journal_on_postgres_round_trips_what_the_file_journal_writes(pg_url: str, tmp_path) -> None:
    from kaizen.run.journal import Step
    from kaizen.run.runner import Draft
    from kaizen.scale.journal import PgJournal

    journal = PgJournal(pg_url)
    draft = Draft(id="20261206T000000Z-churn-0001", policy="churn", seed=3, on_step=journal.mark)
    draft.sections["champion"] = {"version": "1"}
    draft.step(Step.STARTED)
    draft.step(Step.BUILDING)
    other = PgJournal(pg_url)  # another process, another host: sees the unfinished run
    [entry] = other.pending("churn")
    assert entry["id"] == draft.id and entry["step"] == "building" and entry["sections"]["champion"] == {"version": "1"}
    assert [s["step"] for s in entry["steps"]] == ["started", "building"] and entry["seed"] == 3
    assert other.pending("another") == [] and journal.pending() == []  # its own running entry is not pending
    journal.remove(draft.id)
    assert other.pending() == []


def test_kaizen_db_upgrade_migrates_every_schema_once_and_is_safe_to_run_again(pg_server: str, tmp_path) -> None:
    """Kaizen's schema, the job queue, MLflow's (from $MLFLOW_BACKEND_STORE_URI) and Optuna's, in one step."""
    from tests.scale.conftest import drop_database, new_database

    kaizen_db, mlflow_db, optuna_db = new_database(), new_database(), new_database()
    try:
        (tmp_path / "config.toml").write_text(
            f'[state]\ndir = "state"\n[coordination]\nurl_env = "KZ_TEST_COORD"\n'
            f'optuna_storage = "{optuna_db.replace("postgresql://", "postgresql+psycopg://")}"\n')
        env = {**os.environ, "PYTHONPATH": os.getcwd(), "KZ_TEST_COORD": kaizen_db,
               "MLFLOW_BACKEND_STORE_URI": mlflow_db.replace("postgresql://", "postgresql+psycopg://")}
        for first in (True, False):
            done = subprocess.run([sys.executable, "-m", "kaizen", "--config", str(tmp_path / "config.toml"), "db",
                                   "upgrade"], capture_output=True, text=True, env=env, timeout=300)
            assert done.returncode == 0, done.stderr[-2000:]
            assert f"kaizen schema: version {SCHEMA_VERSION}" in done.stdout
            assert f"job queue (procrastinate): {'created' if first else 'already there'}" in done.stdout
            assert "mlflow: migrated" in done.stdout and "optuna: storage ready" in done.stdout
        tables = {}
        for name, url in (("kaizen", kaizen_db), ("mlflow", mlflow_db), ("optuna", optuna_db)):
            with connect(url) as conn:
                tables[name] = {r[0] for r in conn.execute(
                    "SELECT table_schema || '.' || table_name FROM information_schema.tables").fetchall()}
        assert {"kaizen.lease", "kaizen.promotion", "public.procrastinate_jobs"} <= tables["kaizen"]
        assert {"public.registered_models", "public.model_versions"} <= tables["mlflow"]
        assert {"public.studies", "public.trials"} <= tables["optuna"]
        assert not any(t.startswith("kaizen.") for t in tables["mlflow"] | tables["optuna"])
    finally:
        for url in (kaizen_db, mlflow_db, optuna_db):
            drop_database(url)


def test_a_leaders_enqueue_is_fenced_by_the_lease_row(pg_url: str) -> None:
    """Only the live holder at its epoch queues; a deposed leader's enqueue is refused and queues nothing."""
    from kaizen.scale.queue import NotLeading, app_for, enqueue_cycle, jobs, schema

    schema(pg_url)
    old = Lease(pg_url, holder="old", ttl_seconds=30)
    epoch = old.acquire().epoch
    app = app_for(pg_url)
    with app.open():
        first = enqueue_cycle(app, "churn", epoch=epoch, url=pg_url, holder="old")
        assert first is not None
        assert enqueue_cycle(app, "churn", epoch=epoch, url=pg_url, holder="old") is None  # one waiting per policy
        with pytest.raises(NotLeading, match=r"this replica \(new\) led at epoch 1, but the lease is held by old"):
            enqueue_cycle(app, "other", epoch=epoch, url=pg_url, holder="new")
        _expire(pg_url)
        with pytest.raises(NotLeading, match=r"held by old at epoch 1 \(expired\)"):  # expired, not yet taken over
            enqueue_cycle(app, "other", epoch=epoch, url=pg_url, holder="old")
        assert Lease(pg_url, holder="new").acquire().epoch == epoch + 1
        with pytest.raises(NotLeading, match=r"led at epoch 1, but the lease is held by new at epoch 2"):
            enqueue_cycle(app, "other", epoch=epoch, url=pg_url, holder="old")  # the deposed leader wakes up
        assert enqueue_cycle(app, "other", epoch=epoch + 1, url=pg_url, holder="new") is not None
    assert [(j["policy"], j["epoch"]) for j in jobs(pg_url)] == [("churn", epoch), ("other", epoch + 1)]
