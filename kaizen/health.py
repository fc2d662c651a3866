"""Is every model healthy right now? One verdict per policy, the first thing ``kaizen status``, the UI,
``/metrics`` and the health webhook show.

:func:`health` reads a policy's newest records (oldest first, a bounded tail is enough) and returns a
:class:`Verdict`: a state, one sentence ``why``, and the numbers behind it. The states, the first that
applies wins:

``broken`` (red)
    The newest window that measured the serving champion's metric against its baseline (its
    ``performance_drop`` signal: the metric on the window's labelled rows without the rows the
    data-trust checks flagged, the baseline, the drop and the threshold) shows a drop at or beyond
    the threshold, whatever the cycle then did: rejected challengers, a cooldown, a budget or a held
    window do not make a broken champion look fine. Only a recorded decision moves the baseline (a
    promotion, a rollback, a ``rebaselined`` record), so only a decision (or a new window measuring
    a drop below the threshold) ends it.
``not_running``
    Cycles do not get through: the newest cycles failed (how many in a row, the error), or, when the
    schedule's interval is known, the newest cycle is older than ``[health] late_after_intervals``
    intervals (the daemon is stopped, its scheduler died, or the cron job that runs ``kaizen once``
    is gone).
``stale_data``
    The newest ``[health] stale_after_cycles`` cycles or more saw no new batch (the same batches and
    labels as the cycle before, or no production batch at all): the model is judged on old data.
``no_labels``
    Windows arrive but carry no labels: the newest window has no labelled row and the champion was
    never measured, or the newest ``stale_after_cycles`` windows all had none.
``degraded`` (amber)
    The measured drop is at or beyond ``[health] degraded_share`` × the threshold (half by default) but
    below it, or the newest cycle was ``held`` (a data incident, or a drop only the flagged rows carry:
    a person should look).
``healthy`` (green)
    The newest measurement is within the bound, or a decision since then made a new champion (a
    promotion on the gates' evidence) or reset the baseline, and data and cycles keep coming.
``unknown`` (grey)
    Nothing was recorded for the policy yet, or no window ever compared its metric with a baseline.

``also`` lists the other states that apply, so a broken champion whose cycles also stopped says both.

Quick to import: no MLflow, no pandas (APScheduler only when the interval of a cron schedule is asked).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from kaizen._fmt import when
from kaizen.config import HealthSettings
from kaizen.ledger import Record
from kaizen.past import PERFORMANCE, is_window, signal

__all__ = ["CODES", "COLOURS", "HEALTH_RECORDS", "STATES", "Verdict", "baseline_bound", "health", "interval_seconds",
           "policy_verdict", "schedules"]

STATES = ("healthy", "degraded", "broken", "no_labels", "stale_data", "not_running", "unknown")
#: the numeric code of each state (``kaizen_health_code`` in /metrics): 0 is good, higher is worse
CODES = {"healthy": 0, "degraded": 1, "broken": 2, "no_labels": 3, "stale_data": 4, "not_running": 5, "unknown": 6}
COLOURS = {"healthy": "green", "degraded": "amber", "broken": "red", "no_labels": "grey", "stale_data": "grey",
           "not_running": "grey", "unknown": "grey"}
#: decisions that change what the champion is measured against (a new champion, a new baseline)
_RESETS = ("promoted", "rebaselined")


@dataclass(frozen=True)
class Verdict:
    """A policy's health: ``state`` (one of :data:`STATES`), ``why`` (one sentence) and the numbers."""

    policy: str
    state: str
    why: str
    metric: str | None = None
    champion_metric: float | None = None
    baseline: float | None = None
    drop: float | None = None
    threshold: float | None = None
    champion_version: str | None = None
    record: str | None = None       # the record the verdict rests on
    time: str | None = None         # that record's time
    last_cycle: str | None = None   # the newest cycle's time
    also: tuple[str, ...] = field(default_factory=tuple)

    @property
    def colour(self) -> str:
        return COLOURS[self.state]

    @property
    def code(self) -> int:
        return CODES[self.state]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["also"] = list(self.also)
        d["colour"] = self.colour
        return d


def interval_seconds(schedule: Any) -> float | None:
    """The seconds between two runs of a :class:`kaizen.policy.ScheduleSpec` (a cron line: its next two fire
    times from now), None when unknown."""
    if schedule is None:
        return None
    if getattr(schedule, "cron", None):
        try:
            from apscheduler.triggers.cron import CronTrigger

            trig = CronTrigger.from_crontab(schedule.cron, timezone="UTC")
            now = datetime.now(tz=trig.timezone)
            a = trig.get_next_fire_time(None, now)
            b = trig.get_next_fire_time(a, a) if a else None
            if a and b and b <= a:
                from datetime import timedelta

                b = trig.get_next_fire_time(a, a + timedelta(seconds=1))
            return (b - a).total_seconds() if a and b else None
        except Exception:
            return None
    every = getattr(schedule, "every_seconds", None)
    return float(every) if every else None


