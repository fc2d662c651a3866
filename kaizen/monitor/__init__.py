"""Monitoring: how far a production window has drifted and how the champion does on it.

``run_monitor`` gives the verdicts (Evidently's stattests called directly, the reference side
cached per reference key); ``write_report`` builds Evidently's HTML report for the cycles that
``should_write_report`` picks.

The names below resolve on first access: the policy reader imports :mod:`kaizen.monitor.rules`
(the trigger rules declare ``[trigger]`` settings), which must not load pandas for ``kaizen status``.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["REFERENCE_PROFILES", "ColumnDriftResult", "MonitorResult", "ReferenceCache", "ReferenceProfile",
           "run_monitor", "should_write_report", "write_report"]

_WHERE = {"ColumnDriftResult": "drift", "MonitorResult": "drift", "run_monitor": "drift",
          "REFERENCE_PROFILES": "profile", "ReferenceCache": "profile", "ReferenceProfile": "profile",
          "should_write_report": "report", "write_report": "report"}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
