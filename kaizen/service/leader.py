"""The scale-out path's ``kaizen run``: keep competing for the scheduler's lease; lead or stand by.

A :class:`Leadership` thread renews (or tries to take) the lease (:mod:`kaizen.scale.lease`) every
third of ``[coordination] lease_seconds`` and tells the service when this replica starts or stops
leading. A leader that cannot renew — the database is unreachable, or another replica took over
after a pause (a deposed leader waking up) — steps down at once: it pauses its schedule before its
lease can have expired. Its schedule may still fire before this thread notices (both wake up together
after a pause): the enqueue itself is fenced (:func:`kaizen.scale.queue.enqueue_cycle` inserts the job
only while the lease row is still this replica's at its epoch), and a refused enqueue calls
:meth:`Leadership.tick` at once, so the replica steps down on the spot. The epoch the new leader
holds also fences any promotion of older work (:mod:`kaizen.scale.fence`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from kaizen.scale.lease import Lease, Term

__all__ = ["Leadership"]

log = logging.getLogger("kaizen.service")


class Leadership:
    """Renews ``lease``; ``on_change(term_or_None)`` when this replica starts (a Term) or stops (None) leading."""

    def __init__(self, lease: Lease, on_change: Callable[[Term | None], None], stop: threading.Event) -> None:
        self.lease, self.on_change, self.stop = lease, on_change, stop
        self.term: Term | None = None          # this replica's term while it leads
        self.seen: Term | None = None          # the lease as last read (who leads, which epoch)
        self.error: str | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # the lease thread and a fenced enqueue (a scheduler thread) both tick

    @property
    def leading(self) -> bool:
        return self.term is not None

    def start(self) -> Leadership:
        self.tick()
        self._thread = threading.Thread(target=self._loop, name="kaizen-lease", daemon=True)
        self._thread.start()
        return self

    def tick(self) -> None:
        """One renewal (or attempt to take over); steps down on any failure."""
        with self._lock:
            if self.stop.is_set():  # stopping: release() hands the lease over; no more changes of state
                return
            self._tick()

    def _tick(self) -> None:
        try:
            term = self.lease.acquire()
            self.error = None
        except Exception as exc:  # the coordination database is unreachable: we cannot know; stop leading now
            self.error = f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
            term = None
            if self.term is not None:
                log.error("cannot renew the scheduler lease (%s): stepping down", self.error)
        self.seen = term if term is not None else self.seen
        was = self.term
        now = term if term is not None and term.leader else None
        if now is not None and (was is None or was.epoch != now.epoch):
            self.term = now
            log.info("leading the schedule (epoch %d)", now.epoch)
            self.on_change(now)
        elif now is None and was is not None:
            self.term = None
            log.warning("no longer leading (lease held by %s, epoch %s)", term.holder if term else "?",
                        term.epoch if term else "?")
            self.on_change(None)
        elif now is not None:
            self.term = now  # renewed: a new expiry, the same epoch

    def _loop(self) -> None:
        period = self.lease.ttl / 3.0
        while not self.stop.wait(period):
            self.tick()

    def release(self) -> None:
        """On a clean shutdown (the stop event set): give the lease up so a standby takes over at its next try."""
        with self._lock:
            term, self.term = self.term, None
        if term is None:
            return
        try:
            self.lease.release()
        except Exception as exc:
            log.warning("could not release the scheduler lease (%s); it expires by itself", exc)
