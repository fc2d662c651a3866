"""The scale-out path's ``kaizen run``: keep competing for the scheduler's lease; lead or stand by.

A :class:`Leadership` thread renews (or tries to take) the lease (:mod:`kaizen.scale.lease`) every
third of ``[coordination] lease_seconds`` and tells the service when this replica starts or stops
leading. A leader that cannot renew — the database is unreachable, or another replica took over
after a pause (a deposed leader waking up) — steps down at once: it pauses its schedule before its
lease can have expired, so two leaders never enqueue at the same time, and the epoch the new leader
holds fences anything the old one enqueued (:mod:`kaizen.scale.fence`).
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
        """On a clean shutdown: give the lease up so a standby takes over at its next try."""
        if self.term is None:
            return
        try:
            self.lease.release()
        except Exception as exc:
            log.warning("could not release the scheduler lease (%s); it expires by itself", exc)
        self.term = None
