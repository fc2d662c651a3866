"""One run at a time per policy: an ``fcntl`` lock on ``<state>/locks/<policy>.lock``.

Every command that can change a policy's registry entries or its promotion
log — ``once``, a scheduled cycle of ``kaizen run``, ``bootstrap``,
``approve``/``reject``, a retrain — takes the policy's lock through the runner
(:mod:`kaizen.run.runner`), so two of them never interleave: the second waits up to
its patience and then refuses with the holder's pid. The kernel drops the lock
when its holder exits, however it exits (SIGKILL included), so a stale file never
blocks anyone. ``flock`` locks belong to an open file description: two threads
of one process that open the file separately exclude each other too.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

from kaizen.errors import BusyError

__all__ = ["FileLock", "PolicyLock"]

LOCKS_DIR = "locks"


class FileLock:
    """An exclusive, non-blocking ``flock`` on ``path``, held while the object's descriptor is open.

    The file holds the holder's pid (for messages and ``kaizen status``). Shared by the policy
    locks here and the daemon's state-folder lock (:mod:`kaizen.service.lock`).
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        os.fsync(fd)
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None


class PolicyLock(FileLock):
    """The exclusive lock of one policy in one state folder (a context manager)."""

    def __init__(self, state_dir: Path, policy: str, *, wait_seconds: float = 0.0) -> None:
        super().__init__(Path(state_dir) / LOCKS_DIR / f"{policy}.lock")
        self.policy = policy
        self.wait_seconds = float(wait_seconds)

    def acquire(self) -> PolicyLock:
        """Take the lock, waiting up to ``wait_seconds``; :class:`BusyError` naming the holder if it stays held."""
        deadline = time.monotonic() + self.wait_seconds
        delay = 0.05
        while not self.try_acquire():
            if time.monotonic() >= deadline:
                raise BusyError(f"policy {self.policy!r} is busy: another kaizen process (pid {self.holder()}) "
                                f"holds {self.path}; try again when it finishes")
            time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
            delay = min(delay * 2, 1.0)
        return self

    def holder(self) -> str:
        try:
            text = self.path.read_text().strip()
        except OSError:
            return "unknown"
        return text or "unknown"

    def __enter__(self) -> PolicyLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
