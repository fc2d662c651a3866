"""``kaizen run``: the long-lived service around the improvement cycle.

One :class:`Service` per process and per state folder. Its main thread owns
the lifecycle — lock, recovery, scheduler, HTTP endpoint, then a loop that
waits for a command (stop, reload) or the rescan interval — while cycles run
on the scheduler's worker threads::

    lock ─► recover journals ─► scheduler (paused) ─► sync jobs ─► resume ─► HTTP ─► loop
                                                  SIGHUP / rescan: reload policies ─┤
                                        SIGTERM/SIGINT: stop, wait the grace, exit 0 ─┘

Cycle failures never leave :meth:`Service.run_policy`: the cycle records them
(``run_cycle`` never raises for a failed cycle), the policy backs off, the
other policies go on.

On the scale-out path (``[coordination] url``) the replicas compete for the scheduler's lease
(:mod:`kaizen.service.leader`): the leader's schedule enqueues cycles for ``kaizen worker`` processes
(:mod:`kaizen.scale.queue`) instead of running them, and re-queues the jobs of workers whose heartbeat
stopped; the others stand by (``/readyz`` says ``standby``) and take over when its lease expires.

A full disk: every tick first appends the decisions that could not be written
(kept in memory, :func:`kaizen.run.runner.retry_unwritten`, or in the journal, by
recovery), and ``/readyz`` answers 503 once the state folder's file system has
less than ``[service] min_free_bytes`` free (``kaizen_state_free_bytes``).
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
from contextlib import suppress
from dataclasses import asdict, dataclass
from typing import Any

from apscheduler.schedulers import SchedulerNotRunningError

from kaizen._io import write_atomic
from kaizen.config import Config
from kaizen.errors import BusyError, KaizenError
from kaizen.ledger import Record, iso_utc, new_cycle_id, utcnow
from kaizen.run.backend import ledger_for
from kaizen.run.journal import Journal
from kaizen.run.recovery import recover_all
from kaizen.run.runner import UnwrittenDecision, retry_unwritten, unwritten
from kaizen.run.runtime import Runtime
from kaizen.service import housekeeping, jobs, logs, signals
from kaizen.service.http import CachedCheck, DiskSpace, HealthServer, registry_reachable
from kaizen.service.lock import StateLock, holder
from kaizen.service.metrics import ServiceMetrics
from kaizen.service.policies import PolicySet
from kaizen.service.scheduler import make_scheduler, next_runs, sync_jobs

__all__ = ["Service", "STATUS_FILE"]

log = logging.getLogger("kaizen.service")

STATUS_FILE = "service.json"


@dataclass
class PolicyHealth:
    consecutive_failures: int = 0
    retry_at: float | None = None
    last_error: str | None = None
    last_error_at: str | None = None
    running: bool = False


class Service:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.settings = config.service
        self.stop = threading.Event()
        self.commands: queue.SimpleQueue[str] = queue.SimpleQueue()
        self.policies = PolicySet(config.policies_dir)
        self.journal = Journal(config.state_dir, config.ledger_path)
        self.lock = StateLock(config.state_dir)
        self.scheduler: Any = None
        self.http: HealthServer | None = None
        self.ui: Any = None  # kaizen.ui.server.UIServer when [ui] enabled
        self.state = "starting"
        self.started = utcnow()
        self.health: dict[str, PolicyHealth] = {}
        self.disk = DiskSpace(config.state_dir, self.settings.min_free_bytes)
        #: what this daemon carries from cycle to cycle (kept decisions, loaded champions, monitoring runs)
        self.runtime = Runtime()
        self.metrics = ServiceMetrics(self._scheduler_alive, free_bytes=self.disk.free,
                                      unwritten=lambda: len(unwritten(self.runtime, config)))
        self._registry_ok = CachedCheck(lambda: registry_reachable(config.registry_uri))
        self._idle = threading.Condition()
        self._active = 0
        self._status_lock = threading.Lock()
        #: the scale-out path: the lease this replica competes for, and the queue its schedule fills
        self.coordinated = bool(config.coordination.url)
        self.leadership: Any = None
        self.queue: Any = None
        self.outbox: Any = None  # kaizen.scale.outbox.Sender: this replica delivers the webhooks' outbox too
        self._swept = -float("inf")  # when the leader last looked for stalled jobs (time.monotonic)
        self._sweep_lock = threading.Lock()

    # -- lifecycle -------------------------------------------------------------------------------
    def run(self) -> int:
        signals.install(self.commands)
        if not self._acquire():
            return 0
        try:
            jobs.attach(self)
            if not self.coordinated:  # on the scale-out path the workers recover a policy's runs before its next one
                recovered = recover_all(self.config, self.journal, alive=self._alive())
                if recovered:
                    log.warning("recovered %d interrupted cycle(s)", len(recovered))
            try:
                self.metrics.seed(ledger_for(self.config).records())
            except KaizenError as exc:  # a log in a database not reachable yet: the counters start from zero
                log.error("metrics not seeded from the promotion log: %s", exc)
            self.scheduler = make_scheduler(self.settings)
            self.scheduler.start(paused=True)
            self.reload("start")
            housekeeping.schedule(self.scheduler, self.config, stop=self.stop)
            if self.coordinated:
                self._lead()  # resumes the schedule only while this replica holds the lease
                from kaizen.scale.outbox import start_sender

                self.outbox = start_sender(self.config)
            else:
                self.scheduler.resume()
            self.http = HealthServer(self.settings.host, self.settings.port, ready=self.ready,
                                     metrics=self.metrics.render).start()
            self._start_ui()
            self.state = "standby" if self.coordinated and not self.leadership.leading else "running"
            self.write_status()
            self._check_health()
            log.info("kaizen service running (pid %d, state %s, http://%s:%d)", os.getpid(), self.config.state_dir,
                     self.http.host, self.http.port)
            while True:
                try:
                    cmd = self.commands.get(timeout=self.settings.rescan_seconds)
                except queue.Empty:
                    cmd = "rescan"
                if cmd == "stop":
                    break
                self.disk()  # logs a WARNING when the disk runs low, even with nobody asking /readyz
                self.reload("SIGHUP" if cmd == "reload" else "rescan")
                self.write_status()
                self._check_health()
            return self._shutdown()
        finally:
            jobs.attach(None)
            self.lock.release()

    def _acquire(self) -> bool:
        waited = False
        while not self.lock.try_acquire():
            pid = holder(self.config.state_dir)
            if not self.settings.standby:
                raise BusyError(f"another kaizen daemon (pid {pid}) is running on state folder "
                                  f"{self.config.state_dir} (lock {self.lock.path}); stop it first, or set "
                                  "[service] standby = true to wait as a standby")
            if not waited:
                log.info("standby: pid %s holds %s; waiting to take over", pid, self.lock.path)
                self.state = "standby"
                waited = True
            try:
                if self.commands.get(timeout=1.0) == "stop":
                    log.info("standby stopped before taking over")
                    return False
            except queue.Empty:
                pass
        if waited:
            log.info("lock acquired: taking over as the active daemon")
        return True

    def _shutdown(self) -> int:
        grace = self.settings.shutdown_grace_seconds
        self.state = "stopping"
        self.stop.set()
        if self.leadership is not None:
            self.leadership.release()
        if self.outbox is not None:
            self.outbox.close()
        if self.queue is not None:
            with suppress(Exception):
                self.queue.close()
        log.info("stopping: no new cycles; waiting up to %gs for running ones", grace)
        with suppress(SchedulerNotRunningError):  # its loop failed and it shut itself down already
            self.scheduler.shutdown(wait=False)
        self.write_status()
        deadline = time.monotonic() + grace
        with self._idle:
            while self._active and time.monotonic() < deadline:
                self._idle.wait(max(0.0, min(1.0, deadline - time.monotonic())))
            busy = self._active
        if self.http is not None:
            self.http.close()
        if self.ui is not None:
            self.ui.close()
        if busy:
            log.error("grace period of %gs is over with %d cycle(s) running: aborting them "
                      "(recovered at the next start)", grace, busy)
            for h in logging.getLogger("kaizen").handlers:
                h.flush()
            os._exit(signals.ABORT_CODE)
        self.state = "stopped"
        self.write_status()
        log.info("kaizen service stopped")
        return 0

    def _start_ui(self) -> None:
        """The review pages on their own port (``[ui]``); a port that cannot be bound costs only the pages."""
        if not self.config.ui.enabled:
            return
        from kaizen.ui.server import UIServer

        try:
            self.ui = UIServer(self.config).start()
        except OSError as exc:
            log.error("review pages not served: cannot bind %s:%d (%s)", self.config.ui.host, self.config.ui.port,
                      exc.strerror or exc)
            return
        log.info("review pages at %s/ (%s)", self.ui.url, self.ui.mode)

    # -- the scale-out path: lead or stand by ----------------------------------------------------
    def _lead(self) -> None:
        from kaizen.scale.lease import Lease
        from kaizen.scale.queue import app_for
        from kaizen.service.leader import Leadership

        coord = self.config.coordination
        self.queue = app_for(coord.url)
        self.queue.open()
        self.leadership = Leadership(Lease(coord.url, ttl_seconds=coord.lease_seconds), self._leading, self.stop)
        self.leadership.start()

    def _leading(self, term: Any) -> None:
        """The lease changed hands: resume the schedule when this replica leads, pause it when it does not."""
        if self.stop.is_set():
            return
        if term is not None:
            self.scheduler.resume()
            self.state = "running"
        else:
            self.scheduler.pause()
            self.state = "standby"
        self.write_status()

    def _enqueue(self, name: str, *, again: bool = True) -> None:
        """A leader's tick of a policy: queue one cycle for the workers, carrying this term's epoch.

        The insert is fenced by the lease row (:func:`kaizen.scale.queue.enqueue_cycle`): a replica deposed
        while it was paused is refused here and steps down at once, whatever its own view of the lease. (Its
        lease merely expired with nobody taking over: the tick renews it under a new epoch and queues again.)"""
        from kaizen.scale.queue import NotLeading, enqueue_cycle

        lead = self.leadership
        term = lead.term if lead is not None else None
        if term is None:  # stepped down since the tick was due
            return
        coord = self.config.coordination
        try:
            job = enqueue_cycle(self.queue, name, epoch=term.epoch, url=coord.url, holder=lead.lease.holder)
            if job is not None:
                log.info("%s: cycle queued (job %s, epoch %d)", name, job, term.epoch)
        except NotLeading as exc:
            log.warning("fenced: %s; checking the lease", exc)
            lead.tick()
            if again and lead.term is not None:
                self._enqueue(name, again=False)
            return
        except Exception as exc:  # the database went away: the lease thread steps down; the next tick retries
            log.error("%s: cannot queue the cycle: %s", name, " ".join(str(exc).split())[:300])
            return
        self._retry_stalled()

    def _retry_stalled(self) -> None:
        """Re-queue the jobs of workers whose heartbeat stopped; at most once per heartbeat interval."""
        from kaizen.scale.queue import retry_stalled

        coord = self.config.coordination
        now = time.monotonic()
        with self._sweep_lock:
            if now - self._swept < coord.heartbeat_seconds:
                return
            self._swept = now
        try:
            retry_stalled(coord.url, seconds_since_heartbeat=coord.stalled_seconds)
        except Exception as exc:
            log.error("cannot look for stalled jobs: %s", " ".join(str(exc).split())[:300])

    # -- policies and jobs -----------------------------------------------------------------------
    def reload(self, why: str) -> None:
        if not self.policies.scan() and why == "rescan":
            return
        active = self.policies.active()
        for name in active:
            self.metrics.add_policy(name)
            self.health.setdefault(name, PolicyHealth())
        for name in set(self.health) - set(active):
            self.health.pop(name)
            self.metrics.remove_policy(name)
        self.metrics.set_policy_counts(len(active), len(self.policies.broken()))
        sync_jobs(self.scheduler, active)
        log.info("policies reloaded (%s): %d in service, %d broken", why, len(active), len(self.policies.broken()))

    def run_policy(self, name: str) -> None:
        """One scheduled tick of a policy (on a scheduler worker thread); on the scale-out path, an enqueue."""
        if self.stop.is_set():
            return
        if self.coordinated:
            self._enqueue(name)
            return
        policy = self.policies.active().get(name)
        h = self.health.get(name)
        if policy is None or h is None:
            return
        self.disk()
        self._write_kept()
        if h.retry_at is not None and time.time() < h.retry_at:
            log.info("%s: backing off after %d failed cycle(s); next try after %s", name, h.consecutive_failures,
                     iso_utc(h.retry_at))
            return
        logs.bind(policy=name)
        with self._idle:
            self._active += 1
        h.running = True
        t0 = time.monotonic()
        try:
            record = self._cycle(policy)
            if record is not None:
                self._after(name, h, record, time.monotonic() - t0)
        finally:
            h.running = False
            with self._idle:
                self._active -= 1
                self._idle.notify_all()
            logs.bind()
            self.write_status()

    def _cycle(self, policy: Any) -> Record | None:
        """Run one cycle (the runner recovers the policy's unfinished runs first); None if another process has it."""
        from kaizen.commands.tick import tick

        try:
            return tick(self.config, policy, stop=self.stop, on_step=_log_step, runtime=self.runtime)
        except BusyError as exc:
            log.info("%s: skipped this tick: %s", policy.name, exc)
            return None
        except UnwrittenDecision as exc:  # kept in memory; the next ticks append it (_write_kept)
            log.error("%s", exc)
            return exc.record
        except Exception as exc:  # the ledger or the journal failed: keep the daemon alive, record if we can
            log.exception("cycle of %s failed outside the cycle", policy.name)
            msg = f"{type(exc).__name__}: {exc}"
            rec = Record(id=new_cycle_id(policy.name), policy=policy.name, decision="failed",
                         reasons=(f"cycle failed: {msg}",), error=msg)
            try:
                rec = ledger_for(self.config).append(rec)
            except Exception:
                log.exception("cannot write to the promotion log %s", self.config.ledger_path)
            return rec

    def _alive(self) -> set[str]:
        """Runs whose decision this daemon keeps in memory: not dead, whatever their journal says."""
        return {r.id for r in unwritten(self.runtime, self.config)}

    def _write_kept(self) -> None:
        """Append the decisions a full disk kept out of the promotion log: in memory, or in the journal."""
        try:
            retry_unwritten(self.config, self.runtime)
            if self.journal.pending():  # a decided entry the log refused (recovery appends it), or a dead run
                recover_all(self.config, self.journal, alive=self._alive())
        except (KaizenError, OSError) as exc:  # still full: the next tick tries again (the first failure was logged)
            log.debug("decisions not yet written to the promotion log: %s", exc)

    def _after(self, name: str, h: PolicyHealth, record: Record, seconds: float) -> None:
        s = self.settings
        if record.decision == "failed":
            h.consecutive_failures += 1
            h.last_error, h.last_error_at = record.error or "; ".join(record.reasons), record.time
            # first retry on the next tick, then back off: base, 2·base, 4·base … up to the cap
            n = h.consecutive_failures
            delay = 0.0 if n == 1 else min(s.backoff_seconds * 2 ** (n - 2), s.backoff_max_seconds)
            h.retry_at = time.time() + delay if delay else None
            log.warning("%s: cycle %s failed (%d in a row): %s", name, record.id, n, h.last_error)
        else:
            h.consecutive_failures, h.retry_at = 0, None
            log.info("%s: cycle %s %s", name, record.id, record.decision)
        self.metrics.observe(record, seconds, h.consecutive_failures)
        self._check_health(name)

    # -- health and status -----------------------------------------------------------------------
    def _scheduler_alive(self) -> bool:
        """The scheduler runs: its loop failing (a job store it cannot write, a full disk) shuts it down
        (:class:`~kaizen.service.scheduler.ServiceScheduler`), so its state says so."""
        return self.state == "running" and self.scheduler is not None and self.scheduler.running

    def ready(self) -> tuple[bool, dict[str, Any]]:
        if self.coordinated and self.state in ("standby", "running") and not (
                self.leadership is not None and self.leadership.leading):
            seen = self.leadership.seen if self.leadership is not None else None
            return False, {"scheduler": "standby", "leader": seen.holder if seen else None,
                           "epoch": seen.epoch if seen else None,
                           **({"coordination": self.leadership.error} if self.leadership and self.leadership.error
                              else {})}
        sched = self._scheduler_alive()
        reg_ok, reg_detail = self._registry_ok()
        disk_ok, disk_detail = self.disk()
        state = self.state if self.state != "running" else "stopped (its thread ended; see the log)"
        return sched and reg_ok and disk_ok, {"scheduler": "running" if sched else state,
                                              "registry": reg_detail, "disk": disk_detail}

    def _check_health(self, only: str | None = None) -> None:
        """Set the ``kaizen_health`` gauges of the policies (``only``: of one) and announce changes of their verdicts
        that no record reveals (cycles that stopped coming; the runner announces the others after each record).
        On the scale-out path nothing is announced from here (docs/notifications.md)."""
        from kaizen.health import policy_verdict
        from kaizen.notify import notify_health

        for name, pol in self.policies.active().items():
            if only is not None and name != only:
                continue
            try:
                verdict = policy_verdict(self.config, name, schedule=pol.schedule, daemon_running=True)
            except Exception as exc:  # the log unreachable: the gauges keep their last values
                log.warning("health of %s not checked: %s", name, " ".join(str(exc).split())[:300])
                continue
            self.metrics.set_health(verdict)
            if not self.coordinated:
                notify_health(self.config, verdict)

    def write_status(self) -> None:
        """``<state>/service.json``: what ``kaizen status`` shows about the live daemon."""
        try:
            runs = (next_runs(self.scheduler.get_jobs()) if self.scheduler is not None and self.state == "running"
                    else {})
        except Exception:
            runs = {}
        active = self.policies.active()
        lead = self.leadership
        doc = {
            "pid": os.getpid(), "state": self.state, "started": self.started, "updated": utcnow(),
            **({"lease": {"leading": lead.leading, **((lead.term or lead.seen).to_dict() if (lead.term or lead.seen)
                                                      else {})}} if lead is not None else {}),
            "http": {"host": self.http.host, "port": self.http.port} if self.http else None,
            "policies": {name: {"file": str(pol.path), "schedule": pol.schedule.describe(),
                                "next_run": runs.get(name),
                                **asdict(self.health.get(name, PolicyHealth())),
                                "retry_at": iso_utc(self.health[name].retry_at) if name in self.health else None}
                         for name, pol in active.items()},
            "broken": {str(p): e for p, e in self.policies.broken().items()},
        }
        with self._status_lock:
            try:
                write_atomic(self.config.state_dir / STATUS_FILE, json.dumps(doc, indent=1).encode())
            except OSError as exc:
                log.warning("cannot write %s: %s", STATUS_FILE, exc)




def _log_step(step: str, draft: Any, data: dict[str, Any]) -> None:
    """Bind the running cycle's id and step to the service's log lines."""
    logs.update(cycle_id=draft.id, step=step)
