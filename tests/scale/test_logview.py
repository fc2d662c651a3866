"""``kaizen log``, ``kaizen show``, ``kaizen status`` and the review pages reading the promotion log from PostgreSQL.

The property: the same records give the same output, whichever log holds them. Two homes get the same
records — one in the JSON Lines file, one in table ``kaizen.record`` (``[ledger] url``) — and every
command and page must print exactly the same (only where the log lives may differ). Also: the view reads
only what was appended since its last read, ``kaizen log`` stays free of heavy imports, a database out of
reach is one line without its password, and the backtest keeps its own JSON Lines log whatever the live one is.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from experiments.bench_log import records as synthetic_records
from kaizen.config import load_config
from kaizen.ledger import Ledger, Record
from tests.conftest import kaizen_main, policy_toml
from tests.test_log_cli import every_kind, tricky

ROOT = Path(__file__).resolve().parents[2]


def all_records() -> list[Record]:
    return every_kind() + tricky() + [Record.from_dict(d) for d in synthetic_records(150, seed=11)]


def make(root: Path, url: str | None, recs: list[Record]) -> Path:
    """A home whose log holds ``recs``: table kaizen.record at ``url``, or the file when ``url`` is None."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.toml").write_text('[state]\ndir = "state"\n' + (f'[ledger]\nurl = "{url}"\n' if url else ""))
    (root / "policies").mkdir()
    (root / "policies" / "churn.toml").write_text(policy_toml())
    from kaizen.run.backend import ledger_for

    log = ledger_for(load_config(root / "config.toml"))
    assert isinstance(log, Ledger) == (url is None)
    for r in recs:
        log.append(r)
    return root


@pytest.fixture
def homes(tmp_path: Path, pg_url: str) -> tuple[Path, Path, str]:
    recs = all_records()
    return make(tmp_path / "file", None, recs), make(tmp_path / "pg", pg_url, recs), pg_url


def kaizen(*args: str, cwd: Path) -> Any:
    out = kaizen_main(*args, cwd=cwd, env={"COLUMNS": "200"})
    assert out.returncode == 0, out.stderr[-2000:]
    return out


def test_kaizen_log_prints_the_same_from_either_log(homes: tuple[Path, Path, str]) -> None:
    file_home, pg_home, url = homes
    for args in (["log"], ["log", "--csv"], ["log", "--last", "7"], ["log", "--policy", "churn"],
                 ["log", "--decision", "awaiting_approval", "--decision", "failed"],
                 ["log", "--since", "2026-01-01T12:00Z", "--until", "2026-01-02"]):
        want, got = kaizen(*args, cwd=file_home), kaizen(*args, cwd=pg_home)
        assert got.stdout == want.stdout, args
        assert got.stdout.strip(), args
    want, got = kaizen("log", "--json", cwd=file_home), kaizen("log", "--json", cwd=pg_home)
    assert [Record.from_dict(json.loads(x)) for x in got.stdout.splitlines()] == \
        [Record.from_dict(json.loads(x)) for x in want.stdout.splitlines()] == Ledger(
            file_home / "state" / "promotion-log.jsonl").records()
    # the members of each line in the order the log writes them
    assert [list(json.loads(x)) for x in got.stdout.splitlines()] == \
        [list(json.loads(x)) for x in want.stdout.splitlines()]
    empty = kaizen("log", "--policy", "nope", cwd=pg_home).stdout
    assert "table kaizen.record" in empty and "no record matches" in empty


def test_kaizen_show_prints_the_same_from_either_log(homes: tuple[Path, Path, str]) -> None:
    file_home, pg_home, _ = homes
    for rid in ("c-awaiting_approval", "c-failed", "k-approval", 't"2\\', "t1"):
        assert kaizen("show", rid, cwd=pg_home).stdout == kaizen("show", rid, cwd=file_home).stdout, rid
        assert json.loads(kaizen("show", rid, "--json", cwd=pg_home).stdout) == \
            json.loads(kaizen("show", rid, "--json", cwd=file_home).stdout)
    missing = kaizen_main("show", "nope", cwd=pg_home)
    assert missing.returncode == 1 and "no record 'nope'" in missing.stderr


def test_kaizen_status_reads_the_same_from_either_log(homes: tuple[Path, Path, str]) -> None:
    file_home, pg_home, _ = homes
    want = json.loads(kaizen("status", "--json", cwd=file_home).stdout)
    got = json.loads(kaizen("status", "--json", cwd=pg_home).stdout)
    assert got == want
    [churn] = [p for p in got["policies"] if p["policy"] == "churn"]
    assert churn["champion"] and churn["last_cycle_id"]
    assert kaizen("status", cwd=pg_home).stdout == kaizen("status", cwd=file_home).stdout


