"""Disk space and the service: ``[service] min_free_bytes``, ``/readyz``, ``kaizen_state_free_bytes``, and a
real daemon whose state folder (a small tmpfs) fills up and empties again while its cycles run.

The homes have no champion, so every cycle fails at once ("no champion"): a decision per second to write,
without building models.
"""

from __future__ import annotations

import json
import re
import signal
from collections import Counter

import pytest
from prometheus_client.parser import text_string_to_metric_families

from kaizen.config import load_config
from kaizen.errors import ConfigError
from kaizen.service.http import DiskSpace
from tests.service.conftest import http_get, records, running, wait_for, write_config
from tests.test_full_disk import fill, free_space, tmpfs  # noqa: F401 - tmpfs is a fixture

HUGE = 1 << 60


def gauge(home, name: str) -> float | None:
    for fam in text_string_to_metric_families(http_get(home, "/metrics")[1]):
        for s in fam.samples:
            if s.name == name:
                return s.value
    return None


def readyz(home) -> tuple[int, dict]:
    code, body = http_get(home, "/readyz")
    return code, json.loads(body)


def test_min_free_bytes_default_and_errors(tmp_path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[state]\ndir = "st"\n')
    assert load_config(path).service.min_free_bytes == 500 * 1024 * 1024
    path.write_text('[service]\nmin_free_bytes = 0\n')
    assert load_config(path).service.min_free_bytes == 0
    for bad, shown in (("-1", "-1"), ('"1G"', "'1G'"), ("1.5e9", "1500000000.0")):
        path.write_text(f"[service]\nmin_free_bytes = {bad}\n")
        with pytest.raises(ConfigError, match=re.escape(f"{path}: service.min_free_bytes must be an integer >= 0; "
                                                        f"got {shown}")):
            load_config(path)


def test_the_free_space_reading_is_cached_and_says_how_low(tmp_path, tmpfs) -> None:  # noqa: F811
    fs = tmpfs(tmp_path / "fs", "8m")
    cached, live = DiskSpace(fs, 4 << 20, ttl=3600), DiskSpace(fs, 4 << 20, ttl=0)
    first = cached.free()
    assert cached() == (True, f"ok: {first} bytes free under {fs}")
    fill(fs, leave=1 << 20)
    assert cached.free() == first  # not read again within its ttl
    ok, detail = live()
    free = live.free()
    assert not ok and free < 4 << 20
    assert re.fullmatch(rf"low: \d+ bytes free under {re.escape(str(fs))} \(min_free_bytes {4 << 20}\)", detail)
    assert DiskSpace(fs, 0, ttl=0)()[0]  # 0: never low


def test_readyz_is_503_and_the_gauge_shows_the_free_bytes_when_below_min_free_bytes(home, daemons) -> None:
    write_config(home, min_free_bytes=HUGE)
    d = daemons(home)
    wait_for(lambda: running(home, d.pid), 60, "the daemon to run", d)
    code, body = readyz(home)
    state = home.root / "state"
    assert code == 503 and body["status"] == "not ready" and body["scheduler"] == "running", body
    m = re.fullmatch(rf"low: (\d+) bytes free under {re.escape(str(state))} \(min_free_bytes {HUGE}\)", body["disk"])
    assert m, body
    free = gauge(home, "kaizen_state_free_bytes")
    assert free is not None and free > 0
    assert gauge(home, "kaizen_unwritten_decisions") == 0
    assert re.search(rf"disk space low: \d+ bytes free under {re.escape(str(state))} \(min_free_bytes {HUGE}\)",
                     d.log())  # the daemon's WARNING, logged once when it ran low
    d.signal(signal.SIGTERM)
    assert d.wait(60) == 0


def test_a_daemon_whose_disk_fills_up_keeps_its_decisions_and_writes_each_once_when_space_returns(
        home, daemons, tmpfs) -> None:  # noqa: F811
    state = tmpfs(home.root / "state", "16m")
    write_config(home, min_free_bytes=4 << 20, backoff_seconds=1, backoff_max_seconds=1)
    # the job store elsewhere: APScheduler's own thread ends when it cannot update a job on a full disk (next test)
    with (home.root / "config.toml").open("a") as fh:
        fh.write(f'[scheduler]\njobstore_url = "sqlite:///{home.root / "jobs.db"}"\n')
    home.write_policy({"schedule": {"every": "1s"}})
    d = daemons(home)
    wait_for(lambda: running(home, d.pid) and records(home), 60, "a first failed cycle", d)
    assert readyz(home)[0] == 200

    fill(state)
    kept_line = re.compile(r"cycle (\S+) \(failed\) of churn: the decision could not be written")
    wait_for(lambda: len(set(kept_line.findall(d.log()))) >= 2, 120, "two decisions kept in memory", d)
    assert d.proc.poll() is None  # a full disk never stops the daemon
    code, body = readyz(home)
    assert code == 503 and body["disk"].startswith("low: ") and body["disk"].endswith(f"(min_free_bytes {4 << 20})")
    assert gauge(home, "kaizen_unwritten_decisions") >= 1
    assert "disk space low: " in d.log()

    free_space(state)
    wait_for(lambda: gauge(home, "kaizen_unwritten_decisions") == 0 and readyz(home)[0] == 200, 120,
             "the kept decisions to be written and /readyz back to 200", d)
    kept = set(kept_line.findall(d.log()))
    counts = Counter(r.id for r in records(home))
    assert all(counts[i] == 1 for i in kept), {i: counts[i] for i in kept}
    assert max(counts.values()) == 1
    assert "appended to the promotion log after the disk had been full" in d.log()
    d.signal(signal.SIGTERM)
    assert d.wait(60) == 0


def test_readyz_says_so_when_a_full_disk_ended_the_schedulers_thread(home, daemons, tmpfs) -> None:  # noqa: F811
    """APScheduler 3 updates each job's next run time in its job store; on a full disk that raises in its
    own thread, which ends: no more cycles. /readyz must not keep saying "running"."""
    state = tmpfs(home.root / "state", "16m")
    write_config(home, min_free_bytes=0)
    home.write_policy({"schedule": {"every": "1s"}})
    d = daemons(home)
    wait_for(lambda: running(home, d.pid) and records(home), 60, "a first failed cycle", d)
    fill(state)
    wait_for(lambda: readyz(home)[0] == 503, 60, "/readyz to answer 503", d)
    code, body = readyz(home)
    assert body["scheduler"] == "stopped (its thread ended; see the log)" and body["disk"].startswith("ok: "), body
    assert gauge(home, "kaizen_scheduler_running") == 0
    free_space(state)
    d.signal(signal.SIGTERM)
    assert d.wait(60) == 0
