"""The review server over real HTTP (no browser): refusals, CSRF, the report's folder rule, the cache, the daemon.

The browser flows are in test_browser.py; these tests need no Chromium.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from experiments.bench_log import write_log
from kaizen.config import load_config
from kaizen.errors import ConfigError
from kaizen.ledger import Ledger, Record
from kaizen.ui.server import REPORT_CSP, UIServer
from tests.ui.conftest import EVIL, EVIL_ESCAPED, EVIL_POLICY, TOKEN

ROOT = Path(__file__).resolve().parents[2]


class Client:
    """urllib with a cookie jar, no redirects followed (the tests look at them)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.jar = http.cookiejar.CookieJar()

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *a: Any, **k: Any) -> None:
                return None

        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar), NoRedirect)

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], str]:
        return self._open(urllib.request.Request(self.base + path, headers=headers or {}))

    def post(self, path: str, form: dict[str, str], headers: dict[str, str] | None = None
             ) -> tuple[int, dict[str, str], str]:
        data = urllib.parse.urlencode(form).encode()
        return self._open(urllib.request.Request(self.base + path, data=data, headers=headers or {}, method="POST"))

    def _open(self, req: urllib.request.Request) -> tuple[int, dict[str, str], str]:
        try:
            with self.opener.open(req, timeout=60) as r:
                return r.status, dict(r.headers), r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read().decode()


