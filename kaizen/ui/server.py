"""The review pages over HTTP: ``kaizen ui``, or a thread of ``kaizen run`` when ``[ui] enabled``.

Standard library server (:class:`http.server.ThreadingHTTPServer`), one thread per request, bound to
``[ui] host`` (127.0.0.1 by default) and ``[ui] port``. :class:`App` turns a request into a response;
:class:`UIServer` carries them over sockets. Routes::

    GET  /                          overview: each policy's champion, last decision, chart
    GET  /decisions                 the list: ?policy= &decision= (repeatable) &since= &until= &open=1 &page=
    GET  /decisions/<id>            one record in full, with the approve/reject forms when it waits
    GET  /decisions/<id>/report     the cycle's Evidently report (only a file inside the state or artifact folders)
    GET  /login   POST /login   POST /logout
    POST /decisions/<id>/approve    POST /decisions/<id>/reject
    GET  /static/<file>             the style sheet shipped in kaizen/ui/static

Every POST is refused (403) unless a review token is configured, the session's CSRF token comes back
with the form, and the person proved the token (typed into the form, or on /login). An approval or a
rejection goes through :func:`kaizen.commands.review.approve`/:func:`~kaizen.commands.review.reject` (the one runner:
the policy's lock, the journal, exactly one record) with ``actor = "<name typed> via ui"``. Pages are
sent with a Content-Security-Policy that allows no script; the Evidently report (which is all inline
script) is sent sandboxed, as an opaque origin that cannot reach these pages' cookies. When bound to a
loopback address, requests naming another host are refused (DNS rebinding).
"""

from __future__ import annotations

import logging
import math
import signal
import threading
import time
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from kaizen.config import Config
from kaizen.errors import BusyError, KaizenError
from kaizen.ledger import DECISIONS
from kaizen.redact import redact
from kaizen.ui.auth import COOKIE, Session, Sessions, read_token, same
from kaizen.ui.logview import Query, Row, parse_when
from kaizen.ui.pages import Pages, Viewer

__all__ = ["App", "Request", "Response", "UIServer"]

log = logging.getLogger("kaizen.ui")

STATIC = Path(__file__).resolve().parent / "static"
_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".svg": "image/svg+xml"}
PAGE_CSP = ("default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
            "frame-ancestors 'none'; base-uri 'none'")
REPORT_CSP = ("sandbox allow-scripts allow-popups; default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval' "
              "blob: data:; style-src 'unsafe-inline' data:; img-src data: blob:; font-src data:; "
              "connect-src 'none'; frame-ancestors 'none'")
MAX_FORM_BYTES = 64 * 1024
#: how long a wrong token costs its sender (a cheap brake on guessing)
WRONG_TOKEN_DELAY = 0.5
#: how long an approval waits for the policy's lock (a cycle may hold it) before saying so
LOCK_WAIT_SECONDS = 2.0
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    body: bytes = b""


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    headers: list[tuple[str, str]] = field(default_factory=list)
    file: Path | None = None  # sent instead of body (the report)


def _html(status: int, html: str) -> Response:
    return Response(status, html.encode(), headers=[("Content-Security-Policy", PAGE_CSP)])


def _redirect(location: str) -> Response:
    return Response(303, b"", headers=[("Location", location)])


def report_roots(config: Config) -> list[Path]:
    """Folders a report may be served from: the state folder and a local artifact location."""
    roots = [config.state_dir, config.reports_dir]
    art = config.artifact_location
    if art.startswith("file:"):
        roots.append(Path(unquote(urlsplit(art).path)))
    elif "://" not in art:
        roots.append(Path(art))
    out = []
    for r in roots:
        try:
            out.append(r.resolve())
        except OSError:
            continue
    return out


#: how many of a policy's newest records the overview reads for its health verdict (kaizen.health)
HEALTH_RECORDS = 50


