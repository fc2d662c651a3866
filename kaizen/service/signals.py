"""Signals of the daemon: SIGTERM/SIGINT stop gracefully (a second one aborts), SIGHUP reloads policies.

Handlers only post a command to the main loop's queue (``queue.SimpleQueue``
is safe to use from a signal handler); the abort path flushes the log and
leaves with ``os._exit`` so no thread can hold the process up. A cycle cut
short that way is settled at the next start (:mod:`kaizen.run.recovery`).
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import sys
from typing import Any

__all__ = ["install"]

log = logging.getLogger("kaizen.service")

ABORT_CODE = 1


def install(commands: queue.SimpleQueue) -> None:
    count = {"stop": 0}

    def on_stop(signum: int, _frame: Any) -> None:
        count["stop"] += 1
        if count["stop"] == 1:
            commands.put("stop")
            return
        log.error("%s again: aborting now; running cycles are recovered at the next start",
                  signal.Signals(signum).name)
        for h in logging.getLogger("kaizen").handlers:
            h.flush()
        sys.stderr.flush()
        os._exit(ABORT_CODE)

    def on_hup(_signum: int, _frame: Any) -> None:
        commands.put("reload")

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGHUP, on_hup)
