"""Helpers for the service tests: real ``kaizen run`` processes on a temp home."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kaizen.ledger import Ledger, Record
from tests.conftest import Home, to_toml

ROOT = Path(__file__).resolve().parents[2]


def write_config(home: Home, **service: Any) -> None:
    doc = {"state": {"dir": "state"},
           "service": {"port": 0, "rescan_seconds": 3600, "shutdown_grace_seconds": 60, **service}}
    (home.root / "config.toml").write_text(to_toml(doc))


class Daemon:
    """A ``kaizen run`` child process; its stderr goes to a file (JSON log lines)."""

    def __init__(self, home: Home, env: dict[str, str] | None = None, tag: str = "d") -> None:
        self.home = home
        self.log_path = home.root / f"{tag}-{time.monotonic_ns()}.log"
        full = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in wait()
        self.proc = subprocess.Popen([sys.executable, "-m", "kaizen", "run"], cwd=home.root, env=full,
                                     stdout=subprocess.DEVNULL, stderr=self._log)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def events(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
        return out

    def signal(self, sig: int = signal.SIGTERM) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 120) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self._log.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.wait()


def wait_for(pred: Callable[[], Any], timeout: float = 120, what: str = "", proc: Daemon | None = None) -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = pred()
        if value:
            return value
        if proc is not None and proc.proc.poll() is not None:
            raise AssertionError(f"daemon exited ({proc.proc.returncode}) while waiting for {what}:\n"
                                 f"{proc.log()[-4000:]}")
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}" + (f":\n{proc.log()[-4000:]}" if proc else ""))


def records(home: Home) -> list[Record]:
    return Ledger(home.root / "state" / "promotion-log.jsonl").records()


def service_status(home: Home) -> dict[str, Any]:
    try:
        return json.loads((home.root / "state" / "service.json").read_text())
    except (OSError, ValueError):
        return {}


def running(home: Home, pid: int) -> bool:
    st = service_status(home)
    return st.get("pid") == pid and st.get("state") == "running"


def http_get(home: Home, path: str) -> tuple[int, str]:
    http = service_status(home)["http"]
    try:
        with urllib.request.urlopen(f"http://{http['host']}:{http['port']}{path}", timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def journals(home: Home) -> list[dict[str, Any]]:
    d = home.root / "state" / "journal"
    return [json.loads(p.read_text()) for p in sorted(d.glob("*.json"))] if d.exists() else []


@pytest.fixture
def daemons():
    """Started daemons; any still alive at the end of a test is killed."""
    started: list[Daemon] = []

    def start(home: Home, env: dict[str, str] | None = None, tag: str = "d") -> Daemon:
        d = Daemon(home, env, tag)
        started.append(d)
        return d

    yield start
    for d in started:
        d.kill()
