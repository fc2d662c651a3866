"""The functions the job store names. APScheduler imports them by ``"module:function"``.

A stored job holds only this reference and the model name; the running
:class:`~kaizen.service.daemon.Service` registers itself here when it starts
(one per process), so a job reaches the live policies, journal and metrics.
Keep this module importable under this name: APScheduler deletes stored jobs
whose function no longer imports.
"""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["run_policy"]

log = logging.getLogger("kaizen.service.jobs")

_service: Any = None


def attach(service: Any) -> None:
    global _service
    _service = service


def run_policy(name: str) -> None:
    if _service is None:
        log.error("job for %s fired with no running service; ignored", name)
        return
    _service.run_policy(name)
