"""Distinct exit codes, so systemd restarts a crash but not a bad configuration (deploy/kaizen.service).

78 bad config or policy file, 75 lock held by another daemon, 2 bad usage, 1 crash or failed command, 0 ok.
Every case runs the real ``kaizen`` command: ``kaizen.cli.main`` in this process (tests/conftest.py
``kaizen_main``), the daemons as real subprocesses.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from kaizen.errors import (
    EXIT_CONFIG,
    EXIT_FAILURE,
    EXIT_TEMPFAIL,
    EXIT_USAGE,
    BusyError,
    ConfigError,
    KaizenError,
    PolicyError,
)
from tests.conftest import Ran, kaizen_main
from tests.service.conftest import Daemon, running, wait_for, write_config

ROOT = Path(__file__).resolve().parents[1]


def kaizen(*args: str, cwd: Path) -> Ran:
    return kaizen_main(*args, cwd=cwd)


def test_the_codes_are_the_sysexits_ones() -> None:
    assert (EXIT_CONFIG, EXIT_TEMPFAIL, EXIT_USAGE, EXIT_FAILURE) == (78, 75, 2, 1)
    assert ConfigError("x").exit_code == PolicyError("p", ["q"]).exit_code == EXIT_CONFIG
    assert BusyError("x").exit_code == EXIT_TEMPFAIL and KaizenError("x").exit_code == EXIT_FAILURE


@pytest.mark.parametrize("command", [["status"], ["log"], ["once"], ["policy", "validate"], ["run"]])
def test_a_bad_config_exits_78_with_one_line(home, command: list[str]) -> None:
    (home.root / "config.toml").write_text("[service]\nport = 'ninety'\n")
    r = kaizen(*command, cwd=home.root)
    assert r.returncode == EXIT_CONFIG, r.stderr
    assert r.stderr.strip() == "kaizen: error: config.toml: service.port must be an integer in [0, 65535]; got 'ninety'"


@pytest.mark.parametrize("command", [["once"], ["bootstrap"], ["backtest", "--batches", "."]])
def test_a_bad_policy_named_on_the_command_line_exits_78(home, command: list[str]) -> None:
    bad = home.root / "policies" / "bad.toml"
    bad.write_text('[model]\nname = "bad"\ntask = "binary_classification"\ntarget = "y"\nmetric = "auc"\n')
    r = kaizen(command[0], str(bad), *command[1:], cwd=home.root)
    assert r.returncode == EXIT_CONFIG, r.stdout + r.stderr
    assert "bad.toml: model.metric must be one of 'roc_auc', 'accuracy', 'f1'" in r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("args", [["bogus"], ["once", "--seed", "x"], [], ["log", "--last", "many"]])
def test_bad_usage_exits_2(tmp_path: Path, args: list[str]) -> None:
    r = kaizen(*args, cwd=tmp_path)
    assert r.returncode == EXIT_USAGE
    assert "usage: kaizen" in r.stderr


def test_a_failed_command_exits_1(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text('[state]\ndir = "state"\n')  # a project folder (outside one: its own error)
    r = kaizen("show", "no-such-cycle", cwd=tmp_path)
    assert r.returncode == EXIT_FAILURE
    assert r.stderr.strip() == "kaizen: error: no record 'no-such-cycle' in the promotion log"


def test_an_unexpected_exception_exits_1_with_a_redacted_traceback(tmp_path: Path, monkeypatch) -> None:
    import kaizen.cli as c

    def boom(args):
        raise RuntimeError('lost http://kaizen:S3cretPW@127.0.0.1:5999')

    monkeypatch.setattr(c, "cmd_status", boom)
    r = kaizen("status", cwd=tmp_path)
    assert r.returncode == EXIT_FAILURE
    assert "Traceback (most recent call last)" in r.stderr and "in boom" in r.stderr
    assert "kaizen: internal error: RuntimeError: lost http://kaizen:***@127.0.0.1:5999" in r.stderr
    assert "S3cretPW" not in r.stderr


def test_a_second_daemon_on_a_held_state_folder_exits_75(home) -> None:
    write_config(home)
    home.write_policy({"schedule": {"every": "1h"}})
    first = Daemon(home, tag="first")
    second: Daemon | None = None
    try:
        wait_for(lambda: running(home, first.pid), 120, "the first daemon", first)
        second = Daemon(home, tag="second")
        assert second.wait(120) == EXIT_TEMPFAIL
        assert f"kaizen: error: another kaizen daemon (pid {first.pid}) is running" in second.log()
        assert first.proc.poll() is None
        first.signal(signal.SIGTERM)
        assert first.wait(120) == 0
    finally:
        for d in (first, second):
            if d is not None:
                d.kill()


def test_systemd_restarts_a_crash_but_not_a_bad_config_or_a_held_lock() -> None:
    unit = (ROOT / "deploy" / "kaizen.service").read_text()
    settings = dict(line.split("=", 1) for line in unit.splitlines() if "=" in line and not line.startswith("#"))
    assert settings["Restart"] == "on-failure"  # a non-zero exit (1: crash) restarts
    assert set(settings["RestartPreventExitStatus"].split()) == {str(EXIT_CONFIG), str(EXIT_TEMPFAIL)}
    assert "Documentation" not in settings  # pip installs no docs to point at
