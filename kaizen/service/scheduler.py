"""APScheduler 3.x wiring: one job per policy in a persistent SQLAlchemy job store.

Jobs are stored by reference (``"kaizen.service.jobs:run_policy"`` with the
model name as argument), never as callables, so the store survives restarts
and code reloads. Per job: ``max_instances=1``, ``coalesce=True`` (missed runs
collapse into one), ``misfire_grace_time`` from config. One scheduler per job
store: the state-folder lock (:mod:`kaizen.service.lock`) enforces it.
"""

from __future__ import annotations

import logging
from typing import Any

from kaizen.config import ServiceSettings
from kaizen.policy import Policy, ScheduleSpec

__all__ = ["JOB_FUNC", "JOB_PREFIX", "make_scheduler", "make_trigger", "sync_jobs"]

JOB_FUNC = "kaizen.service.jobs:run_policy"
JOB_PREFIX = "cycle:"

log = logging.getLogger("kaizen.service.scheduler")


def make_trigger(schedule: ScheduleSpec) -> Any:
    from apscheduler.triggers.cron import CronTrigger
    from apscheduler.triggers.interval import IntervalTrigger

    if schedule.cron:
        return CronTrigger.from_crontab(schedule.cron, timezone="UTC")
    return IntervalTrigger(seconds=schedule.every_seconds, timezone="UTC")


def make_scheduler(settings: ServiceSettings) -> Any:
    from apscheduler.executors.pool import ThreadPoolExecutor
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler

    return BackgroundScheduler(
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


def next_runs(scheduler: Any) -> dict[str, str | None]:
    out = {}
    for job in scheduler.get_jobs():
        if job.id.startswith(JOB_PREFIX):
            t = job.next_run_time
            out[job.id[len(JOB_PREFIX):]] = t.isoformat(timespec="seconds").replace("+00:00", "Z") if t else None
    return out
