"""Kaizen homes on the scale-out path, and the processes that run in them (``kaizen run``, ``kaizen worker``).

One home (data, policies, a shared promotion log) holds one ``config-<role>.toml`` per process: each
``kaizen run`` replica and each worker has a state folder of its own, as on separate hosts; they share
the coordination database, the MLflow server and the promotion log (``[ledger] path``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kaizen.ledger import Ledger, Record
from tests.conftest import Home, make_home

LEDGER = "shared/promotion-log.jsonl"


def scale_config(home: Home, role: str, *, url: str, server: Any, model: str, **coordination: object) -> Path:
    """Write ``config-<role>.toml``: state folder ``state-<role>``, the MLflow server, the coordination database."""
    coord = "".join(f"{k} = {json.dumps(v)}\n" for k, v in coordination.items())
    path = home.root / f"config-{role}.toml"
    path.write_text(f'[state]\ndir = "state-{role}"\n\n'
                    f'[mlflow]\ntracking_uri = "{server.url}"\n'
                    f'artifact_location = "{server.artifact_location(model)}"\n\n'
                    f'[ledger]\npath = "{LEDGER}"\n\n'
                    '[service]\nhost = "127.0.0.1"\nport = 0\nrescan_seconds = 5\nlog_format = "text"\n'
                    'shutdown_grace_seconds = 10\n\n'
                    f'[coordination]\nurl = "{url}"\n{coord}')
    return path


def scale_home(root: Path, data: Path, policy: dict[str, dict[str, Any]]) -> Home:
    """A home on ``data`` with ``policy`` (the base policy + these sections) and no local MLflow database."""
    home = make_home(root, data, policy, registry=False)
    (root / "shared").mkdir()
    return home


def records(home: Home, policy: str | None = None) -> list[Record]:
    path = home.root / LEDGER
    recs = Ledger(path).records() if path.exists() else []
    return [r for r in recs if policy is None or r.policy == policy]


@dataclass
class Proc:
    """A ``kaizen`` process of the test, its output in a file (read it with :meth:`output`)."""

    role: str
    config: Path
    popen: subprocess.Popen
    log: Path
    state: Path = field(init=False)

    def __post_init__(self) -> None:
        self.state = self.config.parent / f"state-{self.role}"

    @property
    def pid(self) -> int:
        return self.popen.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def port(self) -> int | None:
        """The HTTP port ``kaizen run`` wrote to its status file (it binds port 0)."""
        try:
            doc = json.loads((self.state / "service.json").read_text())
        except (OSError, ValueError):
            return None
        return (doc.get("http") or {}).get("port")

    def ready(self) -> tuple[int, dict[str, Any]] | None:
        """``GET /readyz``: (status code, body), or None when it does not answer (not up yet, stopped, killed)."""
        port = self.port()
        if port is None:
            return None
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=3) as resp:  # noqa: S310
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")
        except (OSError, ValueError):
            return None

    def stop(self) -> None:
        """End this process (SIGCONT first, in case a test stopped it), and wait for it."""
        if self.popen.poll() is None:
            try:
                os.kill(self.pid, signal.SIGCONT)  # a stopped process would never handle SIGTERM
            except ProcessLookupError:
                pass
            self.popen.terminate()
            try:
                self.popen.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=30)


def start(config: Path, role: str, *args: str, env: dict[str, str] | None = None) -> Proc:
    """``kaizen --config CONFIG ARGS`` in the home's folder, its output to ``<role>.log``."""
    log = config.parent / f"{role}.log"
    with log.open("ab") as out:
        popen = subprocess.Popen([sys.executable, "-m", "kaizen", "--config", str(config), *args], cwd=config.parent,
                                 stdout=out, stderr=subprocess.STDOUT,
                                 env={**os.environ, "PYTHONPATH": os.getcwd(), "OMP_NUM_THREADS": "1",
                                      **(env or {})})
    return Proc(role, config, popen, log)


def wait_for(what: str, check: Callable[[], Any], *, timeout: float, procs: tuple[Proc, ...] = (),
             every: float = 0.2) -> Any:
    """Poll ``check`` until it returns something true; fail after ``timeout`` seconds, showing the processes' logs."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {p.role} (exit {p.popen.poll()}) ---\n{p.output()[-3000:]}" for p in procs)
            raise AssertionError(f"timed out after {timeout:g} s waiting until {what}\n{logs}")
        time.sleep(every)
