"""The one runner: lock, journal, exactly one record, own-thread CPU billing."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from kaizen.config import load_config
from kaizen.errors import BusyError, DataError
from kaizen.ledger import Ledger
from kaizen.run.journal import Journal
from kaizen.run.locks import PolicyLock
from kaizen.run.runner import RunContext, run


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


# -- a run SIGKILLed after moving the champion alias: recovery writes the record the live run would have -------

_DIES = """
import sys, time
from kaizen.config import load_config
from kaizen.run.journal import Step
from kaizen.run.runner import run

def body(ctx):
    d = ctx.draft
    d.run_id = "run-7"
    d.sections["champion"] = {"version": "1", "holdout_metric": 0.7}
    d.sections["challenger"] = {"version": "2", "metric": "roc_auc", "holdout_metric": 0.8}
    d.reasons.append("drift share 0.40 >= 0.30")
    d.add_cost(build_cpu_seconds=1.25)
    t0 = time.thread_time()
    while time.thread_time() - t0 < 0.3:
        pass
    d.step(Step.PROMOTING, version="2", replaced="1")  # then the alias moves (the fake registry says it did)
    d.sections["champion"].update(promoted="2", replaced="1")
    d.step(Step.PROMOTED, version="2", replaced="1")
    raise AssertionError("KAIZEN_TEST_CRASH_AT should have killed the process")

run(load_config(sys.argv[1]), "churn", body, registry=object(), seed=11)
"""


class MovedAlias:
    """The registry after the dead process moved ``@champion`` to version 2; records what recovery does."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def champion(self, name: str):
        return type("V", (), {"version": "2"})()

    def settle_promotion(self, name, version, old, *, reason, cycle_id, when=None) -> None:
        self.calls.append(("settle", name, version, old, cycle_id))

    def raise_baseline(self, name, metric, value) -> None:
        self.calls.append(("baseline", name, metric, value))

    def finish_run(self, run_id, *, name=None, tags=None, status="FINISHED") -> None:
        self.calls.append(("finish", run_id, name, status, (tags or {}).get("kaizen.decision")))


@pytest.mark.parametrize("point,phase", [("promoting", "the promotion"), ("promoted", "recording")])
def test_a_run_killed_after_the_alias_moved_is_recorded_as_the_live_run_would(config, point, phase) -> None:
    import os
    import signal
    import subprocess
    import sys

    from kaizen.cost import CostModel, today
    from kaizen.run.recovery import recover

    root = Path(__file__).resolve().parents[1]
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("KAIZEN_TEST_")},
           "PYTHONPATH": str(root), "KAIZEN_TEST_CRASH_AT": point}
    out = subprocess.run([sys.executable, "-c", _DIES, str(config.state_dir.parent / "config.toml")], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == -signal.SIGKILL, out.stderr[-2000:]
    journal = Journal(config.state_dir, config.ledger_path)
    [entry] = journal.pending()
    assert entry["step"] == point and entry["cost"]["build_cpu_seconds"] == 1.25

    reg = MovedAlias()
    [rec] = recover(config, journal, policy="churn", registry=reg)
    assert Ledger(config.ledger_path).records() == [rec] and journal.pending() == []
    assert (rec.id, rec.kind, rec.decision, rec.error, rec.seed) == (entry["id"], "cycle", "promoted", None, 11)
    assert rec.reasons == ("promoted version 2 to champion (was 1)",
                           f"recorded at restart from the journal: the process died during {phase}, after the "
                           "champion alias moved",
                           "drift share 0.40 >= 0.30")
    assert rec.champion == {"version": "1", "holdout_metric": 0.7, "promoted": "2", "replaced": "1"}
    assert rec.challenger == {"version": "2", "metric": "roc_auc", "holdout_metric": 0.8}
    cpu = rec.cost["cpu_seconds"]
    assert 0.3 <= cpu < 30 and rec.cost["wall_seconds"] >= cpu * 0.5
    assert rec.cost == {"build_cpu_seconds": 1.25, "cpu_seconds": cpu, "wall_seconds": rec.cost["wall_seconds"],
                        "day": today(), **CostModel().estimate(cpu)}
    assert reg.calls == [("settle", "churn", "2", "1", rec.id), ("baseline", "churn", "roc_auc", 0.8),
                         ("finish", "run-7", "churn · cycle · promoted · v1 vs v2", "FINISHED", "promoted")]
