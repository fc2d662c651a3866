"""Webhooks on the scale-out path: rows of ``kaizen.outbox``, delivered by whichever process runs next.

On the embedded path the process that decided sends its webhooks from threads (:func:`kaizen.notify.dispatch`);
a process killed before they finish loses them. On the scale-out path (``[coordination] url``) the
deciding process sends nothing. It writes one row per (record, subscribed webhook) — the message
:func:`kaizen.notify.messages` builds, the webhook's ``timeout_seconds``/``retries``/``backoff_seconds``,
and the **name** of the environment variable that holds its URL (never the URL or a token):

* in the same transaction as the record when the promotion log is table ``kaizen.record`` in the same
  database (:class:`kaizen.scale.ledger.PgLedger`): the record and its webhooks exist together or not at all;
* right after the append otherwise (the JSON Lines file, or a log in another database). If that insert
  fails, the run's journal entry is kept, and the next run of the policy — on any host — queues the
  rows when its recovery finds the record already written (:mod:`kaizen.run.recovery`). Records that
  recovery itself writes (a run whose process died) are queued as well.

``UNIQUE (record_id, webhook)`` makes queuing idempotent, so nothing is queued twice.

A :class:`Sender` runs in every ``kaizen run`` replica and every ``kaizen worker``. It claims one due
row at a time (``FOR UPDATE SKIP LOCKED``), makes one attempt with the notify module's delivery code
(:func:`kaizen.notify.attempt`: the URL read from this process's environment now, the answer
classified, one log line naming the variable), and in the same transaction marks the row ``sent``,
``given up`` (a 4xx, or ``retries`` retries spent; ``last_error`` scrubbed of the URL) or due again after
``backoff_seconds`` × 2^attempt. The row stays locked while its POST is in flight, so two senders never
deliver one row at once; a sender killed mid-POST leaves the row unmarked, and another delivers it
(at least once: a receiver that answered 2xx to a sender killed before its commit gets it twice). A
sender only claims the rows of webhooks whose variable is set in its own environment. It waits on
``LISTEN kaizen_outbox`` (every insert notifies) until the next row is due, at most ``wait_seconds``.

Sent and given-up rows stay (they are what makes queuing idempotent); delete old ones by hand if
the table grows: ``DELETE FROM kaizen.outbox WHERE sent_at < now() - interval '90 days'``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
from collections.abc import Iterable, Iterator
from typing import Any

from kaizen.ledger import Record
from kaizen.notify import attempt, messages
from kaizen.redact import redact
from kaizen.scale.db import connect, conninfo, holder_id

__all__ = ["CHANNEL", "Outbox", "Sender", "sending", "start_sender"]

log = logging.getLogger("kaizen.notify")

#: the LISTEN/NOTIFY channel an insert wakes the senders on
CHANNEL = "kaizen_outbox"

_INSERT = """
INSERT INTO kaizen.outbox (record_id, policy, event, webhook, body, timeout_seconds, retries, backoff_seconds)
VALUES (%s, %s, %s, %s, %s::jsonb, %s, %s, %s)
ON CONFLICT (record_id, webhook) DO NOTHING
"""
_PENDING = "sent_at IS NULL AND given_up_at IS NULL AND webhook = ANY(%(names)s)"
_CLAIM = f"""
SELECT id, record_id, policy, event, webhook, body, timeout_seconds, retries, backoff_seconds, attempts
FROM kaizen.outbox WHERE {_PENDING} AND next_at <= now()
ORDER BY next_at, id LIMIT 1 FOR UPDATE SKIP LOCKED
"""
_NEXT = f"""
SELECT extract(epoch FROM next_at - now()) FROM kaizen.outbox WHERE {_PENDING}
ORDER BY next_at LIMIT 1 FOR UPDATE SKIP LOCKED
"""


def _one_line(exc: BaseException) -> str:
    return redact(" ".join(f"{type(exc).__name__}: {exc}".split()))[:300]


class Outbox:
    """Where the records of ``config`` queue their webhooks: table ``kaizen.outbox`` at ``url``."""

    def __init__(self, url: str, config: Any) -> None:
        self.url, self.config = url, config

    def _rows(self, record: Record) -> list[tuple[Any, ...]]:
        """The rows of ``record``'s webhooks; none (one WARNING line) when its messages cannot be built: a
        notification never costs a decision."""
        try:
            return [(record.id, record.policy, m.event, m.hook.url_env, json.dumps(m.body, default=str),
                     m.hook.timeout_seconds, m.hook.retries, m.hook.backoff_seconds)
                    for m in messages(self.config, record)]
        except Exception as exc:
            log.warning("webhooks of %s not queued: their messages cannot be built: %s", record.id, _one_line(exc))
            return []

    def insert(self, conn: Any, record: Record) -> int:
        """Queue the webhooks of ``record`` on ``conn``, inside the caller's transaction; how many it subscribes."""
        rows = self._rows(record)
        if rows:
            with conn.cursor() as cur:
                cur.executemany(_INSERT, rows)
            conn.execute(f"NOTIFY {CHANNEL}")
        return len(rows)

    def add(self, record: Record) -> bool:
        """Queue the webhooks of ``record`` (already written) in a transaction of its own; False (logged) if it
        failed. Idempotent: a webhook already queued for the record is not queued again."""
        if not self._rows(record):
            return True
        try:
            with connect(self.url, autocommit=False) as conn:
                with conn.transaction():
                    self.insert(conn, record)
        except Exception as exc:
            log.error("webhooks of %s %s not queued in the outbox (%s): %s; the run's journal keeps it, and the next "
                      "run of %s queues them", record.kind, record.id, redact(self.url), _one_line(exc), record.policy)
            return False
        return True

    def append(self, ledger: Any, record: Record) -> tuple[Record, bool]:
        """Append ``record`` to ``ledger`` and queue its webhooks: (the record as written, whether they are queued).

        One transaction when ``ledger`` is a :class:`~kaizen.scale.ledger.PgLedger` on this database; else
        the append (which raises as it always does), then :meth:`add`.
        """
        from kaizen.scale.ledger import PgLedger

        if isinstance(ledger, PgLedger) and conninfo(ledger.url) == conninfo(self.url):
            return ledger.append(record, also=self.insert), True
        written = ledger.append(record)
        return written, self.add(written)


