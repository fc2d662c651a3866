"""One lock per policy across every host: a row of ``kaizen.policy_lock`` held ``FOR UPDATE`` by the run.

The run that holds a policy keeps one connection with an open transaction that locked the policy's
row; nobody else can lock it until that transaction ends — when the run releases it, or when its
process dies and PostgreSQL drops the connection (no stale lock survives a crash). A row lock in an
open transaction works behind transaction-mode pooling, where session advisory locks do not. Who
holds it is written, committed, to ``kaizen.policy_holder`` so a refused caller can name the holder.

Same interface as :class:`kaizen.run.locks.PolicyLock` (a context manager; ``try_acquire``,
``acquire`` waiting ``wait_seconds``, ``release``, ``holder``).
"""

from __future__ import annotations

import time
from typing import Any

from kaizen.errors import BusyError
from kaizen.scale.db import connect, holder_id

__all__ = ["PgPolicyLock"]


class PgPolicyLock:
    def __init__(self, url: str, policy: str, *, wait_seconds: float = 0.0, holder: str | None = None) -> None:
        self.url, self.policy, self.wait_seconds = url, policy, float(wait_seconds)
        self.me = holder or holder_id()
        self._conn: Any = None

    def try_acquire(self) -> bool:
        import psycopg

        if self._conn is not None:
            return True
        conn = connect(self.url, autocommit=True)
        try:
            conn.execute("INSERT INTO kaizen.policy_lock (policy) VALUES (%s) ON CONFLICT DO NOTHING", (self.policy,))
            conn.execute("BEGIN")
            conn.execute("SELECT 1 FROM kaizen.policy_lock WHERE policy = %s FOR UPDATE NOWAIT", (self.policy,))
        except psycopg.errors.LockNotAvailable:
            conn.close()
            return False
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        with connect(self.url) as other:
            other.execute("INSERT INTO kaizen.policy_holder (policy, holder, since) VALUES (%s, %s, now()) "
                          "ON CONFLICT (policy) DO UPDATE SET holder = EXCLUDED.holder, since = EXCLUDED.since",
                          (self.policy, self.me))
        return True

    def acquire(self) -> PgPolicyLock:
        deadline = time.monotonic() + self.wait_seconds
        delay = 0.05
        while not self.try_acquire():
            if time.monotonic() >= deadline:
                raise BusyError(f"policy {self.policy!r} is busy: another kaizen process ({self.holder()}) holds its "
                                "lock in the coordination database; try again when it finishes")
            time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
            delay = min(delay * 2, 1.0)
        return self

    def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.execute("ROLLBACK")
        finally:
            conn.close()

    def held(self) -> bool:
        return self._conn is not None

    def holder(self) -> str:
        try:
            with connect(self.url) as conn:
                row = conn.execute("SELECT holder, since FROM kaizen.policy_holder WHERE policy = %s",
                                   (self.policy,)).fetchone()
        except Exception:
            return "unknown"
        return f"{row[0]} since {row[1]:%Y-%m-%d %H:%M:%S}" if row else "unknown"

    def __enter__(self) -> PgPolicyLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
