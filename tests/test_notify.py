"""Webhook notifications against a real HTTP server on 127.0.0.1: payloads, retries, secrets, never blocking.

The webhook URL carries a token in its path (as Slack's do); it must reach no log line.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from kaizen.config import NOTIFY_EVENTS, load_config
from kaizen.errors import ConfigError
from kaizen.ledger import Ledger, Record
from kaizen.notify import dispatch, event_of, send
from kaizen.run.runner import run

SECRET = "T0KEN-s3cr3t-9f8e7d"
ENV = "KAIZEN_TEST_WEBHOOK_URL"


class Hook:
    """A webhook receiver: answers the queued statuses in turn (then 200) and keeps every body."""

    def __init__(self, statuses: list[int] | None = None, gate: threading.Event | None = None) -> None:
        self.statuses = list(statuses or [])
        self.bodies: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.gate = gate
        self.gate_timed_out = False
        self.received = threading.Event()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if hook.gate is not None and not hook.gate.wait(30):
                    hook.gate_timed_out = True
                hook.bodies.append(json.loads(body))
                hook.paths.append(self.path)
                status = hook.statuses.pop(0) if hook.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
                hook.received.set()

            def log_message(self, *a: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/services/{SECRET}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook(monkeypatch: pytest.MonkeyPatch) -> Iterator[Hook]:
    h = Hook([500])
    monkeypatch.setenv(ENV, h.url)
    yield h
    h.close()


def config(tmp_path: Path, **hook: Any) -> Any:
    lines = ['[state]', 'dir = "state"', '[ui]', 'public_url = "https://kaizen.example.org/"', '[[notify.webhooks]]',
             f'url_env = "{ENV}"']
    lines += [f"{k} = {json.dumps(v)}" for k, v in {"backoff_seconds": 0.01, **hook}.items()]
    (tmp_path / "config.toml").write_text("\n".join(lines) + "\n")
    return load_config(tmp_path / "config.toml")


PROMOTED = Record(id="20261126T140312Z-churn-1f3a", policy="churn", decision="promoted",
                  reasons=("promoted version 3 to champion (was 1)", "triggered (drift_share)"),
                  champion={"version": "1", "promoted": "3", "replaced": "1"}, challenger={"version": "3"},
                  time="2026-11-26T14:03:12Z")


def test_payload_fields_and_a_retry_after_a_500(tmp_path: Path, hook: Hook, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="kaizen")
    cfg = config(tmp_path, retries=3)
    threads = dispatch(cfg, PROMOTED)
    for t in threads:
        t.join(30)
    assert len(threads) == 1 and len(hook.bodies) == 2  # 500, then 200
    assert hook.bodies[0] == hook.bodies[1] == {
        "event": "promoted", "policy": "churn", "decision": "promoted", "kind": "cycle",
        "id": "20261126T140312Z-churn-1f3a", "time": "2026-11-26T14:03:12Z", "champion_version": "1",
        "challenger_version": "3", "promoted_version": "3", "reason": "promoted version 3 to champion (was 1)",
        "error": None, "resolves": None, "actor": None,
        "link": "https://kaizen.example.org/decisions/20261126T140312Z-churn-1f3a"}
    assert hook.paths == [f"/services/{SECRET}/hook"] * 2
    text = caplog.text
    assert f"webhook ${ENV}: attempt 1 of 4 for promoted 20261126T140312Z-churn-1f3a of churn failed (HTTP 500)" in text
    assert f"webhook ${ENV}: promoted 20261126T140312Z-churn-1f3a of churn delivered (HTTP 200, attempt 2 of 4)" in text
    assert SECRET not in text and "/services/" not in text and hook.url not in text


def test_slack_format_and_event_filters(tmp_path: Path, hook: Hook) -> None:
    hook.statuses.clear()
    cfg = config(tmp_path, format="slack", events=["awaiting_approval", "failed"])
    assert dispatch(cfg, PROMOTED) == []  # not subscribed
    assert dispatch(cfg, Record(id="s", policy="churn", decision="skipped")) == []  # skipped: never announced
    waiting = Record(id="w1", policy="churn", decision="awaiting_approval", reasons=("gates passed <all>",),
                     champion={"version": "1"}, challenger={"version": "2"})
    for t in dispatch(cfg, waiting):
        t.join(30)
    [body] = hook.bodies
    assert body["text"] == "Kaizen · churn: awaits approval (champion v1 vs challenger v2): gates passed <all>"
    block = body["blocks"][0]["text"]["text"]
    assert "gates passed &lt;all&gt;" in block and "<https://kaizen.example.org/decisions/w1|details>" in block


def test_a_4xx_is_not_retried_and_an_unset_variable_sends_nothing(tmp_path: Path, hook: Hook,
                                                                   monkeypatch: pytest.MonkeyPatch,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="kaizen")
    hook.statuses[:] = [404]
    cfg = config(tmp_path, retries=5)
    assert send(cfg.notify.webhooks[0], {"x": 1}, what="test 1") is False
    assert len(hook.bodies) == 1
    assert f"webhook ${ENV}: test 1 not delivered after 1 attempt(s): HTTP 404" in caplog.text
    monkeypatch.delenv(ENV)
    assert send(cfg.notify.webhooks[0], {"x": 1}, what="test 2") is False
    assert f"webhook ${ENV}: the environment variable is not set; test 2 not sent" in caplog.text
    assert len(hook.bodies) == 1


def test_a_dead_endpoint_is_retried_with_backoff_then_given_up(tmp_path: Path, hook: Hook,
                                                                monkeypatch: pytest.MonkeyPatch,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="kaizen")
    dead = hook.url.replace(str(hook.server.server_address[1]), "9")  # the discard port: nothing listens
    hook.close()
    cfg = config(tmp_path, retries=2, backoff_seconds=0.5)
    slept: list[float] = []
    assert send(cfg.notify.webhooks[0], {"x": 1}, what="test", url=dead, sleep=slept.append) is False
    assert slept == [0.5, 1.0]  # backoff_seconds × 2^attempt
    assert "not delivered after 3 attempt(s): URLError" in caplog.text
    assert SECRET not in caplog.text


def test_the_runner_notifies_after_appending_and_never_waits_for_the_webhook(tmp_path: Path,
                                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    gate = threading.Event()
    slow = Hook(gate=gate)  # answers only once the test says so
    monkeypatch.setenv(ENV, slow.url)
    try:
        cfg = config(tmp_path, events=["failed"])
        rec = run(cfg, "churn", lambda ctx: ctx.draft.finish("failed", error="the body failed on purpose"),
                  registry=object())
        # run() returned while the webhook still holds the request: dispatching did not wait for it
        assert [r.id for r in Ledger(cfg.ledger_path).records()] == [rec.id]
        gate.set()
        assert slow.received.wait(30) and not slow.gate_timed_out
        assert slow.bodies[0]["event"] == "failed" and slow.bodies[0]["id"] == rec.id
        assert slow.bodies[0]["error"] == "the body failed on purpose"
    finally:
        gate.set()
        slow.close()


def test_events_of_records() -> None:
    assert event_of(Record(id="a", policy="p", decision="promoted", kind="rollback")) == "rolled_back"
    assert event_of(Record(id="a", policy="p", decision="failed", kind="rollback")) == "failed"
    assert event_of(Record(id="a", policy="p", decision="promoted", kind="approval")) == "promoted"
    assert event_of(Record(id="a", policy="p", decision="skipped")) is None
    assert event_of(Record(id="a", policy="p", decision="held")) == "held"
    assert event_of(Record(id="a", policy="p", decision="rebaselined")) == "rebaselined"
    assert set(NOTIFY_EVENTS) == {"promoted", "rejected", "awaiting_approval", "held", "rebaselined", "rolled_back",
                                  "failed", "health"}  # health: kaizen.notify.notify_health (tests/test_health.py)


def test_webhook_settings_are_checked_and_a_secret_is_never_repeated(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(
        '[[notify.webhooks]]\nurl_env = "https://hooks.example.org/services/T0KEN"\nformat = "xml"\n'
        'events = ["promoted", "sometimes"]\nretries = -1\ncolour = "red"\n[[notify.webhooks]]\nformat = "json"\n')
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "config.toml")
    msg = str(err.value)
    assert "T0KEN" not in msg and "hooks.example.org" not in msg
    assert "notify.webhooks[0].url_env must be the name of an environment variable that holds the secret, such " \
           "as 'KAIZEN_WEBHOOK_URL', never the secret itself" in msg
    assert "notify.webhooks[0].format must be one of 'json', 'slack'; got 'xml'" in msg
    assert "notify.webhooks[0].events must be a non-empty list of strings from 'promoted'" in msg
    assert "notify.webhooks[0].retries must be an integer in [0, 20]; got -1" in msg
    assert "notify.webhooks[0].colour is not a known setting" in msg
    assert "notify.webhooks[1].url_env is required" in msg