class Sender:
    """Delivers the due rows of ``kaizen.outbox`` at ``url`` for the webhooks named ``webhooks`` (their
    ``url_env``), one row per transaction (module docstring). ``holder`` is recorded in ``sent_by``."""

    def __init__(self, url: str, webhooks: Iterable[str], *, holder: str | None = None,
                 wait_seconds: float = 10.0) -> None:
        if not wait_seconds > 0:
            raise ValueError(f"The 'wait_seconds' parameter of Sender must be > 0. Got {wait_seconds!r} instead.")
        self.url, self.webhooks = url, tuple(dict.fromkeys(webhooks))
        self.holder = holder or holder_id()
        self.wait_seconds = float(wait_seconds)
        self.stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._unset: set[str] = set()

    def names(self) -> list[str]:
        """The webhooks whose URL variable is set in this process (the rows this sender may claim)."""
        out = []
        for name in self.webhooks:
            if os.environ.get(name, "").strip():
                out.append(name)
                self._unset.discard(name)
            elif name not in self._unset:
                self._unset.add(name)
                log.warning("webhook $%s: the environment variable is not set in this process; its outbox rows are "
                            "left to the processes that have it", name)
        return out

    def deliver_due(self, *, limit: int | None = None) -> int:
        """Attempt every due row this sender can claim (at most ``limit``); return how many were attempted."""
        names = self.names()
        done = 0
        if not names:
            return 0
        with connect(self.url, autocommit=False) as conn:
            while (limit is None or done < limit) and not self.stop.is_set():
                row = conn.execute(_CLAIM, {"names": names}).fetchone()
                if row is None:
                    conn.rollback()
                    break
                self._attempt(conn, *row)
                conn.commit()
                done += 1
        return done

    def _attempt(self, conn: Any, row_id: int, record_id: str, policy: str, event: str, webhook: str,
                 body: dict[str, Any], timeout: float, retries: int, backoff: float, attempts: int) -> None:
        from kaizen.config import Webhook

        hook = Webhook(url_env=webhook, timeout_seconds=timeout, retries=retries, backoff_seconds=backoff)
        tried = attempt(hook, body, what=f"{event} {record_id} of {policy}", number=attempts)
        if tried.delivered:
            conn.execute("UPDATE kaizen.outbox SET sent_at = clock_timestamp(), sent_by = %s, "
                         "attempts = attempts + 1, last_error = NULL WHERE id = %s", (self.holder, row_id))
        elif tried.final:
            conn.execute("UPDATE kaizen.outbox SET given_up_at = clock_timestamp(), attempts = attempts + 1, "
                         "last_error = %s WHERE id = %s", (tried.problem[:1000], row_id))
        else:
            conn.execute("UPDATE kaizen.outbox SET attempts = attempts + 1, last_error = %s, "
                         "next_at = clock_timestamp() + %s * interval '1 second' WHERE id = %s",
                         (tried.problem[:1000], tried.delay, row_id))

    def _next_wait(self, conn: Any) -> float:
        """Seconds until the next row this sender could claim is due (at most ``wait_seconds``)."""
        names = self.names()
        if not names:
            return self.wait_seconds
        with conn.transaction():
            row = conn.execute(_NEXT, {"names": names}).fetchone()
        if row is None or row[0] is None:
            return self.wait_seconds
        return min(max(float(row[0]), 0.0), self.wait_seconds)

    def serve(self) -> None:
        """Deliver until :attr:`stop` is set: due rows now, then wait for an insert or the next due row."""
        listen = None
        while not self.stop.is_set():
            try:
                if listen is None:
                    listen = connect(self.url)
                    listen.execute(f"LISTEN {CHANNEL}")
                self.deliver_due()
                wait = self._next_wait(listen)
                if wait > 0 and not self.stop.is_set():
                    for _ in listen.notifies(timeout=wait, stop_after=1):
                        pass
            except Exception as exc:  # the database went away: try again later; a row is never lost, only late
                log.error("webhook outbox at %s: %s; trying again in %gs", redact(self.url), _one_line(exc),
                          self.wait_seconds)
                with contextlib.suppress(Exception):
                    if listen is not None:
                        listen.close()
                listen = None
                self.stop.wait(self.wait_seconds)
        if listen is not None:
            with contextlib.suppress(Exception):
                listen.close()

    def start(self) -> Sender:
        """Serve on a daemon thread (a replica or a worker: a row it had not finished is another's to send)."""
        self._thread = threading.Thread(target=self.serve, name="kaizen-outbox", daemon=True)
        self._thread.start()
        return self

    def close(self, timeout: float = 10.0) -> None:
        """Stop after the row in flight (wakes the wait at once when the database answers)."""
        self.stop.set()
        with contextlib.suppress(Exception):
            with connect(self.url, timeout=2.0) as conn:
                conn.execute(f"NOTIFY {CHANNEL}")
        if self._thread is not None:
            self._thread.join(timeout)


def start_sender(config: Any) -> Sender | None:
    """A started :class:`Sender` for ``config`` on the scale-out path with webhooks configured; else None."""
    url = getattr(getattr(config, "coordination", None), "url", None)
    hooks = [h.url_env for h in config.notify.webhooks]
    if not url or not hooks:
        return None
    log.info("webhook outbox: delivering for %s", ", ".join(f"${h}" for h in dict.fromkeys(hooks)))
    return Sender(url, hooks).start()


@contextlib.contextmanager
def sending(config: Any) -> Iterator[Sender | None]:
    """:func:`start_sender` around a block (``kaizen worker``), closed at its end."""
    sender = start_sender(config)
    try:
        yield sender
    finally:
        if sender is not None:
            sender.close()
