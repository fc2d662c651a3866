"""One daemon per state folder: an ``fcntl`` lock on ``<state>/kaizen.lock``.

The kernel drops the lock when the holder exits, however it exits (SIGKILL
included), so a stale lock file never blocks a restart. The file holds the
holder's pid for messages and ``kaizen status``.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from kaizen.run.locks import FileLock

__all__ = ["LOCK_NAME", "StateLock", "holder"]

LOCK_NAME = "kaizen.lock"


class StateLock(FileLock):
    """An exclusive lock on a state folder, held while the object's file descriptor is open."""

    def __init__(self, state_dir: Path) -> None:
        super().__init__(Path(state_dir) / LOCK_NAME)


def holder(state_dir: Path) -> int | None:
    """The pid of the daemon holding the state folder's lock, or None if no daemon runs."""
    path = Path(state_dir) / LOCK_NAME
    if not path.exists():
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = path.read_text().strip()
            return int(text) if text.isdigit() else -1
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
