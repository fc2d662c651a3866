"""Cycles as jobs in a PostgreSQL-backed queue (procrastinate), one lock per policy.

The leader's schedule does not run a cycle, it enqueues one (:func:`enqueue_cycle`): a job of task
``kaizen.cycle`` on queue ``kaizen`` with ``lock = queueing_lock = "policy:<name>"`` — procrastinate
never runs two jobs with one lock at once (never two cycles of one policy, on any host) and refuses
to queue a second while one waits (a tick missed while the queue was busy is not a backlog). The job
carries the leader's epoch: a promotion it makes is fenced by it (:mod:`kaizen.scale.fence`).

A leader's enqueue is itself fenced: the job row is inserted in one transaction with a ``FOR SHARE``
read of the lease row that must still be this holder's, unexpired, at this epoch. A takeover (which
updates that row) waits for the insert to commit, so every job in the queue was enqueued while its
epoch was the live one; a deposed leader that wakes up (SIGSTOP, a long GC pause, a partition that
healed) is refused (:class:`NotLeading`) before anything is queued, and steps down.

A worker that dies mid-job (SIGKILL, a lost host) stops its heartbeat; :func:`retry_stalled` puts
its jobs back in the queue (the leader runs it on every housekeeping tick), and the next run of
the policy recovers the dead run from the journal (:mod:`kaizen.scale.journal`) before it starts.

Why procrastinate and not Celery: the database MLflow and Optuna already need is the only service
to operate; a job's lock, its queueing lock, worker heartbeats and stalled-job retrieval are
PostgreSQL rows; and a cycle that runs longer than a broker's visibility timeout (Redis) or
consumer timeout (RabbitMQ, 30 min) is never delivered twice — it is re-queued only when its
worker's heartbeat stops (docs/scale-out.md).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

from kaizen.errors import KaizenError
from kaizen.scale.db import conninfo

__all__ = ["CYCLE_TASK", "QUEUE", "NotLeading", "app_for", "enqueue_cycle", "jobs", "retry_stalled", "schema"]

log = logging.getLogger("kaizen.scale.queue")

QUEUE = "kaizen"
CYCLE_TASK = "kaizen.cycle"


class NotLeading(KaizenError):
    """An enqueue refused: the lease is no longer this holder's at this epoch (a newer leader took over)."""


def _blueprint() -> Any:
    import procrastinate

    bp = procrastinate.Blueprint()

    @bp.task(name=CYCLE_TASK, queue=QUEUE, pass_context=True)
    def cycle(context: Any, policy: str, epoch: int | None = None, enqueued: str = "") -> dict[str, Any]:
        """Run one cycle of ``policy`` in a child process of the worker (:mod:`kaizen.scale.worker`)."""
        worker = context.additional_context["kaizen"]
        return worker.run_job(policy=policy, epoch=epoch, job_id=context.job.id, enqueued=enqueued)

    return bp


def app_for(url: str) -> Any:
    """A procrastinate App on ``url`` with Kaizen's tasks (one per process; open it before use)."""
    import procrastinate

    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=conninfo(url)))
    app.add_tasks_from(_blueprint(), namespace="")
    return app


def schema(url: str) -> bool:
    """Apply procrastinate's schema to ``url`` once (False: it was there already). Part of ``kaizen db upgrade``."""
    from kaizen.scale.db import connect

    with connect(url) as conn:
        if conn.execute("SELECT to_regclass('public.procrastinate_jobs') IS NOT NULL").fetchone()[0]:
            return False
    app = app_for(url)
    with app.open():
        app.schema_manager.apply_schema()
    return True


def enqueue_cycle(app: Any, policy: str, *, epoch: int | None, url: str | None = None,
                  holder: str | None = None, lease: str = "scheduler") -> int | None:
    """Queue one cycle of ``policy`` (the app open); its job id, or None when one is already waiting.

    With ``url`` and ``holder`` (a leader's tick) the insert is fenced: it commits only if lease ``lease`` at
    ``url`` is still ``holder``'s, unexpired, at ``epoch`` — else :class:`NotLeading` and nothing is queued.
    Without them (tests, a person's command) the job is queued unconditionally.
    """
    import procrastinate

    lock = f"policy:{policy}"
    args = {"policy": policy, "epoch": epoch, "enqueued": datetime.now(UTC).isoformat(timespec="seconds")}
    task = app.tasks[CYCLE_TASK]
    if url is None or holder is None:
        try:
            return task.configure(lock=lock, queueing_lock=lock).defer(**args)
        except procrastinate.exceptions.AlreadyEnqueued:
            log.info("%s: a cycle is already waiting in the queue; not queued twice", policy)
            return None
    from kaizen.scale.db import connect

    with connect(url, autocommit=False) as conn:
        row = conn.execute("SELECT epoch FROM kaizen.lease WHERE name = %s AND holder = %s AND expires_at > now() "
                           "FOR SHARE", (lease, holder)).fetchone()
        if row is None or int(row[0]) != int(epoch if epoch is not None else -1):
            conn.rollback()
            now = conn.execute("SELECT holder, epoch, expires_at > now() FROM kaizen.lease WHERE name = %s",
                               (lease,)).fetchone()
            conn.rollback()
            seen = "nobody" if now is None else f"{now[0]} at epoch {now[1]}{'' if now[2] else ' (expired)'}"
            raise NotLeading(f"{policy}: not queued: this replica ({holder}) led at epoch {epoch}, but the lease "
                             f"is held by {seen}")
        try:
            job = task.configure(lock=lock, queueing_lock=lock, connection=conn).defer(**args)
        except procrastinate.exceptions.AlreadyEnqueued:
            conn.rollback()
            log.info("%s: a cycle is already waiting in the queue; not queued twice", policy)
            return None
        conn.commit()
        return job


def retry_stalled(url: str, *, seconds_since_heartbeat: float = 30.0) -> list[int]:
    """Put back in the queue the jobs of workers whose heartbeat stopped; their ids."""
    app = app_for(url)

    async def sweep() -> list[int]:
        async with app.open_async():
            stalled = list(await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=seconds_since_heartbeat))
            for job in stalled:
                await app.job_manager.retry_job(job)
            return [int(j.id) for j in stalled if j.id is not None]

    done = asyncio.run(sweep())
    if done:
        log.warning("re-queued %d job(s) of worker(s) whose heartbeat stopped: %s", len(done), done)
    return done


def jobs(url: str, *, policy: str | None = None) -> list[dict[str, Any]]:
    """The queue's cycle jobs (id, policy, status, attempts), oldest first: for status pages and tests."""
    from kaizen.scale.db import connect

    with connect(url) as conn:
        rows = conn.execute("SELECT id, args, status::text, attempts FROM procrastinate_jobs WHERE task_name = %s "
                            "ORDER BY id", (CYCLE_TASK,)).fetchall()
    out = [{"id": i, "policy": (a or {}).get("policy"), "epoch": (a or {}).get("epoch"), "status": st,
            "attempts": n} for i, a, st, n in rows]
    return [j for j in out if policy is None or j["policy"] == policy]
