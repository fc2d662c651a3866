"""What a cycle costs: CPU seconds, an energy estimate, and the policy's daily compute budget.

Energy is estimated from CPU time, not measured: ``kWh = cpu_seconds x
watts_per_core / 3.6e6`` and ``gCO2 = kWh x grid_gco2_per_kwh``, with both
factors from ``[cost]`` in config.toml. CPU seconds are those of the thread
that ran the cycle (``time.thread_time``), so a cycle's number depends neither on
what else the machine runs nor on other cycles running in the same process.

A policy may cap its spend per day (``[budget] daily_cpu_seconds``). The day
is a UTC date; a cycle's spend counts towards the day recorded in its
``cost.day`` (a backtest records the batch's day, so history replayed in
minutes is budgeted as it happened). Once a day's spend reaches the budget,
cycles still monitor, but improvement is skipped with that reason.

This module is imported by quick commands: nothing heavy here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = ["CostModel", "budget_problem", "spent_on", "today"]

DEFAULT_WATTS_PER_CORE = 15.0
DEFAULT_GRID_GCO2_PER_KWH = 400.0


def today() -> str:
    """The current UTC date, ``YYYY-MM-DD``."""
    return datetime.now(UTC).strftime("%Y-%m-%d")


@dataclass(frozen=True)
class CostModel:
    """Turns CPU seconds into an energy and carbon estimate."""

    watts_per_core: float = DEFAULT_WATTS_PER_CORE
    grid_gco2_per_kwh: float = DEFAULT_GRID_GCO2_PER_KWH

    def __post_init__(self) -> None:
        if not self.watts_per_core > 0:
            raise ValueError(f"CostModel.watts_per_core must be > 0; got {self.watts_per_core!r}")
        if not self.grid_gco2_per_kwh >= 0:
            raise ValueError(f"CostModel.grid_gco2_per_kwh must be >= 0; got {self.grid_gco2_per_kwh!r}")

    @classmethod
    def from_config(cls, config: Any) -> CostModel:
        return cls(getattr(config, "watts_per_core", DEFAULT_WATTS_PER_CORE),
                   getattr(config, "grid_gco2_per_kwh", DEFAULT_GRID_GCO2_PER_KWH))

    def kwh(self, cpu_seconds: float) -> float:
        return float(cpu_seconds) * self.watts_per_core / 3.6e6

    def estimate(self, cpu_seconds: float) -> dict[str, float]:
        """``energy_kwh`` and ``co2_grams`` for ``cpu_seconds`` of one busy core."""
        kwh = self.kwh(cpu_seconds)
        return {"energy_kwh": round(kwh, 9), "co2_grams": round(kwh * self.grid_gco2_per_kwh, 6)}


def _day_of(record: Any) -> str:
    cost = getattr(record, "cost", None) or {}
    day = cost.get("day") if isinstance(cost, Mapping) else None
    return str(day) if day else str(getattr(record, "time", ""))[:10]


def spent_on(records: Iterable[Any], policy: str, day: str) -> float:
    """CPU seconds the ``policy``'s records booked on ``day`` (cycles and bootstraps alike)."""
    total = 0.0
    for r in records:
        if r.policy != policy or _day_of(r) != day:
            continue
        cpu = (r.cost or {}).get("cpu_seconds")
        if isinstance(cpu, (int, float)):
            total += float(cpu)
    return total


def budget_problem(daily_cpu_seconds: float | None, spent: float, day: str) -> str | None:
    """The reason to skip improvement when the day's budget is used up, else None."""
    if daily_cpu_seconds is None or spent < daily_cpu_seconds:
        return None
    return (f"daily compute budget used up: {spent:.1f} of {daily_cpu_seconds:g} CPU seconds spent on {day} "
            "(budget.daily_cpu_seconds); improvement skipped until the next day")
