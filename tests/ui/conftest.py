"""The review pages' fixtures: Debian's Chromium (installed here when missing), a state made by real cycles,
servers with and without a review token, and the folder the screenshots go to.

Chromium comes from Debian (``apt-get install -y chromium``), never from ``playwright install``; the
browser tests are skipped, with the reason, only where it cannot be installed (not root, no apt-get, no
network to the package registry) or playwright is missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Home, make_home

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "ui"
TOKEN = "review-token-for-tests-7c1e"
TOKEN_ENV = "KAIZEN_TEST_UI_TOKEN"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run"]
#: a promoting cycle on batch 3 (concept drift), as in tests/test_guarantees.py
PROMOTE = {"trigger": {"drift_share": 0.05}, "gates": {"min_improvement": 0.0, "golden_tolerance": 1.0,
                                                       "refit_on_holdout": False},
           "build": {"window_fractions": [1.0]}, "promotion": {"mode": "manual"},
           "monitor": {"report": "on_trigger"}}  # the product's default (tests/conftest.py turns reports off)


def _install_chromium() -> str | None:
    """Install Debian's chromium; None when done, else why it could not be."""
    if shutil.which("apt-get") is None:
        return "apt-get is not available on this machine"
    if os.geteuid() != 0:
        return "installing chromium with apt-get needs root"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", "chromium"]):
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1200)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"`{' '.join(cmd)}` failed: {exc}"
        if r.returncode != 0:
            return f"`{' '.join(cmd)}` exited {r.returncode}: {(r.stderr or r.stdout).strip()[-300:]}"
    return None if CHROMIUM.exists() else f"apt-get installed chromium but {CHROMIUM} is missing"


@pytest.fixture(scope="session")
def chromium() -> str:
    if not CHROMIUM.exists():
        why = _install_chromium()
        if why:
            pytest.skip(f"Debian's Chromium cannot be installed here: {why}")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("playwright is not installed: pip install -e '.[dev]'")
    return str(CHROMIUM)


@pytest.fixture(scope="session")
def browser(chromium: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="session")
def shots() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@dataclass
class Served:
    home: Home
    config: Any
    url: str
    server: Any

    def close(self) -> None:
        self.server.close()


def serve(config: Any, token: str | None) -> Served:
    from kaizen.ui.server import UIServer

    server = UIServer(config, host="127.0.0.1", port=0, token=token or "").start()
    return Served(home=None, config=config, url=server.url, server=server)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def reviewed(tmp_path_factory: pytest.TempPathFactory, churn_data: Path) -> Home:
    """A home whose log was written by real runs: a bootstrap, two quiet cycles, one challenger awaiting approval."""
    from kaizen.commands.bootstrap import bootstrap
    from kaizen.cycle import run_cycle

    home = make_home(tmp_path_factory.mktemp("ui") / "home", churn_data)
    (home.root / "config.toml").write_text(f'[state]\ndir = "state"\n[ui]\ntoken_env = "{TOKEN_ENV}"\n'
                                           'public_url = "http://127.0.0.1"\n')
    home.write_policy({"promotion": {"mode": "manual"},  # quiet at first: nothing fires
                       "trigger": {"prediction_drift": False, "drift_share": 0.9, "performance_drop": 0.5}})
    assert bootstrap(home.config(), home.policy()).decision == "promoted"
    for batch in (0, 1):
        home.arrive(batch)
        rec = run_cycle(home.config(), home.policy())
        assert rec.decision == "skipped", rec.reasons
    home.write_policy(PROMOTE)
    home.arrive(3)
    rec = run_cycle(home.config(), home.policy())
    assert rec.decision == "awaiting_approval" and rec.report, rec.reasons
    return home


#: what a hostile (or careless) writer of the promotion log could put in a reason, a policy name or a version
EVIL = "<script>alert(1)</script>\"'"
#: how it must appear in the HTML: as text, escaped (Jinja2/markupsafe: " is &#34;, ' is &#39;)
EVIL_ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;&#34;&#39;"
EVIL_POLICY = f"churn{EVIL}"


@pytest.fixture
def hostile(tmp_path: Path) -> Any:
    """A home whose log has ``EVIL`` in the reasons, the policy name, the versions and the metric name: a
    bootstrap, two monitored cycles (the chart), and a challenger awaiting approval (id ``w1``)."""
    from datetime import UTC, datetime, timedelta

    from kaizen.config import load_config
    from kaizen.ledger import Ledger, Record

    def ago(hours: float) -> str:  # recent: the waiting challenger must not have expired
        return (datetime.now(UTC) - timedelta(hours=hours)).isoformat(timespec="seconds").replace("+00:00", "Z")

    (tmp_path / "config.toml").write_text('[state]\ndir = "state"\n')
    led = Ledger(tmp_path / "state" / "promotion-log.jsonl")
    champion = {"version": f"1{EVIL}", "metric": f"auc{EVIL}"}
    monitor = {"drift_share": 0.2, "columns": [{"column": EVIL, "method": "psi", "score": 0.3, "threshold": 0.1,
                                                "drifted": True}]}
    for r in (Record(id="b1", policy=EVIL_POLICY, decision="promoted", kind="bootstrap", reasons=(EVIL,),
                     champion=champion, time=ago(72)),
              Record(id="c1", policy=EVIL_POLICY, decision="skipped", reasons=(EVIL,), time=ago(48),
                     champion={**champion, "window_metric": 0.81}, trigger={"monitor": monitor}),
              Record(id="c2", policy=EVIL_POLICY, decision="skipped", reasons=(EVIL,), time=ago(24),
                     champion={**champion, "window_metric": 0.79}, trigger={"monitor": monitor}),
              Record(id="w1", policy=EVIL_POLICY, decision="awaiting_approval", reasons=(EVIL, f"why {EVIL}"),
                     time=ago(1), champion={**champion, "window_metric": 0.7},
                     challenger={"version": f"2{EVIL}", "holdout_metric": 0.9},
                     gates=({"name": f"improvement{EVIL}", "passed": True, "message": EVIL,
                             "numbers": {"note": EVIL}},),
                     trigger={"monitor": monitor, "signals": [{"rule": EVIL, "fired": True, "value": 0.3,
                                                               "threshold": 0.1, "message": EVIL}]})):
        led.append(r)
    return load_config(tmp_path / "config.toml")
