"""Prometheus metrics of the service, in its own registry (no process-global state).

======================================  =======  ==========================================
name                                    type     labels
======================================  =======  ==========================================
kaizen_cycles_total                     counter  policy, outcome (a promotion-log decision)
kaizen_cycle_duration_seconds           histo    policy
kaizen_promotions_total                 counter  policy
kaizen_rejections_total                 counter  policy
kaizen_failures_total                   counter  policy
kaizen_drift_share                      gauge    policy (last cycle that measured it)
kaizen_seconds_since_last_success       gauge    policy (last cycle that did not fail)
kaizen_last_cycle_timestamp_seconds     gauge    policy
kaizen_consecutive_failures             gauge    policy
kaizen_health                           gauge    policy, state (1 for the policy's current health verdict, 0
                                                 for the other states: healthy, degraded, broken, no_labels,
                                                 stale_data, not_running, unknown; kaizen/health.py)
kaizen_health_code                      gauge    policy (the verdict as a number: 0 healthy, 1 degraded,
                                                 2 broken, 3 no_labels, 4 stale_data, 5 not_running, 6 unknown)
kaizen_champion_below_baseline          gauge    policy (1 when the verdict is broken)
kaizen_champion_metric                  gauge    policy (on the newest window that measured it)
kaizen_performance_baseline             gauge    policy
kaizen_policies                         gauge    state (valid, broken)
kaizen_scheduler_running                gauge    -
kaizen_state_free_bytes                 gauge    - (free bytes on the state folder's file system)
kaizen_unwritten_decisions              gauge    - (decisions kept in memory: the disk was full)
======================================  =======  ==========================================
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import generate_latest

from kaizen.ledger import DECISIONS, Record

__all__ = ["ServiceMetrics"]

BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200)


class _Live:
    """Values computed when scraped."""

    def __init__(self, metrics: ServiceMetrics) -> None:
        self.m = metrics

    def collect(self) -> Iterable[GaugeMetricFamily]:
        now = time.time()
        since = GaugeMetricFamily("kaizen_seconds_since_last_success",
                                  "Seconds since the policy's last cycle that did not fail", labels=["policy"])
        with self.m._lock:
            for policy, t in sorted(self.m.last_success.items()):
                since.add_metric([policy], max(0.0, now - t))
        yield since
        running = GaugeMetricFamily("kaizen_scheduler_running", "1 while the scheduler runs")
        running.add_metric([], 1.0 if self.m.scheduler_running() else 0.0)
        yield running
        free = self.m.free_bytes()
        if free is not None:
            yield GaugeMetricFamily("kaizen_state_free_bytes", "Free bytes on the state folder's file system",
                                    value=float(free))
        yield GaugeMetricFamily("kaizen_unwritten_decisions", "Decisions kept in memory because neither the "
                                "promotion log nor the journal could hold them (a full disk)",
                                value=float(self.m.unwritten()))


class ServiceMetrics:
    def __init__(self, scheduler_running: Callable[[], bool] = lambda: False, *,
                 free_bytes: Callable[[], int | None] = lambda: None, unwritten: Callable[[], int] = lambda: 0) -> None:
        self.registry = CollectorRegistry()
        self.scheduler_running = scheduler_running
        self.free_bytes = free_bytes
        self.unwritten = unwritten
        self._lock = threading.Lock()
        self.last_success: dict[str, float] = {}
        r = self.registry
        self.cycles = Counter("kaizen_cycles", "Cycles by policy and outcome", ["policy", "outcome"], registry=r)
        self.duration = Histogram("kaizen_cycle_duration_seconds", "Wall time of a cycle", ["policy"],
                                  buckets=BUCKETS, registry=r)
        self.promotions = Counter("kaizen_promotions", "Promotions of a challenger to champion", ["policy"],
                                  registry=r)
        self.rejections = Counter("kaizen_rejections", "Challengers rejected by a gate", ["policy"], registry=r)
        self.failures = Counter("kaizen_failures", "Cycles that failed", ["policy"], registry=r)
        self.drift = Gauge("kaizen_drift_share", "Share of drifted columns in the policy's last monitored window",
                           ["policy"], registry=r)
        self.last_cycle = Gauge("kaizen_last_cycle_timestamp_seconds", "Unix time of the policy's last cycle",
                                ["policy"], registry=r)
        self.streak = Gauge("kaizen_consecutive_failures", "Failed cycles in a row", ["policy"], registry=r)
        self.idle_triggers = Gauge("kaizen_triggered_without_acting", "Cycles in a row whose trigger fired but "
                                   "that could not act (budget, cooldown, too few labelled rows)", ["policy"],
                                   registry=r)
        self.policies = Gauge("kaizen_policies", "Policy files by state", ["state"], registry=r)
        self.below = Gauge("kaizen_champion_below_baseline", "1 when the champion's metric on its newest window is "
                           "below its performance baseline by the threshold or more (red), else 0", ["policy"],
                           registry=r)
        self.champion_metric = Gauge("kaizen_champion_metric", "The champion's metric on its newest labelled window "
                                     "(without rows the trust checks flagged)", ["policy"], registry=r)
        self.baseline = Gauge("kaizen_performance_baseline", "The champion's performance baseline", ["policy"],
                              registry=r)
        self.health = Gauge("kaizen_health", "1 for the policy's current health verdict (kaizen/health.py), 0 for the "
                            "other states", ["policy", "state"], registry=r)
        self.health_code = Gauge("kaizen_health_code", "The policy's health verdict as a number: 0 healthy, "
                                 "1 degraded, 2 broken, 3 no_labels, 4 stale_data, 5 not_running, 6 unknown",
                                 ["policy"], registry=r)
        r.register(_Live(self))

    def add_policy(self, policy: str) -> None:
        """Show a policy's series at zero before its first cycle."""
        for outcome in DECISIONS:
            self.cycles.labels(policy, outcome)
        for c in (self.promotions, self.rejections, self.failures):
            c.labels(policy)
        self.streak.labels(policy)

    def remove_policy(self, policy: str) -> None:
        for outcome in DECISIONS:
            _drop(self.cycles, policy, outcome)
        for m in (self.promotions, self.rejections, self.failures, self.drift, self.last_cycle, self.streak,
                  self.duration, self.idle_triggers, self.below, self.champion_metric, self.baseline, self.health_code):
            _drop(m, policy)
        from kaizen.health import STATES

        for state in STATES:
            _drop(self.health, policy, state)
        with self._lock:
            self.last_success.pop(policy, None)

    def seed(self, records: Iterable[Record]) -> None:
        """Start the 'since last success' clocks and the drift gauges from the promotion log (after a restart)."""
        from datetime import datetime

        for r in records:
            share = ((r.trigger or {}).get("monitor") or {}).get("drift_share")
            if share is not None:
                self.drift.labels(r.policy).set(float(share))
            if r.kind == "cycle" and r.decision != "failed":
                t = datetime.fromisoformat(r.time.replace("Z", "+00:00")).timestamp()
                with self._lock:
                    self.last_success[r.policy] = max(t, self.last_success.get(r.policy, 0.0))

    def observe(self, record: Record, seconds: float, streak: int) -> None:
        p = record.policy
        self.cycles.labels(p, record.decision).inc()
        self.duration.labels(p).observe(seconds)
        self.last_cycle.labels(p).set(time.time())
        self.streak.labels(p).set(streak)
        if record.decision == "promoted":
            self.promotions.labels(p).inc()
        elif record.decision == "rejected":
            self.rejections.labels(p).inc()
        elif record.decision == "failed":
            self.failures.labels(p).inc()
        if record.decision != "failed":
            with self._lock:
                self.last_success[p] = time.time()
        idle = (record.trigger or {}).get("without_acting")
        if idle is not None:
            self.idle_triggers.labels(p).set(int(idle))
        share = ((record.trigger or {}).get("monitor") or {}).get("drift_share")
        if share is not None:
            self.drift.labels(p).set(float(share))

    def set_health(self, verdict: Any) -> None:
        """The gauges of a :class:`kaizen.health.Verdict` (set by the daemon after each cycle and each rescan)."""
        from kaizen.health import STATES

        p = verdict.policy
        for state in STATES:
            self.health.labels(p, state).set(1.0 if state == verdict.state else 0.0)
        self.health_code.labels(p).set(float(verdict.code))
        if verdict.drop is not None:
            self.below.labels(p).set(1.0 if verdict.state == "broken" else 0.0)
        for gauge, value in ((self.champion_metric, verdict.champion_metric), (self.baseline, verdict.baseline)):
            if isinstance(value, (int, float)):
                gauge.labels(p).set(float(value))

    def set_policy_counts(self, valid: int, broken: int) -> None:
        self.policies.labels("valid").set(valid)
        self.policies.labels("broken").set(broken)

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _drop(metric: Any, *labels: str) -> None:
    try:
        metric.remove(*labels)
    except KeyError:
        pass
