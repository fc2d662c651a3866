"""Cycles as jobs: a worker runs them in child processes with a deadline; a killed worker's cycle is re-queued and
recovered; a fenced promotion is refused. Real PostgreSQL, real procrastinate, real MLflow (SQLite), real builds."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kaizen.ledger import Ledger
from tests.conftest import PROMOTE, make_home, restore_bootstrap


def _scale_home(root: Path, data: Path, url: str, overrides: dict | None = None, **coordination: object):
    home = make_home(root, data)
    home.write_policy({**PROMOTE, **(overrides or {})})
    extra = "".join(f"{k} = {v!r}\n" if not isinstance(v, str) else f'{k} = "{v}"\n' for k, v in coordination.items())
    (root / "config.toml").write_text(f'[state]\ndir = "state"\n\n[coordination]\nurl = "{url}"\n{extra}')
    return home


def _worker(home, *args: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "kaizen", "--config", str(home.root / "config.toml"), "worker",
                             *args], cwd=home.root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONPATH": os.getcwd(), **(env or {})})


def _records(home) -> list:
    path = home.config().ledger_path
    return Ledger(path).records() if path.exists() else []


def test_a_queued_cycle_runs_in_a_worker_child_and_is_recorded_once(pg_url: str, tmp_path: Path, churn_data: Path
                                                                     ) -> None:
    from kaizen.commands.bootstrap import bootstrap
    from kaizen.scale.queue import app_for, enqueue_cycle, jobs, schema

    home = _scale_home(tmp_path / "home", churn_data, pg_url)
    schema(pg_url)
    cfg = home.config()
    assert cfg.coordination.url == pg_url
    boot = bootstrap(cfg, home.policy())
    assert boot.decision == "promoted"
    home.arrive(3)
    app = app_for(pg_url)
    with app.open():
        first = enqueue_cycle(app, "churn", epoch=None)
        assert first is not None and enqueue_cycle(app, "churn", epoch=None) is None  # one waiting per policy
    done = _worker(home, "--once")
    out, _ = done.communicate(timeout=600)
    assert done.returncode == 0, out[-3000:]
    [job] = jobs(pg_url, policy="churn")
    assert job["status"] == "succeeded" and job["id"] == first
    recs = [r for r in _records(home) if r.kind == "cycle"]
    assert [r.decision for r in recs] == ["promoted"], [r.reasons for r in recs]
    from kaizen.scale.db import connect

    with connect(pg_url) as conn:  # every alias move went through a durable intent, settled
        assert conn.execute("SELECT policy, state, cycle_id FROM kaizen.promotion ORDER BY id").fetchall() == \
            [("churn", "done", boot.id), ("churn", "done", recs[0].id)]
        assert conn.execute("SELECT count(*) FROM kaizen.journal").fetchone()[0] == 0


def test_a_hung_cycle_is_killed_at_its_deadline_and_the_worker_goes_on(pg_url: str, tmp_path: Path,
                                                                       churn_data: Path) -> None:
    from kaizen.scale.queue import app_for, enqueue_cycle, jobs, schema

    home = _scale_home(tmp_path / "home", churn_data, pg_url, cycle_deadline_seconds=20.0)
    schema(pg_url)
    assert restore_bootstrap(home, PROMOTE).decision == "promoted"  # the session's real bootstrap, copied
    home.arrive(3)
    app = app_for(pg_url)
    with app.open():
        enqueue_cycle(app, "churn", epoch=None)
    # the cycle hangs once it starts building (a test hook of the journal: kaizen/run/journal.py)
    done = _worker(home, "--once", env={"KAIZEN_TEST_PAUSE_AT": "building=600"})
    out, _ = done.communicate(timeout=600)
    assert done.returncode == 0, out[-3000:]
    assert "passed its deadline of 20 s and was killed" in out, out[-5000:]
    [job] = jobs(pg_url, policy="churn")
    assert job["status"] == "succeeded"  # the worker finished the job (with its killed cycle), and lives on
    recs = [r for r in _records(home) if r.kind == "cycle"]
    assert len(recs) == 1 and recs[0].decision == "failed", [r.reasons for r in recs]
    # killed where it hung (the build), or earlier when a loaded machine is slower than the deadline
    assert recs[0].reasons[0].startswith("aborted: process died during"), recs[0].reasons


def test_a_worker_killed_mid_cycle_has_its_job_requeued_and_its_run_recovered_exactly_once(
        pg_url: str, tmp_path: Path, churn_data: Path) -> None:
    from kaizen.scale.queue import app_for, enqueue_cycle, jobs, retry_stalled, schema

    home = _scale_home(tmp_path / "home", churn_data, pg_url, heartbeat_seconds=1.0, stalled_seconds=3.0)
    schema(pg_url)
    assert restore_bootstrap(home, PROMOTE).decision == "promoted"  # the session's real bootstrap, copied
    home.arrive(3)
    app = app_for(pg_url)
    with app.open():
        enqueue_cycle(app, "churn", epoch=None)
    doomed = _worker(home, env={"KAIZEN_TEST_PAUSE_AT": "building=600"})
    try:
        deadline = time.monotonic() + 300
        while not any(j["status"] == "doing" for j in jobs(pg_url)) or _journal_step(pg_url) != "building":
            assert time.monotonic() < deadline, "the worker never reached the cycle's build"
            time.sleep(0.5)
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(timeout=30)
    finally:
        if doomed.poll() is None:
            doomed.kill()
    # its child died with it (PR_SET_PDEATHSIG): nothing is left running the cycle
    deadline = time.monotonic() + 60
    while _journal_rows(pg_url) and _lock_held(pg_url):
        assert time.monotonic() < deadline, "the killed worker's child still holds the policy"
        time.sleep(0.5)
    deadline = time.monotonic() + 60
    while not retry_stalled(pg_url, seconds_since_heartbeat=3.0):
        assert time.monotonic() < deadline, "the dead worker's job was never found stalled"
        time.sleep(1.0)
    second = _worker(home, "--once")
    out, _ = second.communicate(timeout=600)
    assert second.returncode == 0, out[-3000:]
    recs = [r for r in _records(home) if r.kind == "cycle"]
    assert [r.decision for r in recs] == ["failed", "promoted"], [r.reasons for r in recs]
    assert recs[0].reasons[0].startswith("aborted: process died during the challenger build")  # exactly one record
    [job] = jobs(pg_url, policy="churn")
    assert job["status"] == "succeeded" and job["attempts"] >= 1
    assert _journal_rows(pg_url) == 0


def _journal_rows(url: str) -> int:
    from kaizen.scale.db import connect

    with connect(url) as conn:
        return int(conn.execute("SELECT count(*) FROM kaizen.journal").fetchone()[0])


def _journal_step(url: str) -> str | None:
    from kaizen.scale.db import connect

    with connect(url) as conn:
        row = conn.execute("SELECT step FROM kaizen.journal").fetchone()
    return row[0] if row else None


def _lock_held(url: str) -> bool:
    from kaizen.scale.lock import PgPolicyLock

    probe = PgPolicyLock(url, "churn")
    if probe.try_acquire():
        probe.release()
        return False
    return True


@pytest.mark.parametrize("stale", [True, False])
def test_a_promotion_under_an_old_epoch_is_fenced(pg_url: str, tmp_path: Path, churn_data: Path, stale: bool) -> None:
    """The job was enqueued by a leader; a newer leader took over before the worker promoted: refused, recorded."""
    from kaizen.scale.db import connect
    from kaizen.scale.lease import Lease
    from kaizen.scale.queue import app_for, enqueue_cycle, schema

    home = _scale_home(tmp_path / "home", churn_data, pg_url)
    schema(pg_url)
    assert restore_bootstrap(home, PROMOTE).decision == "promoted"  # the session's real bootstrap, copied
    home.arrive(3)
    epoch = Lease(pg_url, holder="leader-1").acquire().epoch
    app = app_for(pg_url)
    with app.open():
        enqueue_cycle(app, "churn", epoch=epoch)
    if stale:  # the leader is deposed before the worker runs the job
        with connect(pg_url) as conn:
            conn.execute("UPDATE kaizen.lease SET expires_at = now() - interval '1 second'")
        assert Lease(pg_url, holder="leader-2").acquire().epoch == epoch + 1
    done = _worker(home, "--once")
    out, _ = done.communicate(timeout=600)
    assert done.returncode == 0, out[-3000:]
    [rec] = [r for r in _records(home) if r.kind == "cycle"]
    from kaizen.registry import Registry

    champion = Registry.from_config(home.config()).champion("churn").version
    if stale:
        assert rec.decision == "rejected" and "the epoch is now" in rec.reasons[0], rec.reasons
        assert champion == "1"  # never moved
    else:
        assert rec.decision == "promoted" and champion == rec.champion["promoted"]
