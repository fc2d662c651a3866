"""Webhooks on the scale-out path: the outbox on a real PostgreSQL, real HTTP receivers on 127.0.0.1, real processes.

The receiver's URL carries a token in its path (as Slack's do): it must reach no outbox row, no log line,
no error. The properties attacked: a decision whose process is SIGKILLed before anything is delivered is
delivered by another process (killed after the record, and killed before it: recovery writes and queues it);
two senders at once never deliver one row twice; retries follow the webhook's settings and stop after
``retries``; the deciding process itself sends nothing.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from kaizen.config import load_config
from kaizen.ledger import Record

ROOT = Path(__file__).resolve().parents[2]
SECRET = "T0KEN-outbox-5ecr3t-42"
ENV = "KAIZEN_TEST_OUTBOX_URL"


class Receiver:
    """A webhook endpoint: answers the queued statuses in turn (then 200), keeps every body; with ``hold``, each
    request waits until :meth:`release` (``arrived`` counts the requests that came in meanwhile)."""

    def __init__(self, statuses: list[int] | None = None, *, hold: bool = False) -> None:
        self.statuses = list(statuses or [])
        self.bodies: list[dict[str, Any]] = []
        self.gate = threading.Event()
        if not hold:
            self.gate.set()
        self.arrived = 0
        self.cond = threading.Condition()
        me = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with me.cond:
                    me.arrived += 1
                    me.cond.notify_all()
                me.gate.wait(60)
                with me.cond:
                    me.bodies.append(body)
                    status = me.statuses.pop(0) if me.statuses else 200
                    me.cond.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *a: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/services/{SECRET}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, n: int, *, arrived: bool = False, timeout: float = 30.0) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: (self.arrived if arrived else len(self.bodies)) >= n, timeout)

    def release(self) -> None:
        self.gate.set()

    def close(self) -> None:
        self.gate.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    r = Receiver()
    monkeypatch.setenv(ENV, r.url)
    yield r
    r.close()


def home(tmp_path: Path, url: str, *, pg_log: bool = True, **hook: Any) -> Path:
    """A config on the scale-out path (``[coordination] url``), its log in the same database unless ``pg_log``."""
    lines = ['[state]', 'dir = "state"', '[coordination]', f'url = "{url}"']
    if pg_log:
        lines += ['[ledger]', f'url = "{url}"']
    lines += ['[[notify.webhooks]]', f'url_env = "{ENV}"']
    lines += [f"{k} = {json.dumps(v)}" for k, v in {"backoff_seconds": 0.05, **hook}.items()]
    (tmp_path / "config.toml").write_text("\n".join(lines) + "\n")
    return tmp_path / "config.toml"


def rows(url: str) -> list[dict[str, Any]]:
    from kaizen.scale.db import connect

    with connect(url) as conn:
        cur = conn.execute("SELECT * FROM kaizen.outbox ORDER BY id")
        names = [d.name for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def table_text(url: str) -> str:
    from kaizen.scale.db import connect

    with connect(url) as conn:
        return "\n".join(r[0] for r in conn.execute("SELECT row_to_json(o)::text FROM kaizen.outbox o"))


#: a run that decides a promotion of "churn" without MLflow (the registry is a stand-in: nothing to mirror)
DECIDE = """
import sys
from kaizen.config import load_config
from kaizen.run.runner import run

def body(ctx):
    ctx.draft.sections["champion"] = {"version": "1", "promoted": "2", "replaced": "1"}
    ctx.draft.sections["challenger"] = {"version": "2"}
    ctx.draft.reasons.append("promoted version 2 to champion (was 1)")
    return ctx.draft.finish("promoted")