class App:
    """The pages and actions, independent of the socket."""

    def _healths(self, policies: list[str]) -> dict[str, dict[str, Any]]:
        """Each policy's red/green verdict (kaizen.health) from a bounded read of the log's newest records."""
        from kaizen.health import health
        from kaizen.run.backend import ledger_for

        ledger = ledger_for(self.config)
        return {p: health(ledger.tail(p, HEALTH_RECORDS), p) for p in policies}

    def __init__(self, config: Config, *, token: str | None = None, bound_host: str = "127.0.0.1") -> None:
        self.config = config
        self.settings = config.ui
        self.token = token
        from kaizen.run.backend import log_view_for

        self.view = log_view_for(config)  # the file's rows (LogView), or table kaizen.record's (PgLogView)
        self.pages = Pages()
        self.sessions = Sessions(self.settings.session_hours * 3600)
        self.roots = report_roots(config)
        self.static = {p.name: p for p in STATIC.iterdir() if p.suffix in _TYPES} if STATIC.is_dir() else {}
        self.check_host = bound_host in _LOOPBACK or bound_host.startswith("127.")
        public = urlsplit(self.settings.public_url) if self.settings.public_url else None
        self.public_host = public.hostname if public else None
        self.public_origin = f"{public.scheme}://{public.netloc}" if public else None
        self.secure_cookie = bool(public and public.scheme == "https")

    @property
    def mode(self) -> str:
        env = self.settings.token_env
        if self.token:
            return f"review enabled: the token is read from ${env}"
        if env:
            return f"read-only: ${env} (ui.token_env) is not set or empty"
        return "read-only: no review token configured (ui.token_env)"

    # -- plumbing -----------------------------------------------------------------------------------
    def handle(self, req: Request) -> Response:
        if self.check_host and not self._host_ok(req.headers.get("host", "")):
            return Response(421, b"unexpected Host header\n", "text/plain; charset=utf-8")
        session, fresh = self._session(req)
        try:
            resp = self._route(req, session)
        except KaizenError as exc:
            resp = _html(400, self.pages.message("Bad request", str(exc), self._viewer(session)))
        if fresh and session is not None:
            cookie = f"{COOKIE}={session.id}; Path=/; HttpOnly; SameSite=Strict"
            resp.headers.append(("Set-Cookie", cookie + ("; Secure" if self.secure_cookie else "")))
        return resp

    def _host_ok(self, host: str) -> bool:
        name = urlsplit(f"//{host}").hostname or ""
        return name in _LOOPBACK or name.startswith("127.") or (self.public_host is not None
                                                                 and name == self.public_host)

    def _session(self, req: Request) -> tuple[Session | None, bool]:
        """The request's session; a new one on a page view while review is possible (second: it is new)."""
        if not self.token:
            return None, False
        cookie = SimpleCookie()
        try:
            cookie.load(req.headers.get("cookie", ""))
        except Exception:  # a malformed Cookie header: no session
            cookie = SimpleCookie()
        morsel = cookie.get(COOKIE)
        s = self.sessions.get(morsel.value if morsel else None)
        if s is None and req.method == "GET":
            return self.sessions.new(), True
        return s, False

    def _viewer(self, s: Session | None) -> Viewer:
        return Viewer(review=bool(self.token), authed=bool(s and s.authed), csrf=s.csrf if s else "",
                            by=s.by if s else "")

    def _expired(self, rows: list[Row]) -> set[str]:
        if not rows:
            return set()
        try:
            from kaizen.commands.review import expired

            return expired(self.config, rows)
        except Exception as exc:  # expiry is a label here; the approval itself re-checks it
            log.debug("approval expiry not available: %s", exc)
            return set()

    def _route(self, req: Request, session: Session | None) -> Response:
        parts = [unquote(p) for p in req.path.split("/") if p]
        if req.method == "POST":
            return self._post(req, session, parts)
        if req.method != "GET":
            return Response(405, b"method not allowed\n", "text/plain; charset=utf-8", [("Allow", "GET, POST")])
        viewer = self._viewer(session)
        if not parts:
            snap = self.view.snapshot()
            return _html(200, self.pages.overview(snap, viewer, chart_points=self.settings.chart_points,
                                                  expired=self._expired(snap.waiting()),
                                                  healths=self._healths(snap.policies())))
        if parts == ["decisions"]:
            return self._list(req, viewer)
        if len(parts) == 2 and parts[0] == "decisions":
            return self._detail(parts[1], viewer)
        if len(parts) == 3 and parts[0] == "decisions" and parts[2] == "report":
            return self._report(parts[1], viewer)
        if parts == ["login"]:
            nxt = _local(req.query.get("next", ["/"])[0])
            return _html(200, self.pages.login(viewer, next_url=nxt, waiting=len(self.view.snapshot().waiting())))
        if len(parts) == 2 and parts[0] == "static" and parts[1] in self.static:
            f = self.static[parts[1]]
            return Response(200, f.read_bytes(), _TYPES[f.suffix], [("Cache-Control", "max-age=3600")])
        return _html(404, self.pages.message("Not found", f"nothing at {req.path}", viewer))

    # -- pages --------------------------------------------------------------------------------------
    def _list(self, req: Request, viewer: Viewer) -> Response:
        q = req.query
        raw = {k: (q.get(k) or [""])[0].strip() for k in ("policy", "since", "until", "open", "page")}
        bad = [d for d in q.get("decision", []) if d not in DECISIONS]
        if bad:
            raise KaizenError(f"decision must be one of {', '.join(DECISIONS)}; got {bad[0]!r}")
        query = Query(policy=raw["policy"] or None, decisions=tuple(dict.fromkeys(q.get("decision", []))),
                      since=parse_when(raw["since"], what="since") if raw["since"] else None,
                      until=parse_when(raw["until"], end=True, what="until") if raw["until"] else None,
                      open_only=raw["open"] == "1")
        snap = self.view.snapshot()
        answered = set(snap.resolved)
        rows = query.apply(snap.rows, answered)
        size = self.settings.page_size
        pages_n = max(1, math.ceil(len(rows) / size))
        try:
            page = min(max(1, int(raw["page"] or 1)), pages_n)
        except ValueError:
            raise KaizenError(f"page must be a whole number; got {raw['page']!r}") from None
        end = len(rows) - (page - 1) * size
        shown = rows[max(0, end - size):end][::-1]  # newest first
        return _html(200, self.pages.decisions(snap, viewer, query, shown, page=page, pages=pages_n, total=len(rows),
                                               expired=self._expired(snap.waiting()), raw=raw))

    def _find(self, record_id: str) -> tuple[Any, Row | None, Any]:
        snap = self.view.snapshot()
        row = snap.by_id.get(record_id)
        rec = self.view.record(row) if row is not None else None
        return snap, row, rec

    def _report_path(self, rec: Any) -> tuple[Path | None, str]:
        """The report's file if it may be served, else None and why not."""
        if not rec.report:
            return None, "this cycle wrote no report"
        p = Path(str(rec.report))
        if not p.is_absolute():
            return None, f"stored at {rec.report} (not a local path)"
        try:
            real = p.resolve()
        except OSError:
            return None, f"{rec.report} cannot be read"
        if not any(real.is_relative_to(root) for root in self.roots):
            return None, f"{rec.report} is outside the state and artifact folders; not served"
        if real.suffix.lower() not in (".html", ".htm") or not real.is_file():
            return None, f"{rec.report} is no longer there (retention deletes old reports)"
        return real, ""

    def _detail(self, record_id: str, viewer: Viewer, *, error: str = "", status: int = 200,
                notice: str = "") -> Response:
        snap, row, rec = self._find(record_id)
        if row is None or rec is None:
            return _html(404, self.pages.message("Not found", f"no record {record_id!r} in the promotion log", viewer,
                                                 waiting=len(snap.waiting())))
        path, note = self._report_path(rec)
        waiting = rec.decision == "awaiting_approval" and rec.id not in snap.resolved
        return _html(status, self.pages.decision(
            row, rec, snap, viewer, report_url=f"/decisions/{quote(rec.id, safe='')}/report" if path else None,
            report_note=note, expired=bool(waiting and self._expired([row])), error=error, notice=notice))

    def _report(self, record_id: str, viewer: Viewer) -> Response:
        _, row, rec = self._find(record_id)
        if rec is None:
            return _html(404, self.pages.message("Not found", f"no record {record_id!r} in the promotion log", viewer))
        path, note = self._report_path(rec)
        if path is None:
            return _html(404, self.pages.message("No report", note, viewer))
        return Response(200, content_type="text/html; charset=utf-8", file=path,
                        headers=[("Content-Security-Policy", REPORT_CSP)])

    # -- actions ------------------------------------------------------------------------------------
    def _post(self, req: Request, session: Session | None, parts: list[str]) -> Response:
        viewer = self._viewer(session)
        if not self.token:
            return _html(403, self.pages.message("Read-only", "these pages are read-only: no review token is "
                                                 "configured ([ui] token_env)", viewer))
        origin = req.headers.get("origin")
        if origin and origin != "null" and not self._origin_ok(origin, req.headers.get("host", "")):
            return _html(403, self.pages.message("Refused", "the form was sent from another site", viewer))
        if len(req.body) > MAX_FORM_BYTES:
            return _html(413, self.pages.message("Too large", "the form is too large", viewer))
        form = {k: v[0] for k, v in parse_qs(req.body.decode("utf-8", "replace"), keep_blank_values=True).items()}
        if session is None or not same(form.get("csrf"), session.csrf):
            return _html(403, self.pages.message("Refused", "the form expired or did not come from these pages "
                                                 "(CSRF check failed): reload the page and try again", viewer))
        if parts == ["login"]:
            if not same(form.get("token", "").strip(), self.token):
                time.sleep(WRONG_TOKEN_DELAY)
                return _html(403, self.pages.login(viewer, next_url=_local(form.get("next", "/")),
                                                   error="wrong token"))
            new = self.sessions.login(session)
            resp = _redirect(_local(form.get("next", "/")))
            resp.headers.append(("Set-Cookie", f"{COOKIE}={new.id}; Path=/; HttpOnly; SameSite=Strict"
                                 + ("; Secure" if self.secure_cookie else "")))
            return resp
        if parts == ["logout"]:
            self.sessions.drop(session.id)
            return _redirect("/")
        if len(parts) == 3 and parts[0] == "decisions" and parts[2] in ("approve", "reject"):
            return self._answer(parts[1], parts[2], form, session)
        return _html(404, self.pages.message("Not found", f"nothing to post at {req.path}", viewer))

    def _origin_ok(self, origin: str, host: str) -> bool:
        return origin in (f"http://{host}", f"https://{host}") or (self.public_origin is not None
                                                                    and origin == self.public_origin)

    def _answer(self, record_id: str, action: str, form: dict[str, str], session: Session) -> Response:
        viewer = self._viewer(session)
        if not session.authed and not same(form.get("token", "").strip(), self.token):
            time.sleep(WRONG_TOKEN_DELAY)
            return self._detail(record_id, viewer, status=403, error="wrong or missing review token: nothing was "
                                "recorded")
        by = " ".join(form.get("by", "").split())
        if not by or len(by) > 80 or not by.isprintable():
            return self._detail(record_id, viewer, status=400, error="type your name (1 to 80 printable characters): "
                                "it goes into the promotion log with the decision")
        session.by = by
        viewer = self._viewer(session)
        actor = f"{by} via ui"
        from kaizen.commands import review

        try:
            if action == "approve":
                rec = review.approve(self.config, record_id, actor=actor, wait_seconds=LOCK_WAIT_SECONDS)
            else:
                reason = " ".join(form.get("reason", "").split())
                rec = review.reject(self.config, record_id, actor=actor, reason=reason, wait_seconds=LOCK_WAIT_SECONDS)
        except BusyError as exc:
            return self._detail(record_id, viewer, status=409, error=f"{exc}; try again in a moment")
        except KaizenError as exc:
            return self._detail(record_id, viewer, status=409, error=str(exc))
        log.info("%s %s: %s by %s (record %s)", action, record_id, rec.decision, actor, rec.id)
        return _redirect(f"/decisions/{quote(rec.id, safe='')}")


