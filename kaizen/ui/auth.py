"""Who may approve from the review pages: the review token, sessions and their CSRF tokens.

The token lives in the environment variable that ``[ui] token_env`` names, never in config.toml; no
variable (or an empty one) means the pages are read-only. A browser gets a session (an opaque random
id in an ``HttpOnly; SameSite=Strict`` cookie) the first time it loads a page while review is
possible; the session holds a CSRF token that every form repeats and every POST must match. A person
proves the review token either by typing it into the approve/reject form, or once, on ``/login``
(which starts a fresh session id, so a planted cookie never becomes a logged-in one). Sessions live in
memory for ``[ui] session_hours``; restarting the server logs everybody out.
"""

from __future__ import annotations

import hmac
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["COOKIE", "Session", "Sessions", "read_token", "same"]

COOKIE = "kaizen_session"
#: the most sessions kept; the oldest go first (a crawler must not fill the memory)
MAX_SESSIONS = 10_000


def read_token(env_name: str) -> str | None:
    """The review token from the environment variable ``env_name`` (None: review is off)."""
    if not env_name:
        return None
    value = os.environ.get(env_name, "").strip()
    return value or None


def same(given: str | None, expected: str | None) -> bool:
    """Constant-time comparison; an empty or missing value never matches."""
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


@dataclass
class Session:
    id: str
    csrf: str
    expires: float
    authed: bool = False
    by: str = ""


class Sessions:
    """In-memory sessions, thread-safe."""

    def __init__(self, ttl_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = float(ttl_seconds)
        self._clock = clock
        self._lock = threading.Lock()
        self._items: dict[str, Session] = {}

    def new(self, *, authed: bool = False, by: str = "") -> Session:
        s = Session(id=secrets.token_urlsafe(32), csrf=secrets.token_urlsafe(32),
                    expires=self._clock() + self.ttl, authed=authed, by=by)
        with self._lock:
            while len(self._items) >= MAX_SESSIONS:
                self._items.pop(next(iter(self._items)))
            self._items[s.id] = s
        return s

    def get(self, sid: str | None) -> Session | None:
        if not sid:
            return None
        with self._lock:
            s = self._items.get(sid)
            if s is None:
                return None
            if self._clock() >= s.expires:
                self._items.pop(sid, None)
                return None
            return s

    def login(self, old: Session | None) -> Session:
        """A fresh, logged-in session replacing ``old`` (new id and CSRF token)."""
        if old is not None:
            self.drop(old.id)
        return self.new(authed=True, by=old.by if old else "")

    def drop(self, sid: str) -> None:
        with self._lock:
            self._items.pop(sid, None)
