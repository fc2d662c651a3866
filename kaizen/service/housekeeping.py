"""The service's housekeeping: a retention sweep (:mod:`kaizen.commands.retention`) every ``[retention] every``.

The daemon calls :func:`schedule` once its scheduler exists. The job is stored by reference
(``"kaizen.service.housekeeping:sweep"``, no arguments), like the cycle jobs of
:mod:`kaizen.service.jobs`: keep this module importable under this name, or APScheduler deletes
the stored job. Its id does not start with ``cycle:``, so syncing the policies' jobs leaves it be.
A sweep runs on a scheduler worker thread next to the cycles; what a running cycle uses (its
work folder, the champion, the challenger, the newest reports) is never planned for deletion.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

__all__ = ["JOB_FUNC", "JOB_ID", "schedule", "sweep"]

log = logging.getLogger("kaizen.service.housekeeping")

JOB_ID = "housekeeping:retention"
JOB_FUNC = "kaizen.service.housekeeping:sweep"

_config: Any = None
_stop: threading.Event | None = None


def schedule(scheduler: Any, config: Any, *, stop: threading.Event | None = None) -> None:
    """Make ``scheduler`` run :func:`sweep` every ``config.retention.every_seconds`` (none if disabled).

    ``stop`` (the service's stop event) ends a running sweep between two deletions. An unchanged
    job keeps its stored next run time across restarts.
    """
    global _config, _stop
    _config, _stop = config, stop
    settings = config.retention
    job = scheduler.get_job(JOB_ID)
    if not settings.enabled:
        if job is not None:
            scheduler.remove_job(JOB_ID)
        log.info("retention disabled ([retention] enabled = false)")
        return
    from apscheduler.triggers.interval import IntervalTrigger

    from kaizen.policy import format_duration

    trigger = IntervalTrigger(seconds=settings.every_seconds, timezone="UTC")
    if job is not None and str(job.trigger) == str(trigger) and job.func_ref == JOB_FUNC:
        return
    scheduler.add_job(JOB_FUNC, trigger=trigger, id=JOB_ID, name="retention", replace_existing=True)
    log.info("retention scheduled every %s", format_duration(settings.every_seconds))


def sweep() -> None:
    """One retention sweep of the running service's state; problems are logged, never raised."""
    from kaizen.redact import redact

    config = _config
    if config is None:
        log.error("retention job fired with no running service; ignored")
        return
    try:
        from kaizen.commands.retention import run
        from kaizen.registry import Registry

        registry = Registry.from_config(config)
        plan, result = run(config, registry, stop=_stop)
    except Exception as exc:  # the next sweep tries again; the cycles go on
        log.error("retention sweep failed: %s", redact(f"{type(exc).__name__}: {exc}"))
        return
    for note in plan.notes:
        log.warning("retention: %s", redact(note))
    if result is not None:
        log.info("retention: deleted %d item(s), %.1f MB freed%s%s", len(result.deleted),
                 result.bytes_freed / 1e6, f"; {len(result.failed)} failed" if result.failed else "",
                 "; stopped early" if result.stopped else "")
