"""The service's HTTP endpoint: ``/healthz``, ``/readyz`` and ``/metrics``.

Bound to 127.0.0.1 by default (``[service] host``/``port``); port 0 picks a
free port, written to the service's status file. Standard library server, one
thread per request; nothing here imports MLflow. Answers never carry
credentials: ``/readyz`` details pass through :func:`kaizen.redact.redact_obj`.
"""

from __future__ import annotations

import json
import logging
import shutil
import sqlite3
import threading
import time
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from prometheus_client.exposition import CONTENT_TYPE_LATEST

from kaizen.redact import redact, redact_obj

__all__ = ["DiskSpace", "HealthServer", "registry_reachable"]

log = logging.getLogger("kaizen.service.http")


def registry_reachable(uri: str, timeout: float = 2.0) -> tuple[bool, str]:
    """Can the MLflow registry at ``uri`` be reached? Cheap: no MLflow import."""
    try:
        if uri.startswith("sqlite:///"):
            path = Path(uri[len("sqlite:///"):])
            if not path.exists():
                ok = path.parent.is_dir()
                return ok, f"{path} not created yet" if ok else f"folder {path.parent} does not exist"
            con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=timeout)
            try:
                con.execute("select 1").fetchone()
            finally:
                con.close()
            return True, "sqlite ok"
        if uri.startswith(("http://", "https://")):
            with urllib.request.urlopen(_health_request(uri), timeout=timeout) as resp:  # noqa: S310
                return resp.status == 200, f"HTTP {resp.status}"
        if "://" in uri:
            from sqlalchemy import create_engine, text

            engine = create_engine(uri, pool_pre_ping=True)
            try:
                with engine.connect() as con:
                    con.execute(text("select 1"))
            finally:
                engine.dispose()
            return True, "database ok"
        return Path(uri).exists(), uri
    except Exception as exc:
        return False, redact(f"{type(exc).__name__}: {exc}")


def _health_request(uri: str) -> urllib.request.Request:
    """GET ``<uri>/health``; ``user:password@`` in ``uri`` becomes a Basic auth header, not part of the URL."""
    import base64
    from urllib.parse import unquote, urlsplit, urlunsplit

    parts = urlsplit(uri.rstrip("/"))
    host = parts.hostname or ""
    netloc = (f"[{host}]" if ":" in host else host) + (f":{parts.port}" if parts.port else "")
    req = urllib.request.Request(urlunsplit((parts.scheme, netloc, parts.path + "/health", "", "")))
    if parts.username is not None:
        token = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        req.add_header("Authorization", "Basic " + base64.b64encode(token).decode())
    return req


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # socketserver prints the traceback to stderr itself; log it instead (redacted, one JSON line)
        import sys

        exc = sys.exc_info()[1]
        peer = client_address[0] if client_address else "?"
        if isinstance(exc, OSError):  # the client went away mid-answer: not our bug
            log.warning("error while answering %s: %s: %s", peer, type(exc).__name__, exc)
        else:
            log.exception("error while answering %s", peer)


class HealthServer:
    """Serves the endpoints on a daemon thread until :meth:`close`."""

    def __init__(self, host: str, port: int, *, ready: Callable[[], tuple[bool, dict[str, Any]]],
                 metrics: Callable[[], bytes]) -> None:
        self._ready = ready
        self._metrics = metrics
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                path = self.path.split("?", 1)[0]
                if path == "/healthz":
                    self._send(200, b'{"status": "ok"}\n', "application/json")
                elif path == "/readyz":
                    ok, detail = server._ready()
                    body = json.dumps(redact_obj({"status": "ready" if ok else "not ready", **detail}),
                                      default=str).encode() + b"\n"
                    self._send(200 if ok else 503, body, "application/json")
                elif path == "/metrics":
                    self._send(200, server._metrics(), CONTENT_TYPE_LATEST)
                else:
                    self._send(404, b'{"error": "not found"}\n', "application/json")

            def _send(self, code: int, body: bytes, ctype: str) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, fmt: str, *args: Any) -> None:
                log.debug("http: " + fmt, *args)

        self.httpd = _Server((host, port), Handler)
        self.httpd.daemon_threads = True
        self.host, self.port = self.httpd.server_address[:2]
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="kaizen-http", daemon=True)

    def start(self) -> HealthServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class CachedCheck:
    """Re-run an expensive check at most every ``ttl`` seconds."""

    def __init__(self, check: Callable[[], tuple[bool, str]], ttl: float = 10.0) -> None:
        self.check, self.ttl = check, ttl
        self._at = 0.0
        self._value: tuple[bool, str] = (False, "not checked yet")
        self._lock = threading.Lock()

    def __call__(self) -> tuple[bool, str]:
        with self._lock:
            if time.monotonic() - self._at > self.ttl:
                self._value = self.check()
                self._at = time.monotonic()
            return self._value


class DiskSpace:
    """Free bytes on the file system that holds ``path``, read at most every ``ttl`` seconds.

    Calling it answers ``(ok, detail)`` for ``/readyz``: not ok below ``min_free`` bytes (0: never).
    A change between enough and too little is logged once (WARNING when it runs low).
    """

    def __init__(self, path: Path, min_free: int, ttl: float = 5.0) -> None:
        self.path, self.min_free, self.ttl = Path(path), int(min_free), ttl
        self._at = -float("inf")
        self._free: int | None = None
        self._low = False
        self._lock = threading.Lock()

    def free(self) -> int | None:
        """Free bytes (for unprivileged users) under ``path``; None if the file system cannot be read."""
        with self._lock:
            if time.monotonic() - self._at > self.ttl:
                try:
                    self._free = shutil.disk_usage(self.path).free
                except OSError as exc:
                    log.warning("cannot read the free space under %s: %s", self.path, exc)
                    self._free = None
                self._at = time.monotonic()
                low = self._free is not None and self._free < self.min_free
                if low != self._low:
                    self._low = low
                    if low:
                        log.warning("disk space %s", self._describe(self._free))
                    else:
                        log.info("disk space back above min_free_bytes: %d bytes free under %s", self._free,
                                 self.path)
            return self._free

    def __call__(self) -> tuple[bool, str]:
        free = self.free()
        if free is None:
            return False, f"cannot read the free space under {self.path}"
        if free < self.min_free:
            return False, self._describe(free)
        return True, f"ok: {free} bytes free under {self.path}"

    def _describe(self, free: int | None) -> str:
        return f"low: {free} bytes free under {self.path} (min_free_bytes {self.min_free})"
