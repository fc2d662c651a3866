"""Two real ``kaizen run`` replicas and a ``kaizen worker`` on PostgreSQL and a real MLflow server.

Exactly one replica leads (``/readyz`` 200) while the other stands by (503, ``standby``); the leader
killed with SIGKILL is replaced within ``lease_seconds`` plus one renewal period at epoch + 1 and the
cycles go on; a leader paused (SIGSTOP) until it was deposed wakes up (SIGCONT), cannot queue under its
old epoch and steps down. Over the whole run: every window of the policy judged once, every version
promoted once. Every wait is a condition polled with a timeout.
"""

from __future__ import annotations

import signal
import time
import uuid
from pathlib import Path

import pytest

from kaizen.past import is_window
from tests.conftest import PROMOTE
from tests.scale._homes import Proc, records, scale_config, scale_home, start, wait_for

#: one xdist worker runs every test of the session's MLflow server (it starts once there)

LEASE = 3.0          # [coordination] lease_seconds: the leader renews every LEASE / 3
RENEWAL = LEASE / 3
SLACK = 5.0          # process start-up and polling on a loaded 2-core machine; not part of the bound tested


def _lease(url: str) -> tuple[str, int]:
    from kaizen.scale.db import connect

    with connect(url) as conn:
        row = conn.execute("SELECT holder, epoch FROM kaizen.lease WHERE name = 'scheduler'").fetchone()
    return (row[0], int(row[1])) if row else ("", 0)


def _jobs(url: str) -> list[tuple[int, int | None, str]]:
    from kaizen.scale.db import connect

    with connect(url) as conn:
        rows = conn.execute("SELECT id, (args->>'epoch')::bigint, status::text FROM procrastinate_jobs "
                            "ORDER BY id").fetchall()
    return [(int(i), None if e is None else int(e), st) for i, e, st in rows]


def _leaders(*procs: Proc) -> tuple[list[Proc], list[Proc]] | None:
    """(the replicas that answer /readyz 200, those that answer 503 saying standby) once every one answers."""
    answers = [(p, p.ready()) for p in procs]
    if any(a is None for _, a in answers):
        return None
    leading = [p for p, (code, _) in answers if code == 200]
    standing = [p for p, (code, body) in answers if code == 503 and body.get("scheduler") == "standby"]
    return (leading, standing) if len(leading) + len(standing) == len(procs) else None


def _one_leader(*procs: Proc) -> tuple[Proc, list[Proc]] | None:
    seen = _leaders(*procs)
    if seen is None or len(seen[0]) != 1:
        return None
    return seen[0][0], seen[1]