def csrf(page: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', page)
    assert m, "no CSRF field on the page"
    return m.group(1)


@pytest.fixture
def synthetic(tmp_path: Path) -> Iterator[tuple[Any, Path]]:
    """A home with a synthetic log: a waiting challenger, a report inside the state folder, one outside it."""
    (tmp_path / "config.toml").write_text('[state]\ndir = "state"\n')
    state = tmp_path / "state"
    inside = state / "artifacts" / "churn" / "run1" / "report.html"
    inside.parent.mkdir(parents=True)
    inside.write_text("<html><body>the evidently report</body></html>")
    outside = tmp_path / "secret.html"
    outside.write_text("<html>not yours</html>")
    (state / "artifacts" / "sneaky.html").symlink_to(outside)
    led = Ledger(state / "promotion-log.jsonl")
    for r in (Record(id="w1", policy="churn", decision="awaiting_approval", reasons=("gates passed",),
                     champion={"version": "1"}, challenger={"version": "2"}, report=str(inside)),
              Record(id="out", policy="churn", decision="skipped", report=str(outside)),
              Record(id="dots", policy="churn", decision="skipped",
                     report=str(state / "artifacts" / ".." / ".." / "secret.html")),
              Record(id="link", policy="churn", decision="skipped", report=str(state / "artifacts" / "sneaky.html")),
              Record(id="gone", policy="churn", decision="skipped", report=str(state / "reports" / "old.html"))):
        led.append(r)
    yield load_config(tmp_path / "config.toml"), state / "promotion-log.jsonl"


@pytest.fixture
def servers(synthetic: tuple[Any, Path]) -> Iterator[tuple[str, str, Path]]:
    cfg, log = synthetic
    review = UIServer(cfg, port=0, token=TOKEN).start()
    read_only = UIServer(cfg, port=0, token="").start()
    yield review.url, read_only.url, log
    review.close()
    read_only.close()


def test_read_only_pages_refuse_every_post(servers: tuple[str, str, Path]) -> None:
    _, url, log = servers
    c = Client(url)
    status, headers, page = c.get("/decisions/w1")
    assert status == 200 and 'id="read-only"' in page and 'id="approve"' not in page and 'name="csrf"' not in page
    assert "Set-Cookie" not in headers  # nothing to protect: no session
    for path in ("/decisions/w1/approve", "/decisions/w1/reject", "/login", "/logout"):
        status, _, body = c.post(path, {"by": "mallory", "token": "", "csrf": ""})
        assert status == 403 and "read-only" in body, path
    assert len(Ledger(log).records()) == 5


def test_a_post_needs_the_session_csrf_token_and_the_review_token(servers: tuple[str, str, Path]) -> None:
    url, _, log = servers
    c = Client(url)
    status, headers, page = c.get("/decisions/w1")
    assert status == 200 and 'id="approve"' in page and 'name="token"' in page
    assert re.search(r"kaizen_session=[\w-]+; Path=/; HttpOnly; SameSite=Strict", headers["Set-Cookie"])
    token = csrf(page)
    status, _, body = c.post("/decisions/w1/approve", {"by": "ana", "token": TOKEN})  # no CSRF field
    assert status == 403 and "CSRF check failed" in body
    status, _, body = c.post("/decisions/w1/approve", {"by": "ana", "token": TOKEN, "csrf": token + "x"})
    assert status == 403 and "CSRF check failed" in body
    other = Client(url)  # another browser: its own session, so this session's token is no use to it
    other.get("/")
    status, _, _ = other.post("/decisions/w1/approve", {"by": "ana", "token": TOKEN, "csrf": token})
    assert status == 403
    status, _, body = c.post("/decisions/w1/approve", {"by": "ana", "token": "guess", "csrf": token})
    assert status == 403 and "wrong or missing review token: nothing was recorded" in body
    status, _, body = c.post("/decisions/w1/approve", {"by": "ana", "token": TOKEN, "csrf": token},
                             headers={"Origin": "http://evil.example"})
    assert status == 403 and "another site" in body
    status, _, body = c.post("/decisions/w1/approve", {"by": " ", "token": TOKEN, "csrf": token})
    assert status == 400 and "type your name" in body
    assert len(Ledger(log).records()) == 5  # nothing of that was recorded


def test_login_starts_a_new_session_and_a_wrong_token_does_not(servers: tuple[str, str, Path]) -> None:
    url, _, _ = servers
    c = Client(url)
    _, _, page = c.get("/login?next=/decisions/w1")
    before = {ck.value for ck in c.jar}
    status, _, body = c.post("/login", {"token": "nope", "csrf": csrf(page), "next": "/decisions/w1"})
    assert status == 403 and "wrong token" in body
    status, headers, _ = c.post("/login", {"token": TOKEN, "csrf": csrf(page), "next": "//evil.example/x"})
    assert status == 303 and headers["Location"] == "/"  # no open redirect
    after = {ck.value for ck in c.jar}
    assert after and after.isdisjoint(before)
    _, _, page = c.get("/decisions/w1")
    assert 'id="approve"' in page and 'name="token"' not in page and "review enabled" in page
    status, headers, _ = c.post("/logout", {"csrf": csrf(page)})
    assert status == 303
    _, _, page = c.get("/decisions/w1")
    assert 'name="token"' in page


def test_a_report_is_served_only_from_inside_the_state_and_artifact_folders(servers: tuple[str, str, Path]) -> None:
    _, url, _ = servers
    c = Client(url)
    status, headers, body = c.get("/decisions/w1/report")
    assert status == 200 and body == "<html><body>the evidently report</body></html>"
    assert headers["Content-Security-Policy"] == REPORT_CSP and REPORT_CSP.startswith("sandbox")
    _, _, page = c.get("/decisions/w1")
    assert 'href="/decisions/w1/report"' in page
    for rid, why in (("out", "outside the state and artifact folders"), ("dots", "outside the state"),
                     ("link", "outside the state"), ("gone", "no longer there")):
        status, _, body = c.get(f"/decisions/{rid}/report")
        assert status == 404 and why in body and "not yours" not in body, rid
        _, _, page = c.get(f"/decisions/{rid}")
        assert f"/decisions/{rid}/report" not in page and why in page
    status, _, _ = c.get("/decisions/..%2F..%2Fsecret.html/report")
    assert status == 404


def test_other_hosts_are_refused_and_pages_allow_no_script(servers: tuple[str, str, Path]) -> None:
    url, _, _ = servers
    c = Client(url)
    status, _, _ = c.get("/", headers={"Host": "attacker.example:9467"})
    assert status == 421
    status, headers, page = c.get("/")
    assert status == 200 and "script-src" not in headers["Content-Security-Policy"]
    assert "default-src 'none'" in headers["Content-Security-Policy"] and "<script" not in page
    status, headers, css = c.get("/static/kaizen.css")
    assert status == 200 and headers["Content-Type"].startswith("text/css") and "--green" in css
    assert c.get("/static/../auth.py")[0] == 404 and c.get("/nowhere")[0] == 404


def test_every_page_prints_hostile_record_texts_as_escaped_text(hostile: Any) -> None:
    """Reasons, a policy name, versions (and what a request echoes back) holding markup and quotes come out as
    text on every page: escaped by the templates, in element text and in attribute values alike."""
    server = UIServer(hostile, port=0, token=TOKEN).start()
    q = urllib.parse.quote
    try:
        c = Client(server.url)
        pages = {"/": 200, "/decisions": 200, f"/decisions?policy={q(EVIL_POLICY)}": 200, "/decisions/w1": 200,
                 "/decisions/c1": 200, "/decisions/b1": 200, f"/login?next=/{q(EVIL)}": 200,
                 # the messages quote what was asked for with repr(): \' there
                 f"/decisions/{q(EVIL, safe='')}": 404, f"/decisions?since={q(EVIL)}": 400}
        for path, expected in pages.items():
            status, _, page = c.get(path)
            assert status == expected, path
            assert (EVIL_ESCAPED if expected == 200 else "&lt;script&gt;alert(1)&lt;/script&gt;&#34;") in page, path
            assert "<script" not in page and "alert(1)</" not in page and '"\'' not in page, path
        _, _, page = c.get("/")
        assert f'id="policy-churn{EVIL_ESCAPED}"' in page  # an attribute value: the quotes cannot close it
        # the chart's texts too: a marker's tooltip, the metric's axis
        assert f"awaiting_approval v2{EVIL_ESCAPED} (w1)</title>" in page and f"auc{EVIL_ESCAPED}</text>" in page
        _, _, page = c.get(f"/decisions?policy={q(EVIL_POLICY)}")
        assert f'<option value="churn{EVIL_ESCAPED}" selected>' in page
        _, _, page = c.get("/decisions/w1")
        assert f"Approve: promote v2{EVIL_ESCAPED}</button>" in page
        assert f'value="/{EVIL_ESCAPED}"' in c.get(f"/login?next=/{q(EVIL)}")[2]
    finally:
        server.close()


def test_the_list_of_10000_records_reads_the_log_once_per_change(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text('[state]\ndir = "state"\n[ui]\npage_size = 50\n')
    log = write_log(tmp_path / "state" / "promotion-log.jsonl", 10_000, seed=3, state_dir=tmp_path / "state")
    server = UIServer(load_config(tmp_path / "config.toml"), port=0, token="").start()
    try:
        c = Client(server.url)
        status, _, page = c.get("/decisions")
        assert status == 200 and "page 1 of 200 · 10000 record(s)" in page
        ids = re.findall(r'<tr class="row[^"]*"><td class="nowrap">([^<]+)</td>', page)
        assert len(ids) == 50 and ids == sorted(ids, reverse=True)  # newest first
        _, _, page = c.get("/decisions?policy=fraud&decision=awaiting_approval&decision=promoted&page=2")
        rows = re.findall(r'<tr class="row d-row-(\w+)">.*?</td><td>(\w+)</td>', page)
        assert rows and all(p == "fraud" and d in ("awaiting_approval", "promoted") for d, p in rows)
        status, _, page = c.get("/decisions?since=2026-02-01&until=2026-02-01")
        times = re.findall(r'<td class="nowrap">(2026-[^<]+)</td>', page)
        assert times and all(t.startswith("2026-02-01") for t in times) and "· 72 record(s)" in page
        status, _, page = c.get("/decisions?since=yesterday")
        assert status == 400 and "since must be an ISO date or time" in page
        assert server.app.view.reads == 1
        Ledger(log).append(Record(id="fresh", policy="churn", decision="failed", error="x"))
        _, _, page = c.get("/decisions?decision=failed")
        assert "fresh" in page and server.app.view.reads == 2
        assert c.get("/")[0] == 200 and server.app.view.reads == 2
    finally:
        server.close()


def test_ui_settings_are_checked_and_a_token_is_never_repeated(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text('[ui]\ntoken_env = "s3cr3t-token-value!"\npublic_url = "kaizen.local"\n'
                                          'page_size = 5000\nport = 70000\nenable = true\n')
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "config.toml")
    msg = str(err.value)
    assert "s3cr3t" not in msg
    assert "ui.token_env must be the name of an environment variable that holds the secret, such as " \
           "'KAIZEN_UI_TOKEN', never the secret itself" in msg
    assert "ui.public_url must be an http:// or https:// URL; got 'kaizen.local'" in msg
    assert "ui.page_size must be an integer in [10, 500]; got 5000" in msg
    assert "ui.port must be an integer in [0, 65535]; got 70000" in msg
    assert "ui.enable is not a known setting" in msg


def test_the_daemon_serves_the_pages_when_enabled_and_health_still_works(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text('[state]\ndir = "state"\n[policies]\ndir = "policies"\n[service]\n'
                                          'port = 0\nrescan_seconds = 3600\n[ui]\nenabled = true\nport = 0\n')
    (tmp_path / "policies").mkdir()
    Ledger(tmp_path / "state" / "promotion-log.jsonl").append(Record(id="r1", policy="churn", decision="skipped"))
    err = open(tmp_path / "daemon.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([sys.executable, "-m", "kaizen", "run"], cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=err, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        deadline = time.monotonic() + 120
        ui = health = None
        while time.monotonic() < deadline and not (ui and health):
            text = (tmp_path / "daemon.log").read_text(errors="replace")
            m = re.search(r"review pages at (http://127\.0\.0\.1:\d+)/ \(read-only", text)
            ui = m.group(1) if m else None
            try:
                http = json.loads((tmp_path / "state" / "service.json").read_text())["http"]
                health = f"http://{http['host']}:{http['port']}"
            except (OSError, ValueError, KeyError, TypeError):
                health = None
            assert proc.poll() is None, text[-3000:]
            time.sleep(0.2)
        assert ui and health, (tmp_path / "daemon.log").read_text()[-3000:]
        assert ui != health
        status, _, page = Client(ui).get("/decisions")
        assert status == 200 and "r1" in page
        status, _, body = Client(health).get("/healthz")
        assert status == 200 and json.loads(body) == {"status": "ok"}
        assert Client(health).get("/decisions")[0] == 404  # the pages are not on the health port
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        finally:
            if proc.poll() is None:
                proc.kill()
            err.close()
    assert proc.returncode == 0


def test_kaizen_ui_says_where_and_whether_review_is_on_and_never_shows_the_token(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text('[state]\ndir = "state"\n[ui]\ntoken_env = "KAIZEN_TEST_UI_TOKEN"\n')
    Ledger(tmp_path / "state" / "promotion-log.jsonl").append(Record(id="r1", policy="churn", decision="skipped"))
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "KAIZEN_TEST_UI_TOKEN": TOKEN}
    proc = subprocess.Popen([sys.executable, "-m", "kaizen", "ui", "--port", "0"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        m = re.match(r"kaizen ui: (http://127\.0\.0\.1:\d+)/ \(review enabled: the token is read from "
                     r"\$KAIZEN_TEST_UI_TOKEN; Ctrl-C stops\)$", first.strip())
        assert m, first
        status, _, page = Client(m.group(1)).get("/decisions/r1")
        assert status == 200 and "r1" in page and TOKEN not in page
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert TOKEN not in first + out + err