def _local(url: str) -> str:
    """``url`` if it is a path on this site, else ``/`` (no open redirect)."""
    return url if url.startswith("/") and not url.startswith("//") and "\\" not in url else "/"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    app: App

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):  # the browser went away mid-answer
            log.debug("ui: client %s went away: %s", client_address, exc)
        else:
            log.exception("ui: error while answering %s", client_address[0] if client_address else "?")


class _Handler(BaseHTTPRequestHandler):
    server_version = "kaizen-ui"
    sys_version = ""
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self._run("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._run("POST")

    def _run(self, method: str) -> None:
        split = urlsplit(self.path)
        body = b""
        if method == "POST":
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = 0
            body = self.rfile.read(min(length, MAX_FORM_BYTES + 1)) if length > 0 else b""
        req = Request(method=method, path=split.path, query=parse_qs(split.query, keep_blank_values=True),
                      headers={k.lower(): v for k, v in self.headers.items()}, body=body)
        try:
            resp = self.server.app.handle(req)
        except Exception:
            log.exception("ui: %s %s failed", method, redact(split.path))
            resp = Response(500, b"internal error (see the server's log)\n", "text/plain; charset=utf-8")
        self.send_response(resp.status)
        size = resp.file.stat().st_size if resp.file is not None else len(resp.body)
        self.send_header("Content-Type", resp.content_type)
        self.send_header("Content-Length", str(size))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "same-origin")
        if not any(k == "Cache-Control" for k, _ in resp.headers):
            self.send_header("Cache-Control", "no-store")
        for k, v in resp.headers:
            self.send_header(k, v)
        self.end_headers()
        if resp.file is not None:
            with open(resp.file, "rb") as fh:
                while chunk := fh.read(1 << 16):
                    self.wfile.write(chunk)
        else:
            self.wfile.write(resp.body)

    def log_message(self, fmt: str, *args: Any) -> None:
        log.debug("ui: " + fmt, *args)


class UIServer:
    """The review pages on ``host:port`` (default ``[ui] host``/``port``; port 0 picks a free one)."""

    def __init__(self, config: Config, *, host: str | None = None, port: int | None = None,
                 token: str | None = None) -> None:
        host = host or config.ui.host
        port = config.ui.port if port is None else port
        self.app = App(config, token=token if token is not None else read_token(config.ui.token_env),
                       bound_host=host)
        self.httpd = _Server((host, port), _Handler)
        self.httpd.app = self.app
        self.host, self.port = self.httpd.server_address[:2]
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in str(self.host) else self.host
        return f"http://{host}:{self.port}"

    @property
    def mode(self) -> str:
        return self.app.mode

    def start(self) -> UIServer:
        """Serve on a daemon thread (``kaizen run``)."""
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="kaizen-ui", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve on this thread until SIGTERM or Ctrl-C (``kaizen ui``)."""
        def stop(*_: Any) -> None:
            threading.Thread(target=self.httpd.shutdown, daemon=True).start()

        previous = signal.signal(signal.SIGTERM, stop)
        try:
            self.httpd.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            signal.signal(signal.SIGTERM, previous)
            self.httpd.server_close()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
