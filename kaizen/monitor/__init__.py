"""Monitoring: how far a production window has drifted and how the champion does on it."""

from __future__ import annotations

from kaizen.monitor.drift import ColumnDriftResult, MonitorResult, run_monitor

__all__ = ["ColumnDriftResult", "MonitorResult", "run_monitor"]