def _epoch(when: str | None) -> float | None:
    try:
        return datetime.fromisoformat(str(when).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _f(x: Any) -> str:
    return f"{x:.4f}" if isinstance(x, (int, float)) else "?"


def _ago(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


def _new_version(r: Record) -> str | None:
    ch, cl = r.champion or {}, r.challenger or {}
    if ch.get("promoted"):
        return str(ch["promoted"])
    if r.kind in ("bootstrap", "retrain") or r.decision == "rebaselined":
        return None if ch.get("version") is None else str(ch["version"])
    v = cl.get("version") or ch.get("version")
    return None if v is None else str(v)


def health(records: Iterable[Record], policy: str, *, bounds: HealthSettings | None = None,
           interval: float | None = None, now: float | None = None, daemon_running: bool | None = None) -> Verdict:
    """The :class:`Verdict` of ``policy`` from ``records`` (oldest first; other policies' records are ignored).

    ``interval``: the schedule's seconds between cycles (:func:`interval_seconds`); with it a policy whose newest
    cycle is older than ``late_after_intervals`` intervals is ``not_running`` (``now``: Unix seconds, default the
    clock). ``daemon_running``: whether a daemon holds the state folder (only named in the ``why``).
    """
    b = bounds or HealthSettings()
    mine = [r for r in records if r.policy == policy]
    cycles = [r for r in mine if r.kind == "cycle"]
    if not mine:
        return Verdict(policy, "unknown", "nothing recorded for this policy yet")
    last_cycle = cycles[-1].time if cycles else None
    found: list[tuple[str, str]] = []  # (state, why) in the order of precedence
    base: dict[str, Any] = {"last_cycle": last_cycle}

    # -- the champion against its baseline --------------------------------------------------------
    measured, reset = None, None
    for r in reversed(mine):
        if r.decision in _RESETS or (r.kind == "rollback" and r.decision == "promoted"):
            reset = r
            break
        if is_window(r):
            s = signal(r, PERFORMANCE)
            if s is not None and s.get("verdict") != "unknown" and s.get("value") is not None:
                measured = (r, s)
                break
    if measured is not None:
        r, s = measured
        d = s.get("details") or {}
        cur = d.get("clean_metric", d.get("champion_metric"))
        drop, thr = float(s["value"]), float(s["threshold"])
        version = (r.champion or {}).get("version")
        base.update(metric=(r.champion or {}).get("metric") or d.get("metric"),
                    champion_metric=cur if isinstance(cur, (int, float)) else None,
                    baseline=d.get("baseline") if isinstance(d.get("baseline"), (int, float)) else None,
                    drop=drop, threshold=thr, champion_version=None if version is None else str(version),
                    record=r.id, time=r.time)
        numbers = (f"{_f(cur)} vs baseline {_f(d.get('baseline'))}, drop {drop:+.4f} against threshold {thr:.4f}, "
                   f"record {r.id} at {when(r.time)}")
        if drop >= thr:
            found.append(("broken", f"champion v{version} is below its baseline: {numbers} ({r.decision})"))
        elif b.degraded_share < 1 and drop >= b.degraded_share * thr:
            found.append(("degraded", f"champion v{version} is slipping: {numbers} (amber from "
                                      f"{b.degraded_share:g} x the threshold)"))
    elif reset is not None:
        v = _new_version(reset)
        base.update(champion_version=v, record=reset.id, time=reset.time)

    # -- cycles get through -----------------------------------------------------------------------
    failed = 0
    for r in reversed(cycles):
        if r.decision != "failed":
            break
        failed += 1
    if failed:
        err = (cycles[-1].error or "; ".join(cycles[-1].reasons) or "?").splitlines()[0][:200]
        found.append(("not_running",
                      f"the last {failed} cycle(s) failed, the newest at {when(cycles[-1].time)}: {err}"))
    elif interval and cycles:
        t = _epoch(cycles[-1].time)
        clock = time.time() if now is None else now
        if t is not None and clock - t > b.late_after_intervals * interval:
            who = " and no daemon is running" if daemon_running is False else ""
            found.append(("not_running", f"no cycle for {_ago(clock - t)} (since {when(cycles[-1].time)}; the schedule "
                                         f"runs every {_ago(interval)}){who}"))
    elif not cycles and daemon_running is False:
        found.append(("not_running", "no cycle has run yet and no daemon is running"))

    # -- fresh data -------------------------------------------------------------------------------
    judged = [r for r in cycles if r.decision != "failed" and isinstance(r.window, Mapping) and r.window]
    stale = 0
    rev = list(reversed(judged))
    for i, newer in enumerate(rev):
        older = rev[i + 1] if i + 1 < len(rev) else None
        w = newer.window
        same = older is not None and ((w.get("digest") and w.get("digest") == older.window.get("digest"))
                                      or (not w.get("digest") and list(w.get("batches") or [])
                                          == list(older.window.get("batches") or [])))
        if not (same or not w.get("rows")):
            break
        stale += 1
    if stale >= b.stale_after_cycles:
        since = judged[-stale - 1].time if stale < len(judged) else None
        found.append(("stale_data", f"no new batch in the last {stale} cycles"
                                    + (f" (the newest arrived by {since})" if since else "")))

    # -- labels -----------------------------------------------------------------------------------
    windows = [r for r in judged if r.window.get("rows")]
    unlabelled = 0
    for r in reversed(windows):
        if r.window.get("labelled_rows"):
            break
        unlabelled += 1
    if windows and unlabelled and (unlabelled >= b.stale_after_cycles
                                   or (measured is None and (reset is None or len(windows) == unlabelled))):
        found.append(("no_labels", f"the newest {unlabelled} window(s) had no labelled row (newest: "
                                   f"{windows[-1].window.get('rows')} rows, cycle {windows[-1].id}), so the "
                                   "champion's metric cannot be measured"))

    # -- a person should look ---------------------------------------------------------------------
    if cycles and cycles[-1].decision == "held":
        found.append(("degraded", f"the newest cycle {cycles[-1].id} was held for a person: "
                                  f"{(cycles[-1].reasons or ('?',))[0][:200]}"))

    order = ("broken", "not_running", "stale_data", "no_labels", "degraded")
    found.sort(key=lambda sw: order.index(sw[0]))
    if found:
        state, why = found[0]
        also = tuple(dict.fromkeys(s for s, _ in found[1:] if s != state))
        return Verdict(policy, state, why, also=also, **base)
    if measured is not None:
        return Verdict(policy, "healthy", f"champion v{base['champion_version']} at {_f(base['champion_metric'])} "
                       f"vs baseline {_f(base['baseline'])} (drop {base['drop']:+.4f} < threshold "
                       f"{base['threshold']:.4f}; record {base['record']} at {base['time']})", **base)
    if reset is not None:
        v, at = base["champion_version"], f"at {when(reset.time)} (record {reset.id}); not yet measured on a new window"
        why = (f"the baseline of champion v{v} was reset {at}" if reset.decision == "rebaselined" else
               f"rolled back to champion v{v} {at}" if reset.kind == "rollback" else f"champion v{v} promoted {at}")
        return Verdict(policy, "healthy", why, **base)
    return Verdict(policy, "unknown", "no window has compared the champion's metric with a baseline yet", **base)


#: how many of a policy's newest records a verdict reads (a bounded read: the cost stays flat as the log grows)
HEALTH_RECORDS = 200


def schedules(config: Any) -> dict[str, Any]:
    """Each valid policy's :class:`~kaizen.policy.ScheduleSpec`, by name (the policy files parsed, nothing else)."""
    from kaizen.policy import load_policies, policy_files

    if not config.policies_dir.is_dir():
        return {}
    good, _ = load_policies(policy_files(config.policies_dir))
    return {p.name: p.schedule for p in good}


def policy_verdict(config: Any, policy: str, *, records: Iterable[Record] | None = None, schedule: Any = None,
                   daemon_running: bool | None = None, now: float | None = None) -> Verdict:
    """:func:`health` of ``policy`` as configured: ``[health]`` bounds, the policy's schedule (read from its file when
    ``schedule`` is None), its newest :data:`HEALTH_RECORDS` records (read when ``records`` is None)."""
    if records is None:
        from kaizen.run.backend import ledger_for

        records = ledger_for(config).tail(policy, HEALTH_RECORDS)
    if schedule is None:
        schedule = schedules(config).get(policy)
    return health(records, policy, bounds=config.health, interval=interval_seconds(schedule), now=now,
                  daemon_running=daemon_running)


def baseline_bound(r: Record, metric: str | None = None) -> tuple[float, float] | None:
    """(baseline, bound) of a window's ``performance_drop`` signal: the champion is broken beyond the bound
    (baseline − threshold for a metric where higher is better; baseline × (1 + threshold) for rmse/mae, whose
    drop is relative; ``metric``: the policy's, when the record does not name it). None when the record measured
    nothing against a baseline."""
    s = signal(r, PERFORMANCE) if is_window(r) else None
    if s is None or s.get("threshold") is None:
        return None
    base = (s.get("details") or {}).get("baseline")
    if not isinstance(base, (int, float)) or isinstance(base, bool):
        return None
    from kaizen.policy import HIGHER_IS_BETTER

    thr = float(s["threshold"])
    higher = HIGHER_IS_BETTER.get(str((r.champion or {}).get("metric") or metric), True)
    return float(base), (base - thr if higher else base * (1 + thr))
