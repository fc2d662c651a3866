"""The one runner: lock, journal, exactly one record, own-thread CPU billing."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from kaizen.config import load_config
from kaizen.errors import BusyError, DataError
from kaizen.journal import Journal
from kaizen.ledger import Ledger
from kaizen.locks import PolicyLock
from kaizen.runner import RunContext, run


@pytest.fixture
def config(tmp_path: Path):
    (tmp_path / "config.toml").write_text('[state]\ndir = "state"\n')
    return load_config(tmp_path / "config.toml")


class NoRegistry:
    """A registry the bodies below never touch (they open no MLflow run)."""


def test_concurrent_runs_each_bill_only_their_own_cpu(config) -> None:
    busy_done = threading.Event()
    records = {}

    def busy(ctx: RunContext):
        t0 = time.thread_time()
        x = 0
        while time.thread_time() - t0 < 0.6:
            x += 1
        busy_done.set()
        return ctx.draft.finish("skipped")

    def idle(ctx: RunContext):
        assert busy_done.wait(120)
        return ctx.draft.finish("skipped")

    def go(name, body):
        records[name] = run(config, name, body, registry=NoRegistry())

    threads = [threading.Thread(target=go, args=(n, b)) for n, b in (("busy", busy), ("idle", idle))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    assert records["busy"].cost["cpu_seconds"] >= 0.6
    # process_time() would bill the idle run the busy one's 0.6 s as well
    assert records["idle"].cost["cpu_seconds"] < 0.3


def test_a_crashing_body_leaves_exactly_one_failed_record_and_no_work_folder(config) -> None:
    def body(ctx: RunContext):
        ctx.workdir.mkdir(parents=True)
        (ctx.workdir / "scratch").write_text("x")
        raise ZeroDivisionError("boom")

    rec = run(config, "churn", body, registry=NoRegistry())
    assert rec.decision == "failed" and rec.error == "ZeroDivisionError: boom"
    assert rec.reasons[0] == "cycle failed: ZeroDivisionError: boom"
    assert [r.id for r in Ledger(config.ledger_path).records()] == [rec.id]
    assert not (config.work_dir / rec.id).exists()
    assert Journal(config.state_dir, config.ledger_path).pending() == []


def test_a_kaizen_error_is_the_first_reason(config) -> None:
    def body(ctx: RunContext):
        ctx.draft.reasons.append("something earlier")
        raise DataError("data/x.parquet: column 'age' is missing")

    rec = run(config, "churn", body, registry=NoRegistry())
    assert rec.decision == "failed" and rec.reasons[0] == "data/x.parquet: column 'age' is missing"


def test_a_busy_policy_is_refused_with_the_holder_and_nothing_is_written(config) -> None:
    with PolicyLock(config.state_dir, "churn"):
        with pytest.raises(BusyError, match=r"policy 'churn' is busy: another kaizen process \(pid \d+\)"):
            run(config, "churn", lambda ctx: ctx.draft.finish("skipped"), registry=NoRegistry())
        # another policy is not blocked
        assert run(config, "demand", lambda ctx: ctx.draft.finish("skipped"), registry=NoRegistry()).policy == "demand"
    assert [r.policy for r in Ledger(config.ledger_path).records()] == ["demand"]


def test_a_waiting_run_goes_once_the_lock_is_free(config) -> None:
    lock = PolicyLock(config.state_dir, "churn").acquire()
    threading.Timer(0.5, lock.release).start()
    rec = run(config, "churn", lambda ctx: ctx.draft.finish("skipped"), registry=NoRegistry(), wait_seconds=60)
    assert rec.decision == "skipped"


def test_an_unfinished_run_is_recovered_by_the_next_run_of_its_policy(config) -> None:
    """A journal left by a dead process gets its one failed record before the next run starts."""
    journal = Journal(config.state_dir, config.ledger_path)

    class Dead:
        id, policy, kind, run_id, reasons, sections, registered = "20260101T000000Z-churn-dead", "churn", "cycle", \
            None, [], {}, []

    journal.mark("monitored", Dead, {})
    (config.work_dir / Dead.id).mkdir(parents=True)
    rec = run(config, "churn", lambda ctx: ctx.draft.finish("skipped"), registry=NoRegistry())
    got = Ledger(config.ledger_path).records()
    assert [r.id for r in got] == [Dead.id, rec.id]
    assert got[0].decision == "failed" and got[0].reasons[0].startswith("aborted: process died during the trigger")
    assert not (config.work_dir / Dead.id).exists() and journal.pending() == []
