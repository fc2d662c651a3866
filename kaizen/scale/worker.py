"""``kaizen worker``: take cycles from the queue, each in a child process with a deadline.

A worker is a procrastinate worker (:mod:`kaizen.scale.queue`) that stays small: it never imports
the ML stack itself. Each job forks a child from a fork server that imported the stack once
(:mod:`kaizen.scale.child`), waits for it up to ``[coordination] cycle_deadline_seconds``, and:

* the child ends: its summary (record id, decision) is the job's result; the memory it used is
  returned to the system with it;
* the deadline passes: the child is killed (SIGKILL), a second child settles the dead run from the
  journal (one ``failed`` record: aborted), and the worker takes its next job — a hung cycle never
  takes the worker down;
* the worker itself is killed: its end of the child's lifeline pipe closes and the child kills
  itself at once (the fork server keeps children alive, so the parent's death alone would not), the
  job's heartbeat stops, the leader re-queues it (:func:`kaizen.scale.queue.retry_stalled`) and the
  next run of the policy recovers the dead run before it starts — exactly one record for it.

``concurrency`` jobs run at once (each its own child; one policy never twice: its queue lock and its
policy lock). SIGTERM stops taking jobs and waits ``shutdown_grace_seconds`` for the running ones.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["WorkerContext", "run_worker"]

log = logging.getLogger("kaizen.scale.worker")


@dataclass
class WorkerContext:
    """What every job of one worker process shares: its config file, the fork server, the counters."""

    config_path: Path
    deadline_seconds: float
    mp: Any = field(default=None, repr=False)
    done: int = 0
    killed: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        from kaizen.scale.child import PRELOAD

        if self.mp is None:
            self.mp = multiprocessing.get_context("forkserver")
            self.mp.set_forkserver_preload(PRELOAD)

    def _child(self, target: Any, *args: Any, deadline: float) -> tuple[dict[str, Any] | None, bool]:
        """Run ``target(*args, pipe)`` in a fork of the fork server; (its summary or None, killed at deadline)."""
        recv, send = self.mp.Pipe(duplex=False)
        life_r, life_w = self.mp.Pipe(duplex=False)  # the lifeline: EOF in the child when this worker dies
        proc = self.mp.Process(target=target, args=(*args, send, life_r), daemon=False)
        proc.start()
        send.close()
        life_r.close()
        proc.join(deadline)
        killed = proc.is_alive()
        if killed:
            proc.kill()
            proc.join(30)
        summary = None
        try:
            if recv.poll(0.5):
                summary = recv.recv()
        except (EOFError, OSError):  # the child died before it could send one (killed, or crashed)
            summary = None
        recv.close()
        life_w.close()
        return summary, killed

    def run_job(self, *, policy: str, epoch: int | None, job_id: int | None, enqueued: str = "") -> dict[str, Any]:
        try:
            return self._run_job(policy=policy, epoch=epoch, job_id=job_id, enqueued=enqueued)
        except Exception:
            log.exception("job %s of %s: the worker could not run it", job_id, policy)
            raise

    def _run_job(self, *, policy: str, epoch: int | None, job_id: int | None, enqueued: str = "") -> dict[str, Any]:
        from kaizen.scale import child

        t0 = time.monotonic()
        log.info("job %s: cycle of %s (epoch %s, queued %s)", job_id, policy, epoch, enqueued)
        summary, killed = self._child(child.main, str(self.config_path), policy, epoch, job_id,
                                      deadline=self.deadline_seconds)
        if killed:
            with self._lock:
                self.killed += 1
            log.error("job %s: the cycle of %s passed its deadline of %.0f s and was killed; settling its run",
                      job_id, policy, self.deadline_seconds)
            settled, _ = self._child(child.recover, str(self.config_path), policy, deadline=300.0)
            summary = {"policy": policy, "job": job_id, "killed": "deadline",
                       "deadline_seconds": self.deadline_seconds, "recovered": (settled or {}).get("recovered")}
        elif summary is None:
            summary = {"policy": policy, "job": job_id, "error": "the cycle's process ended without a summary"}
        with self._lock:
            self.done += 1
        summary["seconds"] = round(time.monotonic() - t0, 3)
        log.info("job %s: %s", job_id, summary)
        return summary


def run_worker(config: Any, *, config_path: Path, concurrency: int = 1, wait: bool = True,
               name: str | None = None) -> None:
    """Work the queue until stopped (SIGTERM/SIGINT), or until it is empty when ``wait`` is False."""
    from kaizen.scale.queue import QUEUE, app_for

    coord = config.coordination
    ctx = WorkerContext(Path(config_path).resolve(), coord.cycle_deadline_seconds)
    app = app_for(coord.url)
    log.info("kaizen worker %s: concurrency %d, deadline %.0f s per cycle, queue %s", name or "", concurrency,
             coord.cycle_deadline_seconds, QUEUE)
    app.run_worker(queues=[QUEUE], concurrency=concurrency, wait=wait, name=name,
                   additional_context={"kaizen": ctx}, listen_notify=True,
                   update_heartbeat_interval=coord.heartbeat_seconds,
                   stalled_worker_timeout=coord.stalled_seconds,
                   shutdown_graceful_timeout=coord.shutdown_grace_seconds, delete_jobs="never")
