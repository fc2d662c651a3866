"""The review pages over HTTP: ``kaizen ui``, or a thread of ``kaizen run`` when ``[ui] enabled``.

Standard library server (:class:`http.server.ThreadingHTTPServer`), one thread per request, bound to
``[ui] host`` (127.0.0.1 by default) and ``[ui] port``. :class:`App` turns a request into a response;
:class:`UIServer` carries them over sockets. Routes::

    GET  /                          overview: each policy's champion, last decision, chart
    GET  /decisions                 the list: ?policy= &decision= (repeatable) &since= &until= &open=1 &page=
    GET  /decisions/<id>            one record in full, with the approve/reject forms when it waits
    GET  /decisions/<id>/report     the cycle's report: its summary, then its Evidently snapshot (from MLflow)
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
from kaizen.ui.pages import Pages, Viewer, mlflow_ui

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
#: rendered report pages (about 4 MB each: Evidently's script is inline) kept in memory
REPORT_PAGES_KEPT = 4
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


class App:
    """The pages and actions, independent of the socket."""

    def _overview(self, req: Request, viewer: Viewer) -> Response:
        """Health first: each policy's verdict and the daemon's view (kaizen.status.collect on a bounded read of the
        log's newest records), then the cards; ``?last=N`` or ``?from=…&to=…`` pick the chart's cycles."""
        from kaizen.health import HEALTH_RECORDS, baseline_bound, policy_verdict
        from kaizen.run.backend import ledger_for
        from kaizen.status import collect
        from kaizen.ui.pages import Zoom

        q = req.query
        raw = {k: (q.get(k) or [""])[0].strip() for k in ("last", "from", "to")}
        try:
            last = int(raw["last"]) if raw["last"] else None
        except ValueError:
            raise KaizenError(f"last must be a whole number of cycles; got {raw['last']!r}") from None
        if last is not None and last < 2:
            raise KaizenError(f"last must be at least 2 cycles; got {raw['last']!r}")
        zoom = Zoom(last=last, since=parse_when(raw["from"], what="from") if raw["from"] else None,
                    until=parse_when(raw["to"], end=True, what="to") if raw["to"] else None)
        snap = self.view.snapshot()
        st = collect(self.config, tail=HEALTH_RECORDS)
        healths = {p["policy"]: p["health"] for p in st["policies"]}
        baselines = {p["policy"]: p.get("baselines") or {} for p in st["policies"]}
        missing = [p for p in snap.policies() if p not in healths]  # in the log, not in a policy file
        if missing:
            ledger = ledger_for(self.config)
            for p in missing:
                recs = ledger.tail(p, HEALTH_RECORDS)
                healths[p] = policy_verdict(self.config, p, records=recs, schedule=False).to_dict()
                baselines[p] = {r.id: b for r in recs if (b := baseline_bound(r))}
        return _html(200, self.pages.overview(snap, viewer, chart_points=self.settings.chart_points,
                                              expired=self._expired(snap.waiting()), healths=healths,
                                              baselines=baselines, status=st, zoom=zoom))

    def __init__(self, config: Config, *, token: str | None = None, bound_host: str = "127.0.0.1") -> None:
        self.config = config
        self.settings = config.ui
        self.token = token
        from kaizen.run.backend import log_view_for

        self.view = log_view_for(config)  # the file's rows (LogView), or table kaizen.record's (PgLogView)
        self.pages = Pages()
        self.sessions = Sessions(self.settings.session_hours * 3600)
        self.roots = report_roots(config)
        self._registry: Any = None  # the report's MLflow client, made at the first report asked for
        self._page_cache: dict[tuple[str, str], bytes] = {}
        self._pages_lock = threading.Lock()
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
            return self._overview(req, viewer)
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
        answered = set(snap.resolved) | set(snap.stale)  # "open": neither answered nor superseded
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

    def _report_path(self, rec: Any) -> tuple[Path | str | None, str]:
        """Where the cycle's report is, if it may be served, else None and why not.

        A :class:`Path`: Evidently's HTML page written by an older Kaizen (only a file inside the state or artifact
        folders). A ``str``: the path of the cycle's snapshot (``monitor/<cycle>.json``) inside its MLflow run,
        fetched through MLflow's artifact API wherever the artifacts live (:meth:`_rendered`)."""
        if not rec.report:
            return None, "this cycle wrote no report"
        name = str(rec.report).rstrip("/").rsplit("/", 1)[-1]
        if name.endswith(".json"):
            if not rec.mlflow_run_id:
                return None, f"stored at {rec.report}, but the record names no MLflow run to fetch it from"
            return f"monitor/{name}", ""
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

    def _rendered(self, rec: Any, artifact: str) -> bytes:
        """The report page of ``rec``: its snapshot fetched from its MLflow run through the configured tracking
        URI (a local folder, an MLflow server's proxied store, an object store), rendered with the record's
        summary first (:func:`kaizen.monitor.report.render_report`). The newest few pages are kept in memory."""
        import tempfile

        from kaizen.monitor.report import render_report
        from kaizen.registry import Registry

        key = (rec.id, artifact)
        with self._pages_lock:
            if key in self._page_cache:
                return self._page_cache[key]
        if self._registry is None:
            c = self.config
            self._registry = Registry(c.tracking_uri, c.registry_uri, c.artifact_location)
        with tempfile.TemporaryDirectory(prefix="kaizen-report-") as tmp:
            local = self._registry.download_artifact(rec.mlflow_run_id, artifact, Path(tmp))
            page = render_report(local.read_text(encoding="utf-8"), rec).encode()
        with self._pages_lock:
            self._page_cache[key] = page
            while len(self._page_cache) > REPORT_PAGES_KEPT:
                self._page_cache.pop(next(iter(self._page_cache)))
        return page

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
            report_note=note, expired=bool(waiting and self._expired([row])), error=error, notice=notice,
            mlflow_url=mlflow_ui(self.config.tracking_uri), model_name=self._model_name(rec.policy)))

    def _model_name(self, policy: str) -> str:
        """The registered model ``policy`` serves (its ``model.name``; the policy's name when its file is gone)."""
        from kaizen.policy import load_policies, policy_files

        if self.config.policies_dir.is_dir():
            good, _ = load_policies(policy_files(self.config.policies_dir))
            for p in good:
                if p.name == policy:
                    return p.model.name
        return policy

    def _report(self, record_id: str, viewer: Viewer) -> Response:
        _, row, rec = self._find(record_id)
        if rec is None:
            return _html(404, self.pages.message("Not found", f"no record {record_id!r} in the promotion log", viewer))
        path, note = self._report_path(rec)
        if path is None:
            return _html(404, self.pages.message("No report", note, viewer))
        if isinstance(path, str):
            try:
                page = self._rendered(rec, path)
            except Exception as exc:  # MLflow or its store is unreachable, the run's files were deleted
                log.warning("report of %s: %s: %s", rec.id, type(exc).__name__, redact(str(exc)))
                return _html(502, self.pages.message("Report unavailable", redact(
                    f"the report of cycle {rec.id} ({path} in MLflow run {rec.mlflow_run_id}) could not be fetched "
                    f"from {self.config.tracking_uri}: {type(exc).__name__}: {exc}"[:600]), viewer))
            return Response(200, page, content_type="text/html; charset=utf-8",
                            headers=[("Content-Security-Policy", REPORT_CSP)])
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

        comment = form.get("comment", form.get("reason", ""))  # "reason": the reject form's earlier field
        try:
            if action == "approve":
                rec = review.approve(self.config, record_id, actor=actor, wait_seconds=LOCK_WAIT_SECONDS,
                                     comment=comment)
            else:
                rec = review.reject(self.config, record_id, actor=actor, comment=comment,
                                    wait_seconds=LOCK_WAIT_SECONDS)
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