rec = run(load_config(sys.argv[1]), "churn", body, registry=object())
print("RECORD", rec.id, flush=True)
"""


def decide(config: Path, *, crash_at: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("KAIZEN_TEST_CRASH_AT", None)
    if crash_at:
        env["KAIZEN_TEST_CRASH_AT"] = crash_at
    return subprocess.run([sys.executable, "-c", DECIDE, str(config)], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=120)


def sender(url: str, **kw: Any) -> Any:
    from kaizen.scale.outbox import Sender

    return Sender(url, [ENV], **kw)


# -- a process that dies before delivering ------------------------------------------------------------------------

@pytest.mark.parametrize("pg_log", [True, False], ids=["pg-log", "jsonl-log"])
def test_a_decision_whose_process_is_killed_after_recording_it_is_delivered_by_another_process(
        pg_url: str, tmp_path: Path, receiver: Receiver, pg_log: bool, caplog: pytest.LogCaptureFixture) -> None:
    config = home(tmp_path, pg_url, pg_log=pg_log)
    dead = decide(config, crash_at="recorded")
    assert dead.returncode == -signal.SIGKILL, dead.stderr[-2000:]
    from kaizen.run.backend import ledger_for

    records = ledger_for(load_config(config)).records()
    assert [r.decision for r in records] == ["promoted"]
    assert not receiver.wait_for(1, timeout=0.5)  # the deciding process sends nothing itself
    [row] = rows(pg_url)
    assert (row["record_id"], row["event"], row["webhook"], row["sent_at"]) == (records[0].id, "promoted", ENV, None)
    assert SECRET not in table_text(pg_url) and "127.0.0.1" not in table_text(pg_url)

    caplog.set_level(logging.INFO, logger="kaizen")
    assert sender(pg_url).deliver_due() == 1  # this test's process: not the one that decided
    assert [b["id"] for b in receiver.bodies] == [records[0].id]
    assert receiver.bodies[0]["event"] == "promoted" and receiver.bodies[0]["promoted_version"] == "2"
    [row] = rows(pg_url)
    assert row["sent_at"] is not None and row["attempts"] == 1 and row["sent_by"]
    assert sender(pg_url).deliver_due() == 0  # sent is sent
    assert f"webhook ${ENV}: promoted {records[0].id} of churn delivered" in caplog.text
    assert SECRET not in caplog.text


def test_a_decision_whose_process_is_killed_before_the_append_is_written_and_queued_by_recovery(
        pg_url: str, tmp_path: Path, receiver: Receiver) -> None:
    config = home(tmp_path, pg_url)
    dead = decide(config, crash_at="decided")
    assert dead.returncode == -signal.SIGKILL, dead.stderr[-2000:]
    cfg = load_config(config)
    from kaizen.run.backend import journal_for, ledger_for, lock_for
    from kaizen.run.recovery import recover

    assert ledger_for(cfg).records() == [] and rows(pg_url) == []
    with lock_for(cfg, "churn"):
        [rec] = recover(cfg, journal_for(cfg), policy="churn")
    assert rec.decision == "promoted" and ledger_for(cfg).records() == [rec]
    assert [r["record_id"] for r in rows(pg_url)] == [rec.id]
    assert sender(pg_url).deliver_due() == 1
    assert [b["id"] for b in receiver.bodies] == [rec.id]


def test_a_record_written_but_not_queued_is_queued_by_the_next_runs_recovery(
        pg_url: str, tmp_path: Path, receiver: Receiver) -> None:
    """The JSON Lines log, and the outbox refusing right after the append: the journal entry stays ``decided``."""
    from kaizen.run.backend import journal_for, ledger_for, lock_for
    from kaizen.run.recovery import recover
    from kaizen.run.runner import run
    from kaizen.scale.db import connect

    cfg = load_config(home(tmp_path, pg_url, pg_log=False))
    with connect(pg_url) as conn:
        conn.execute("ALTER TABLE kaizen.outbox RENAME TO outbox_away")

    def body(ctx: Any) -> Record:
        ctx.draft.reasons.append("nothing new")
        return ctx.draft.finish("failed", error="boom")

    rec = run(cfg, "churn", body, registry=object())
    assert [r.id for r in ledger_for(cfg).records()] == [rec.id]
    assert [e["id"] for e in journal_for(cfg).pending("churn")] == [rec.id]
    with connect(pg_url) as conn:
        conn.execute("ALTER TABLE kaizen.outbox_away RENAME TO outbox")
    with lock_for(cfg, "churn"):
        assert recover(cfg, journal_for(cfg), policy="churn") == []  # nothing to write: it is in the log
    assert journal_for(cfg).pending("churn") == []
    assert [(r["record_id"], r["event"]) for r in rows(pg_url)] == [(rec.id, "failed")]
    assert sender(pg_url).deliver_due() == 1 and receiver.bodies[0]["error"] == "boom"


# -- two senders at once --------------------------------------------------------------------------------------------

SEND = """
import sys
from kaizen.scale.outbox import Sender
print("SENT", Sender(sys.argv[1], [sys.argv[2]]).deliver_due(), flush=True)
"""


def test_two_senders_at_once_never_deliver_a_row_twice(pg_url: str, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from kaizen.scale.outbox import Outbox

    held = Receiver(hold=True)
    monkeypatch.setenv(ENV, held.url)
    try:
        cfg = load_config(home(tmp_path, pg_url))
        outbox = Outbox(pg_url, cfg)
        recs = [Record(id=f"r{i:02d}", policy="churn", decision="failed", error=f"e{i}") for i in range(24)]
        for r in recs:
            assert outbox.add(r)
        assert outbox.add(recs[0])  # queuing twice queues once
        assert len(rows(pg_url)) == 24
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        procs = [subprocess.Popen([sys.executable, "-c", SEND, pg_url, ENV], stdout=subprocess.PIPE, text=True,
                                  env=env, cwd=ROOT) for _ in range(2)]
        # both senders are in the middle of a POST at the same moment, each holding a row of its own
        assert held.wait_for(2, arrived=True, timeout=60), "the two senders never overlapped"
        held.release()
        outs = [p.communicate(timeout=120)[0] for p in procs]
        assert all(p.returncode == 0 for p in procs)
    finally:
        held.close()
    sent = [int(o.split("SENT", 1)[1]) for o in outs]
    assert sum(sent) == 24 and min(sent) >= 1, sent
    assert sorted(b["id"] for b in held.bodies) == [r.id for r in recs]  # each exactly once
    done = rows(pg_url)
    assert all(r["sent_at"] is not None and r["attempts"] == 1 for r in done)
    assert len({r["sent_by"] for r in done}) == 2


# -- retries, giving up, secrets ------------------------------------------------------------------------------------

def test_retries_wait_their_backoff_and_stop_after_retries_and_no_secret_is_kept(
        pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    from kaizen.scale.outbox import Outbox

    failing = Receiver([503, 500, 502, 500])
    monkeypatch.setenv(ENV, failing.url)
    caplog.set_level(logging.INFO, logger="kaizen")
    try:
        cfg = load_config(home(tmp_path, pg_url, retries=2, backoff_seconds=0.3))
        Outbox(pg_url, cfg).add(Record(id="r1", policy="churn", decision="rejected"))
        s = sender(pg_url)
        assert s.deliver_due() == 1
        [row] = rows(pg_url)
        assert (row["attempts"], row["last_error"], row["given_up_at"]) == (1, "HTTP 503", None)
        assert s.deliver_due() == 0  # not due yet: 0.3 s after the first attempt
        time.sleep(0.4)
        assert s.deliver_due() == 1  # the second waits 0.6 s
        assert s.deliver_due() == 0
        time.sleep(0.7)
        assert s.deliver_due() == 1
        [row] = rows(pg_url)
        assert row["attempts"] == 3 and row["given_up_at"] is not None and row["last_error"] == "HTTP 502"
        time.sleep(1.3)
        assert s.deliver_due() == 0 and len(failing.bodies) == 3  # retries = 2: three attempts, then no more
    finally:
        failing.close()
    assert f"webhook ${ENV}: rejected r1 of churn not delivered after 3 attempt(s): HTTP 502" in caplog.text
    assert SECRET not in caplog.text and SECRET not in table_text(pg_url)


def test_a_4xx_is_final_and_an_unreachable_url_is_scrubbed(pg_url: str, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from kaizen.scale.outbox import Outbox

    gone = Receiver([404])
    monkeypatch.setenv(ENV, gone.url)
    try:
        cfg = load_config(home(tmp_path, pg_url, retries=5))
        box = Outbox(pg_url, cfg)
        box.add(Record(id="r1", policy="churn", decision="rejected"))
        assert sender(pg_url).deliver_due() == 1
        [row] = rows(pg_url)
        assert row["given_up_at"] is not None and row["attempts"] == 1 and row["last_error"] == "HTTP 404"
    finally:
        gone.close()
    monkeypatch.setenv(ENV, f"http://127.0.0.1:1/services/{SECRET}/hook")  # refused
    box.add(Record(id="r2", policy="churn", decision="rejected"))
    assert sender(pg_url).deliver_due() == 1
    last = rows(pg_url)[-1]
    assert last["given_up_at"] is None and last["attempts"] == 1 and "refused" in last["last_error"].lower()
    assert SECRET not in table_text(pg_url)


def test_a_sender_without_the_variable_leaves_the_rows_to_others(pg_url: str, tmp_path: Path, receiver: Receiver,
                                                                 monkeypatch: pytest.MonkeyPatch,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    from kaizen.scale.outbox import Outbox

    Outbox(pg_url, load_config(home(tmp_path, pg_url))).add(Record(id="r1", policy="churn", decision="failed"))
    monkeypatch.delenv(ENV)
    caplog.set_level(logging.WARNING, logger="kaizen")
    s = sender(pg_url)
    assert s.deliver_due() == 0 and s.deliver_due() == 0
    assert caplog.text.count(f"webhook ${ENV}: the environment variable is not set in this process") == 1
    assert rows(pg_url)[0]["attempts"] == 0
    monkeypatch.setenv(ENV, receiver.url)
    assert sender(pg_url).deliver_due() == 1 and [b["id"] for b in receiver.bodies] == ["r1"]


# -- the runner and a running sender ------------------------------------------------------------------------------

def test_the_runner_queues_instead_of_sending_and_a_running_sender_delivers_at_once(
        pg_url: str, tmp_path: Path, receiver: Receiver) -> None:
    from kaizen.run.runner import run
    from kaizen.scale.outbox import sending

    cfg = load_config(home(tmp_path, pg_url))

    def body(ctx: Any) -> Record:
        ctx.draft.reasons.append("waiting for a person")
        ctx.draft.sections["challenger"] = {"version": "5"}
        return ctx.draft.finish("awaiting_approval")

    skipped = run(cfg, "churn", lambda ctx: ctx.draft.finish("skipped"), registry=object())
    assert rows(pg_url) == []  # skipped cycles announce nothing
    rec = run(cfg, "churn", body, registry=object())
    assert not receiver.wait_for(1, timeout=0.5) and len(rows(pg_url)) == 1
    with sending(cfg) as s:
        assert s is not None
        t0 = time.monotonic()
        assert receiver.wait_for(1, timeout=10)
        woke = time.monotonic() - t0
        second = run(cfg, "churn", body, registry=object())  # an insert wakes the waiting sender (LISTEN)
        assert receiver.wait_for(2, timeout=5)
    assert [b["id"] for b in receiver.bodies] == [rec.id, second.id] and skipped.decision == "skipped"
    assert woke < 5


def test_no_sender_without_the_scale_out_path_or_without_webhooks(tmp_path: Path, pg_url: str) -> None:
    from kaizen.run.backend import outbox_for
    from kaizen.scale.outbox import start_sender

    (tmp_path / "config.toml").write_text(f'[ledger]\nurl = "{pg_url}"\n[[notify.webhooks]]\nurl_env = "{ENV}"\n')
    embedded = load_config(tmp_path / "config.toml")
    assert start_sender(embedded) is None and outbox_for(embedded) is None
    (tmp_path / "config.toml").write_text(f'[coordination]\nurl = "{pg_url}"\n')
    assert start_sender(load_config(tmp_path / "config.toml")) is None