@pytest.mark.timeout(1500)  # 3-4 minutes on an idle 2-core machine, plus the MLflow server start; more under load
def test_two_replicas_one_leader_failover_and_a_deposed_leader_fenced(pg_url: str, mlflow_server, tmp_path: Path,
                                                                      churn_data: Path) -> None:
    from kaizen.commands.bootstrap import bootstrap
    from kaizen.config import load_config
    from kaizen.policy import load_policy
    from kaizen.scale.queue import schema

    model = f"churn_r{uuid.uuid4().hex[:8]}"
    home = scale_home(tmp_path / "home", churn_data,
                      {**PROMOTE, "model": {"name": model}, "schedule": {"every": "2s"}})
    coord = dict(lease_seconds=LEASE, heartbeat_seconds=1.0, stalled_seconds=5.0, lock_wait_seconds=5.0)
    cfg = {role: scale_config(home, role, url=pg_url, server=mlflow_server, model=model, **coord)
           for role in ("a", "b", "w")}
    schema(pg_url)
    boot = bootstrap(load_config(cfg["w"]), load_policy(home.root / "policies" / "churn.toml"))
    assert boot.decision == "promoted", boot.reasons
    home.arrive(3)  # concept drift: the first cycle promotes

    procs: list[Proc] = []
    try:
        worker = start(cfg["w"], "w", "worker", "--name", "w1")
        a = start(cfg["a"], "a", "run")
        b = start(cfg["b"], "b", "run")
        procs += [worker, a, b]
        leader, [standby] = wait_for("one replica leads and the other stands by", lambda: _one_leader(a, b),
                                     timeout=120, procs=(a, b))
        holder, epoch = _lease(pg_url)
        assert holder.endswith(f":{leader.pid}")
        body = standby.ready()[1]
        assert body["leader"] == holder and body["epoch"] == epoch

        # cycles are queued by the leader and run by the worker: the promoting window, then quiet ticks
        wait_for("the worker promoted the drifted window and ran a later, quiet cycle",
                 lambda: any(r.decision == "promoted" and r.kind == "cycle" for r in records(home, model))
                 and records(home, model)[-1].decision == "skipped",
                 timeout=300, procs=(worker, leader))

        # SIGKILL the leader: the standby takes over within the lease plus one renewal period, at epoch + 1
        leader.popen.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        leader.popen.wait(timeout=30)
        wait_for("the standby leads", lambda: (standby.ready() or (0,))[0] == 200, timeout=LEASE + RENEWAL + SLACK,
                 procs=(standby,))
        took = time.monotonic() - killed_at
        holder2, epoch2 = _lease(pg_url)
        assert holder2.endswith(f":{standby.pid}") and epoch2 == epoch + 1, (holder2, epoch2, took)

        # cycles go on under the new epoch: a new batch is judged once
        before = len(records(home, model))
        home.arrive(4)
        wait_for("a cycle queued under the new epoch ran and judged batch 4",
                 lambda: any(e == epoch2 and st == "succeeded" for _, e, st in _jobs(pg_url))
                 and any("batch_004.parquet" in (r.window.get("batches") or []) for r in records(home, model)[before:]),
                 timeout=300, procs=(worker, standby))

        # the killed replica comes back as a standby; the leader is paused until it is deposed, then woken up
        again = start(leader.config, leader.role, "run")  # its own state folder, as on its own host
        procs.append(again)
        wait_for("the restarted replica stands by", lambda: _one_leader(standby, again) == (standby, [again]),
                 timeout=120, procs=(again, standby))
        standby.popen.send_signal(signal.SIGSTOP)
        try:
            wait_for("the restarted replica takes over from the paused leader",
                     lambda: _lease(pg_url)[1] == epoch2 + 1 and (again.ready() or (0,))[0] == 200,
                     timeout=LEASE + RENEWAL + SLACK, procs=(again,))
            time.sleep(RENEWAL)  # the paused leader's schedule is overdue when it wakes: its ticks fire at once
        finally:
            standby.popen.send_signal(signal.SIGCONT)
        wait_for("the deposed leader steps down", lambda: _one_leader(standby, again) == (again, [standby]),
                 timeout=LEASE + SLACK, procs=(standby, again))
        holder3, epoch3 = _lease(pg_url)
        assert holder3.endswith(f":{again.pid}") and epoch3 == epoch2 + 1
        wait_for("a cycle queued under the third epoch ran",
                 lambda: any(e == epoch3 and st == "succeeded" for _, e, st in _jobs(pg_url)), timeout=120,
                 procs=(worker, again))
        # nothing was queued under epoch 2 once epoch 3 led: every epoch's jobs come before the next epoch's
        jobs = _jobs(pg_url)
        for old, new in ((epoch, epoch2), (epoch2, epoch3)):
            olds, news = [i for i, e, _ in jobs if e == old], [i for i, e, _ in jobs if e == new]
            assert olds and news and max(olds) < min(news), (old, new, jobs)
        log = standby.output()
        assert "no longer leading" in log or "fenced:" in log, log[-3000:]
    finally:
        for p in procs:
            p.stop()

    recs = records(home, model)
    assert not [r for r in recs if r.decision == "failed"], [(r.id, r.reasons) for r in recs if r.decision == "failed"]
    # every window judged once: no two window records of one policy share a window
    windows = [r.window.get("digest") or tuple(r.window.get("batches", ())) for r in recs if is_window(r)]
    assert len(windows) >= 2 and len(windows) == len(set(windows)), windows
    # every version promoted once, through a settled intent; the promotion log agrees with kaizen.promotion
    from kaizen.scale.db import connect

    with connect(pg_url) as conn:
        rows = conn.execute("SELECT version, state FROM kaizen.promotion WHERE policy = %s ORDER BY id",
                            (model,)).fetchall()
    versions = [v for v, st in rows if st == "done"]
    assert all(st == "done" for _, st in rows) and len(versions) == len(set(versions)), rows
    promoted = [boot.champion.get("version")] + [r.champion.get("promoted") for r in recs
                                                  if r.kind == "cycle" and r.decision == "promoted"]
    assert versions == [str(v) for v in promoted], (versions, promoted)