def _page(base: str, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(base + path, timeout=60) as r:  # noqa: S310 - our own local server
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_the_review_pages_are_the_same_from_either_log(homes: tuple[Path, Path, str]) -> None:
    from kaizen.scale.logview import PgLogView
    from kaizen.ui.server import UIServer

    file_home, pg_home, _ = homes
    servers = [UIServer(load_config(h / "config.toml"), host="127.0.0.1", port=0, token="").start()
               for h in (file_home, pg_home)]
    try:
        assert isinstance(servers[1].app.view, PgLogView)
        for path in ("/", "/decisions", "/decisions?page=2", "/decisions?policy=churn&decision=promoted",
                     "/decisions?open=1", "/decisions?since=2026-01-01&until=2026-01-02",
                     "/decisions/c-awaiting_approval", "/decisions/k-approval", "/decisions/t1", "/decisions/nope"):
            (s1, want), (s2, got) = (_page(s.url, path) for s in servers)
            assert (s2, got) == (s1, want), path
        status, page = _page(servers[1].url, "/decisions/c-awaiting_approval")
        assert status == 200 and "the awaiting_approval reason" in page
    finally:
        for s in servers:
            s.close()


def test_the_view_reads_only_what_was_appended_and_all_again_after_a_hand_edit(pg_url: str, tmp_path: Path) -> None:
    from kaizen.scale.db import connect
    from kaizen.scale.ledger import PgLedger
    from kaizen.scale.logview import PgLogView
    from kaizen.ui.logview import LogView

    log, view = PgLedger(pg_url), PgLogView(pg_url)
    for r in every_kind():
        log.append(r)
    first = view.snapshot()
    assert view.reads == 1 and view.snapshot().rows == first.rows and view.reads == 1  # nothing new: no rows read
    log.append(Record(id="new1", policy="churn", decision="rejected", kind="rejection", resolves="a-open"))
    snap = view.snapshot()
    assert view.reads == 2 and [r.id for r in snap.rows] == [r.id for r in first.rows] + ["new1"]
    assert snap.resolved["a-open"].id == "new1" and "a-open" not in {r.id for r in snap.waiting()}
    with connect(pg_url) as conn:
        conn.execute("DELETE FROM kaizen.record WHERE id = 'b1'")
    assert "b1" not in view.snapshot().by_id
    # the rows equal the file view's rows of the same records (all but where each row is)
    path = tmp_path / "same.jsonl"
    jsonl = Ledger(path)
    for r in log.records():
        jsonl.append(r)
    want = [(r.id, r.why, r.reason, r.drift_share, r.failed_gates, r.champion) for r in LogView(path).snapshot().rows]
    assert [(r.id, r.why, r.reason, r.drift_share, r.failed_gates, r.champion) for r in view.snapshot().rows] == want


def test_kaizen_log_on_a_database_out_of_reach_is_one_line_without_the_password(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text('[ledger]\nurl = "postgresql://kaizen:hunter2@127.0.0.1:1/kaizen"\n')
    for args in (("log",), ("show", "x"), ("status",)):
        out = kaizen_main(*args, cwd=tmp_path)
        assert out.returncode == 1, args
        [line] = [ln for ln in out.stderr.splitlines() if ln.strip()]
        assert "hunter2" not in out.stderr and "table kaizen.record" in line, line


def test_kaizen_log_on_postgresql_imports_no_heavy_library(pg_url: str, tmp_path: Path) -> None:
    from kaizen.scale.ledger import PgLedger

    (tmp_path / "config.toml").write_text(f'[ledger]\nurl = "{pg_url}"\n')  # no policies folder: as test_log_cli's
    for r in every_kind():
        PgLedger(pg_url).append(r)
    code = ("import sys\nfrom kaizen.cli import main\nrc = main(['log'])\n"
            "heavy = [m for m in ('mlflow', 'evidently', 'featuretools', 'optuna', 'sklearn', 'pandas', 'numpy', "
            "'procrastinate') if m in sys.modules]\nprint('HEAVY', heavy, rc)")
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                       env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})
    assert "HEAVY [] 0" in r.stdout, r.stderr[-2000:]


def test_the_backtest_keeps_its_own_jsonl_log_when_the_live_one_is_in_postgresql(pg_url: str, tmp_path: Path) -> None:
    from kaizen.backtest.replay import _isolated_config
    from kaizen.run.backend import ledger_for, lock_for, log_view_for, outbox_for
    from kaizen.run.locks import PolicyLock

    (tmp_path / "config.toml").write_text(f'[ledger]\nurl = "{pg_url}"\n[coordination]\nurl = "{pg_url}"\n'
                                          '[[notify.webhooks]]\nurl_env = "X_HOOK"\n')
    live = load_config(tmp_path / "config.toml")
    iso = _isolated_config(live, tmp_path / "bt")
    log = ledger_for(iso)
    assert isinstance(log, Ledger) and log.path == tmp_path / "bt" / "state" / "promotion-log.jsonl"
    assert log_view_for(iso).path == log.path
    assert outbox_for(iso) is None and isinstance(lock_for(iso, "churn"), PolicyLock)
    assert iso.notify.webhooks == () and iso.coordination.url is None
    assert live.ledger_url == pg_url  # the live config is only read
