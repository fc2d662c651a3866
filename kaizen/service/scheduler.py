"""APScheduler 3.x wiring: one job per policy in a persistent SQLAlchemy job store.

Jobs are stored by reference (``"kaizen.service.jobs:run_policy"`` with the
model name as argument), never as callables, so the store survives restarts
and code reloads. Per job: ``max_instances=1``, ``coalesce=True`` (missed runs
collapse into one), ``misfire_grace_time`` from config. One scheduler per job
store: the state-folder lock (:mod:`kaizen.service.lock`) enforces it.

The scheduler is :class:`ServiceScheduler`: its loop runs on a thread of ours, so
that a loop that fails (APScheduler updates each job's next run time in the store
from the loop; on a full disk that raises) shuts the scheduler down where
everyone can see it: ``scheduler.running`` turns False and listeners hear
``EVENT_SCHEDULER_SHUTDOWN``. No private attribute of APScheduler is read.
"""

from __future__ import annotations

import logging
import threading
from contextlib import suppress
from typing import Any

from apscheduler.events import EVENT_SCHEDULER_STARTED
from apscheduler.schedulers import SchedulerNotRunningError
from apscheduler.schedulers.blocking import BlockingScheduler

from kaizen.config import ServiceSettings
from kaizen.ledger import iso_utc
from kaizen.policy import Policy, ScheduleSpec

__all__ = ["JOB_FUNC", "JOB_PREFIX", "ServiceScheduler", "make_scheduler", "make_trigger", "next_runs", "sync_jobs"]

JOB_FUNC = "kaizen.service.jobs:run_policy"
JOB_PREFIX = "cycle:"

log = logging.getLogger("kaizen.service.scheduler")


def make_trigger(schedule: ScheduleSpec) -> Any:
    from apscheduler.triggers.cron import CronTrigger
    from apscheduler.triggers.interval import IntervalTrigger

    if schedule.cron:
        return CronTrigger.from_crontab(schedule.cron, timezone="UTC")
    return IntervalTrigger(seconds=schedule.every_seconds, timezone="UTC")


class ServiceScheduler(BlockingScheduler):
    """APScheduler's blocking scheduler, its loop on a daemon thread (``kaizen-scheduler``) that we own.

    :meth:`start` returns once the scheduler has started (``EVENT_SCHEDULER_STARTED``), paused or
    not, like ``BackgroundScheduler``; an error while starting is raised to the caller. When the loop
    raises later (the job store cannot be written), ``BackgroundScheduler``'s thread just ends while
    the scheduler still says it runs; here the error is logged and the scheduler shut down, so
    ``running`` is False and ``EVENT_SCHEDULER_SHUTDOWN`` listeners are told. Running jobs finish.
    """

    def start(self, paused: bool = False) -> None:
        started = threading.Event()  # set by EVENT_SCHEDULER_STARTED, or when the thread ends without it
        up: list[bool] = []
        failed: list[BaseException] = []

        def on_started(event: Any) -> None:
            up.append(True)
            started.set()

        self.add_listener(on_started, EVENT_SCHEDULER_STARTED)
        try:
            threading.Thread(target=self._serve, args=(paused, started, failed), name="kaizen-scheduler",
                             daemon=True).start()
            started.wait()
        finally:
            self.remove_listener(on_started)
        if not up:
            raise failed[0] if failed else RuntimeError("the scheduler did not start")

    def _serve(self, paused: bool, started: threading.Event, failed: list[BaseException]) -> None:
        try:
            BlockingScheduler.start(self, paused=paused)  # returns when the scheduler is shut down
        except BaseException as exc:
            failed.append(exc)
            if started.is_set():  # the loop failed: say so, and stop where the service sees it
                log.error("the scheduler stopped: its loop failed (%s: %s); no cycle runs until the daemon "
                          "restarts", type(exc).__name__, exc, exc_info=exc)
                with suppress(SchedulerNotRunningError):  # the service may be stopping it at the same time
                    self.shutdown(wait=False)
        finally:
            started.set()


def make_scheduler(settings: ServiceSettings) -> ServiceScheduler:
    from apscheduler.executors.pool import ThreadPoolExecutor
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore

    return ServiceScheduler(
        jobstores={"default": SQLAlchemyJobStore(url=settings.jobstore_url)},
        executors={"default": ThreadPoolExecutor(settings.workers)},
        job_defaults={"coalesce": True, "max_instances": 1,
                      "misfire_grace_time": settings.misfire_grace_seconds},
        timezone="UTC",
    )


def sync_jobs(scheduler: Any, policies: dict[str, Policy]) -> None:
    """Make the job store hold exactly one job per policy, with the policy's schedule.

    A job whose trigger is unchanged is left alone, so its stored next run time
    (and a run missed while the daemon was down) survives a restart.
    """
    want = {f"{JOB_PREFIX}{name}": pol for name, pol in policies.items()}
    existing = {job.id: job for job in scheduler.get_jobs()}
    for jid in existing:
        if jid.startswith(JOB_PREFIX) and jid not in want:
            scheduler.remove_job(jid)
            log.info("unscheduled %s", jid[len(JOB_PREFIX):])
    for jid, pol in want.items():
        trigger = make_trigger(pol.schedule)
        job = existing.get(jid)
        if job is not None and str(job.trigger) == str(trigger) and job.func_ref == JOB_FUNC:
            continue
        scheduler.add_job(JOB_FUNC, trigger=trigger, args=[pol.name], id=jid, name=pol.name,
                          replace_existing=True)
        log.info("scheduled %s %s", pol.name, pol.schedule.describe())


def next_runs(jobs: Any) -> dict[str, str | None]:
    """Each policy's next run time (``2026-11-26T14:45:00Z``, None when paused) from APScheduler jobs: a
    scheduler's ``get_jobs()`` or a job store's ``get_all_jobs()``."""
    out = {}
    for job in jobs:
        if job.id.startswith(JOB_PREFIX):
            t = job.next_run_time
            out[job.id[len(JOB_PREFIX):]] = iso_utc(t.timestamp()) if t else None
    return out
