"""Monitoring: how far a production window has drifted and how the champion does on it.

``run_monitor`` gives the verdicts (Evidently's stattests called directly, the reference side
cached per reference key); ``write_report`` builds Evidently's HTML report for the cycles that
``should_write_report`` picks.
"""

from __future__ import annotations

from kaizen.monitor.drift import ColumnDriftResult, MonitorResult, run_monitor
from kaizen.monitor.profile import REFERENCE_PROFILES, ReferenceCache, ReferenceProfile
from kaizen.monitor.report import should_write_report, write_report

__all__ = ["REFERENCE_PROFILES", "ColumnDriftResult", "MonitorResult", "ReferenceCache", "ReferenceProfile",
           "run_monitor", "should_write_report", "write_report"]
